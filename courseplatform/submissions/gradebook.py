"""One gradebook item per assignment: the counted submission (best or latest, per the
assignment's rule) with its late penalty applied. Staff test runs never count."""
from __future__ import annotations

from collections import defaultdict

from django.urls import reverse

from courseplatform.core.hooks import GradeItem

from . import services
from .models import Assignment, Submission


def items(course) -> list[GradeItem]:
    out = []
    for a in Assignment.objects.filter(course=course):
        by_student = defaultdict(list)
        for s in Submission.objects.filter(assignment=a, is_test_run=False):
            by_student[s.student_id].append(s)
        scores, notes = {}, {}
        for user_id, subs in by_student.items():
            counted = services.counted_score(a, subs)
            scores[user_id] = counted.score if counted else None
            if counted and counted.regrading:
                notes[user_id] = "regrading: this score stands until the new result"
            elif counted and counted.late_days:
                notes[user_id] = f"late {counted.late_days}d −{counted.penalty_percent:g}%"
            elif counted is None:
                notes[user_id] = "not graded yet" if any(not s.is_final for s in subs) else "no graded attempt"
        out.append(GradeItem(
            key=f"assignment:{a.slug}",
            title=a.title,
            category="assignments",
            max_points=float(a.points),
            scores=scores,
            due=a.due_at,
            url=reverse("submissions:staff", args=[course.slug, a.slug]),
            notes=notes,
        ))
    return out
