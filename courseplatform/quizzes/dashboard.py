"""Course dashboard panels: a student's open quizzes (time left) and results; staff: open quizzes and attempts in progress."""
from __future__ import annotations

from django.db.models import Count, Q
from django.utils import timezone

from courseplatform.core.hooks import Panel

from . import services
from .models import Attempt, Quiz


def panels(request, course, membership) -> list[Panel]:
    now = timezone.now()
    quizzes = list(Quiz.objects.filter(course=course, published=True).order_by("closes_at", "title"))
    if not quizzes and not membership.is_staff_role:
        return []
    if membership.is_staff_role:
        open_quizzes = [q for q in quizzes if q.is_open(now)]
        counts = {row["quiz"]: row for row in Attempt.objects.filter(quiz__course=course).values("quiz").annotate(
            in_progress=Count("id", filter=Q(state=Attempt.State.OPEN, deadline__gt=now) | Q(
                state=Attempt.State.OPEN, deadline__isnull=True)),
            finished=Count("id", filter=~Q(state=Attempt.State.OPEN)))}
        rows = [{"quiz": q, "in_progress": counts.get(q.pk, {}).get("in_progress", 0),
                 "finished": counts.get(q.pk, {}).get("finished", 0)} for q in open_quizzes]
        recent = [q for q in quizzes if q.has_closed(now)][-3:]
        recent_rows = [{"quiz": q, "finished": counts.get(q.pk, {}).get("finished", 0)} for q in recent]
        return [Panel(title="Quizzes", template="quizzes/panels/staff.html", order=40, context={"rows": rows, "recent": recent_rows, "n_quizzes": len(quizzes)})]
    services.close_overdue(student=request.user, now=now)
    mine: dict[int, list] = {}
    for a in Attempt.objects.filter(quiz__course=course, student=request.user):
        mine.setdefault(a.quiz_id, []).append(a)
    open_rows, results = [], []
    for q in quizzes:
        attempts = mine.get(q.pk, [])
        current = next((a for a in attempts if a.is_open), None)
        ok, _why = services.can_start(q, request.user, now)
        if current or ok:
            open_rows.append({"quiz": q, "attempt": current,
                              "seconds_left": current.seconds_left(now) if current else None,
                              "closes_in": (q.closes_at - now) if q.closes_at else None})
        grade = services.quiz_grade(q, attempts)
        if grade is not None:
            results.append({"quiz": q, "grade": grade, "max_points": q.max_points})
    return [Panel(title="Quizzes", template="quizzes/panels/student.html", order=40, context={"open_rows": open_rows, "results": results})]
