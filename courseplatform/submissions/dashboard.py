"""Dashboard panels: a student's next deadlines and latest scores; staff's queue and recent errors."""
from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from courseplatform.core.hooks import Panel

from . import services
from .models import PENDING_STATES, Assignment, State, Submission


def panels(request, course, membership) -> list[Panel]:
    now = timezone.now()
    if membership.is_staff_role:
        subs = Submission.objects.filter(assignment__course=course)
        queue = {
            row["assignment__queue"]: row
            for row in subs.filter(state__in=PENDING_STATES)
            .values("assignment__queue")
            .annotate(queued=Count("id", filter=Q(state=State.QUEUED)), running=Count("id", filter=Q(state=State.RUNNING)))
        }
        errors = list(subs.filter(state=State.ERROR, is_test_run=False).select_related("assignment", "student").order_by("-finished_at")[:5])
        stuck = services.find_stuck(now).filter(assignment__course=course).count()
        assignments = list(Assignment.objects.filter(course=course).annotate(
            n_students=Count("submissions__student", filter=Q(submissions__is_test_run=False), distinct=True)
        ))
        return [Panel(title="Assignments: grading", template="submissions/panels/staff.html", context={
                "queue": queue,
                "errors": errors,
                "stuck": stuck,
                "assignments": assignments,
                "last_hour": subs.filter(created_at__gte=now - timedelta(hours=1)).count(),
            }, order=20)]
    assignments = list(Assignment.objects.filter(course=course, released=True))
    mine = {}
    for s in Submission.objects.filter(assignment__in=assignments, student=request.user, is_test_run=False):
        mine.setdefault(s.assignment_id, []).append(s)
    upcoming, results = [], []
    for a in assignments:
        due = a.due_for(request.user)
        subs = mine.get(a.pk, [])
        counted = services.counted_score(a, subs)
        if due and due >= now:
            upcoming.append({"a": a, "due": due, "submitted": bool(subs), "counted": counted})
        if subs:
            results.append({"a": a, "latest": subs[0], "counted": counted})
    upcoming.sort(key=lambda r: r["due"])
    return [Panel(title="Assignments", template="submissions/panels/student.html", context={"upcoming": upcoming[:4], "results": results[:6]}, order=5)]
