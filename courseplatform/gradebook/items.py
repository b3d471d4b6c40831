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
