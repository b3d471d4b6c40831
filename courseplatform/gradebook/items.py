"""The unit the gradebook is made of. Apps return these from their `gradebook.items(course)`."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class GradeItem:
    key: str  # unique within the course, stable, e.g. "assignment:attention", "quiz:12", "milestone:3"
    title: str
    category: str  # "assignments" | "quizzes" | "milestones" | "attendance"
    max_points: float
    scores: dict[int, float | None] = field(default_factory=dict)  # user id -> points (None: nothing yet)
    due: datetime | None = None
    url: str | None = None  # the staff page for this item
    notes: dict[int, str] = field(default_factory=dict)  # user id -> short note ("late -10%", "excused")
    # Optional: user id -> a flag shown next to the student's name (e.g. "4 absences, more than 2 allowed").
    flags: dict[int, str] = field(default_factory=dict)
    # Optional: user ids whose work is in but not graded yet (a delivered milestone, a submission in the
    # queue). Shown as "pending" and left out of the percentages, never counted as 0.
    pending: set[int] = field(default_factory=set)
    # Optional: user id -> that student's own maximum (e.g. attendance counts only the sessions held
    # since the student enrolled). A maximum of 0 leaves the item out of the student's percentages.
    max_points_for: dict[int, float] = field(default_factory=dict)

    def max_for(self, user_id: int) -> float:
        return float(self.max_points_for.get(user_id, self.max_points) or 0.0)
