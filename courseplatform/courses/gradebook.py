"""The attendance column of the gradebook: one point per session attended (excused counts as attended),
out of the sessions taken since the student enrolled."""
from __future__ import annotations

from django.urls import reverse

from courseplatform.core.hooks import GradeItem

from . import attendance as att


def items(course) -> list[GradeItem]:
    held = att.held_sessions(course).count()
    if held == 0:
        return []
    rows = att.summary(course)
    scores, notes, maxima = {}, {}, {}
    for row in rows:
        # Only the sessions the student was on the list for count: a student enrolled this week is
        # not marked for the sessions before, and they are neither a presence nor an absence.
        marked = row.present + row.absent + row.excused
        maxima[row.user.id] = float(marked)
        scores[row.user.id] = float(row.present + row.excused) if marked else None
        if not marked:
            notes[row.user.id] = "no session since enrolment"
            continue
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
            max_points_for=maxima,
        )
    ]
