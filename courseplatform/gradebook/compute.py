"""The course gradebook: every app's GradeItems, per-student category percentages and a weighted total.

Rules (also in the README):
  * Items come from each app's `gradebook.items(course)` (the hook registry, core/hooks.py).
  * An item counts for a student once it is due (or has no due date) or once the student has a score
    for it; a missing score then counts as 0 points. Open items without a score are left out, so the
    total is "the grade so far". Items with max_points <= 0 never count.
  * Category percentage = 100 * sum(points) / sum(max points) over the counted items of that category.
  * Total = sum(weight_c * percent_c) / sum(weight_c) over the categories that have counted items for
    that student (categories without items are left out and the remaining weights renormalised).
  * Flags: items' `flags` (e.g. absences), and the attendance summary of the courses app when available.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from courseplatform.core import hooks
from courseplatform.core.hooks import GradeItem
from courseplatform.courses.attendance import summary
from courseplatform.courses.models import Membership

from .models import CATEGORIES, CategoryWeights

log = logging.getLogger(__name__)

LABELS = {"assignments": "Assignments", "quizzes": "Quizzes", "milestones": "Milestones", "attendance": "Attendance"}


@dataclass
class StudentRow:
    user: object
    scores: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    counted: set[str] = field(default_factory=set)
    percents: dict[str, float | None] = field(default_factory=dict)
    total: float | None = None
    flags: list[str] = field(default_factory=list)

    def cells(self, items):
        """[(item, score, note, counted, maximum)] in item order (for templates)."""
        return [(it, self.scores.get(it.key), self.notes.get(it.key, ""), it.key in self.counted,
                 it.max_for(self.user.id)) for it in items]

    def percent_list(self, categories):
        return [(c, self.percents.get(c)) for c in categories]


@dataclass
class Gradebook:
    course: object
    items: list[GradeItem]
    rows: list[StudentRow]
    weights: dict[str, float]
    categories: list[str]  # categories that have at least one item, in CATEGORIES order
    errors: list[str] = field(default_factory=list)

    def row_for(self, user_id: int) -> StudentRow | None:
        return next((r for r in self.rows if r.user.id == user_id), None)

    def effective_weights(self) -> dict[str, float]:
        """The weights as shares of 100 over the categories that have items."""
        total = sum(self.weights.get(c, 0) for c in self.categories)
        if total <= 0:
            return {c: 0.0 for c in self.categories}
        return {c: 100.0 * self.weights.get(c, 0) / total for c in self.categories}


def _sort_key(item: GradeItem):
    cat = CATEGORIES.index(item.category) if item.category in CATEGORIES else len(CATEGORIES)
    due = item.due or datetime.max.replace(tzinfo=timezone.get_current_timezone())
    return (cat, due, item.title.lower(), item.key)


def collect_items(course) -> tuple[list[GradeItem], list[str]]:
    items, errors = [], []
    for hook in hooks.hooks("gradebook"):
        try:
            items.extend(hook.function(course))
        except Exception as e:  # in production one broken app must not take the gradebook down
            hooks.failed(hook)
            errors.append(f"{hook.app}: {type(e).__name__}: {e}")
    seen = set()
    unique = []
    for it in items:
        if it.key in seen:
            errors.append(f"duplicate item key {it.key!r} ignored")
            continue
        if it.category not in CATEGORIES:
            errors.append(f"item {it.key!r} has unknown category {it.category!r}: shown but not counted")
        seen.add(it.key)
        unique.append(it)
    return sorted(unique, key=_sort_key), errors


def student_users(course):
    return [
        m.user for m in Membership.objects.filter(course=course).students().select_related("user")
        .order_by("user__last_name", "user__first_name", "user__username")
    ]


def attendance_flags(course, users, errors: list[str] | None = None) -> dict[int, str]:
    """The attendance flag of each flagged student. A failing attendance summary fails loudly under
    tests and DEBUG (HOOKS_FAIL_LOUDLY); in production it is logged with its cause and listed in
    ``errors`` (the gradebook shows them), and the flags are left out."""
    try:
        rows = summary(course, users=users)
    except Exception as exc:
        if settings.HOOKS_FAIL_LOUDLY:
            raise
        log.exception("attendance summary of %s failed", course.slug)
        if errors is not None:
            errors.append(f"attendance: {type(exc).__name__}: {exc} (absence flags left out)")
        return {}
    return {
        r.user.id: f"{r.absent} absences (more than {r.allowance} allowed)"
        for r in rows if getattr(r, "flagged", False)
    }


def compute_row(user, items: list[GradeItem], weights: dict[str, float], now) -> StudentRow:
    row = StudentRow(user=user)
    sums: dict[str, list[float]] = {}
    for it in items:
        score = it.scores.get(user.id)
        row.scores[it.key] = score
        if it.notes.get(user.id):
            row.notes[it.key] = it.notes[user.id]
        if it.flags.get(user.id):
            row.flags.append(it.flags[user.id])
        mx = it.max_for(user.id)
        if it.category not in CATEGORIES or mx <= 0:
            continue
        if score is None and user.id in it.pending:
            row.notes[it.key] = ", ".join(filter(None, ["pending: delivered, not graded yet", row.notes.get(it.key)]))
            continue
        is_due = it.due is None or it.due <= now
        if score is None and not is_due:
            continue
        row.counted.add(it.key)
        got, mx_sum = sums.setdefault(it.category, [0.0, 0.0])
        sums[it.category] = [got + float(score or 0.0), mx_sum + mx]
    for cat in CATEGORIES:
        if cat in sums and sums[cat][1] > 0:
            row.percents[cat] = 100.0 * sums[cat][0] / sums[cat][1]
        else:
            row.percents[cat] = None
    present = [c for c in CATEGORIES if row.percents[c] is not None]
    wsum = sum(weights.get(c, 0.0) for c in present)
    if present and wsum > 0:
        row.total = sum(weights.get(c, 0.0) * row.percents[c] for c in present) / wsum
    return row


def build(course, items: list[GradeItem] | None = None, now=None, weights: dict | None = None,
          users=None) -> Gradebook:
    errors: list[str] = []
    if items is None:
        items, errors = collect_items(course)
    else:
        items = sorted(items, key=_sort_key)
    now = now or timezone.now()
    weights = weights if weights is not None else CategoryWeights.for_course(course).as_dict()
    users = users if users is not None else student_users(course)
    flags = attendance_flags(course, users, errors)
    rows = []
    for u in users:
        row = compute_row(u, items, weights, now)
        if u.id in flags and flags[u.id] not in row.flags:
            row.flags.append(flags[u.id])
        rows.append(row)
    categories = [c for c in CATEGORIES if any(it.category == c for it in items)]
    return Gradebook(course=course, items=items, rows=rows, weights=weights, categories=categories, errors=errors)


# --- CSV export ------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    if value is None:
        return ""
    text = f"{round(float(value), 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def csv_header(book: Gradebook) -> list[str]:
    header = ["Username", "First name", "Last name", "Email"]
    used = set(header)
    for it in book.items:
        name = f"{it.title} [{fmt(it.max_points)}]"
        base, n = name, 2
        while name in used:
            name = f"{base} ({n})"
            n += 1
        used.add(name)
        header.append(name)
    header += [f"{LABELS[c]} %" for c in book.categories]
    header.append("Total %")
    return header


def csv_rows(book: Gradebook) -> list[list[str]]:
    rows = [csv_header(book)]
    for r in book.rows:
        u = r.user
        line = [u.username, u.first_name, u.last_name, u.email]
        line += [fmt(r.scores.get(it.key)) for it in book.items]
        line += [fmt(r.percents.get(c)) for c in book.categories]
        line.append(fmt(r.total))
        rows.append(line)
    return rows
