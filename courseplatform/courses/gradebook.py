"""The attendance column of the gradebook: one point per session attended (excused counts as attended)."""
from __future__ import annotations

from django.urls import reverse

from courseplatform.gradebook.items import GradeItem

from . import attendance as att


def items(course) -> list[GradeItem]:
    held = att.held_sessions(course).count()
    if held == 0:
        return []
    rows = att.summary(course)
    scores, notes = {}, {}
    for row in rows:
        scores[row.user.id] = float(row.present + row.excused) if row.marked else None
        note = f"{row.absent} absence{'s' if row.absent != 1 else ''}"
        if row.excused:
            note += f", {row.excused} excused"
        if row.flagged:
            note += f" (over the allowance of {course.max_absences})"
        notes[row.user.id] = note
    return [
        GradeItem(
            key="attendance",
            title="Attendance",
            category="attendance",
            max_points=float(held),
            scores=scores,
            url=reverse("courses:attendance", args=[course.slug]),
            notes=notes,
        )
    ]
