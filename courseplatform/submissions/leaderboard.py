"""Leaderboards for packs whose results carry metrics (bert_finetune: accuracy, f1).

Each student's best graded submission by the assignment's leaderboard metric is ranked (ties share
a rank). Staff see full names. Students see their own row marked "you" and everyone else under a
stable pseudonym (derived with the SECRET_KEY from the assignment and the student, so it does not
change between visits and reveals nothing), unless the instructor chose full names for the
assignment (`leaderboard_names = full`). Staff test runs are never ranked.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q

from courseplatform.courses.models import Membership

from .models import Assignment, LeaderboardNames, State, Submission

ADJECTIVES = (
    "Amber", "Brave", "Calm", "Clever", "Cosmic", "Curious", "Daring", "Eager", "Fuzzy", "Gentle", "Golden", "Happy",
    "Jolly", "Keen", "Lively", "Lucky", "Mellow", "Nimble", "Patient", "Quick", "Quiet", "Rapid", "Silver", "Sly",
    "Sunny", "Swift", "Tidy", "Vivid", "Wise", "Witty", "Zesty", "Bold",
)
ANIMALS = (
    "Otter", "Falcon", "Badger", "Lynx", "Heron", "Panda", "Koala", "Gecko", "Marten", "Puffin", "Ibex", "Tapir",
    "Orca", "Wombat", "Bison", "Raven", "Fox", "Hare", "Newt", "Crane", "Moose", "Seal", "Yak", "Owl",
    "Beaver", "Dingo", "Egret", "Ferret", "Jackal", "Lemur", "Mole", "Quokka",
)


def pseudonym(assignment_id: int, user_id: int) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), f"leaderboard:{assignment_id}:{user_id}".encode(), hashlib.sha256).digest()
    return f"{ADJECTIVES[digest[0] % len(ADJECTIVES)]} {ANIMALS[digest[1] % len(ANIMALS)]}"


def _metric(sub: Submission, name: str) -> float | None:
    metrics = (sub.result or {}).get("metrics") or {}
    try:
        value = float(metrics.get(name))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@dataclass
class Row:
    rank: int
    user: object
    submission: Submission
    value: float
    metrics: dict = field(default_factory=dict)
    name: str = ""
    is_me: bool = False


def metric_names(subs) -> list[str]:
    names: list[str] = []
    for s in subs:
        for k, v in ((s.result or {}).get("metrics") or {}).items():
            if k not in names and isinstance(v, (int, float)) and not isinstance(v, bool):
                names.append(str(k))
    return names


def board(assignment: Assignment, viewer, viewer_is_staff: bool) -> tuple[list[Row], list[str]]:
    """(ranked rows, metric columns) as this viewer may see them."""
    metric = assignment.leaderboard_metric
    students = set(
        Membership.objects.filter(course=assignment.course).students().values_list("user_id", flat=True)
    )
    subs = (
        # Graded, or being regraded (the previous result stands until the new one arrives).
        Submission.objects.filter(Q(state=State.GRADED) | Q(state__in=[State.QUEUED, State.RUNNING],
                                                            score__isnull=False, generation__gt=1),
                                  assignment=assignment, is_test_run=False, student_id__in=students)
        .select_related("student")
        .order_by("created_at", "id")
    )
    desc = assignment.leaderboard_order != "asc"
    best: dict[int, tuple[float, Submission]] = {}
    for s in subs:
        value = _metric(s, metric)
        if value is None:
            continue
        held = best.get(s.student_id)
        # Better value wins; on a tie the earlier submission keeps the place.
        if held is None or (value > held[0] if desc else value < held[0]):
            best[s.student_id] = (value, s)
    ordered = sorted(best.values(), key=lambda vs: ((-vs[0] if desc else vs[0]), vs[1].created_at, vs[1].pk))
    columns = [m for m in metric_names(s for _, s in ordered) if m != metric]
    rows: list[Row] = []
    taken: dict[str, int] = {}
    rank, previous = 0, None
    for i, (value, s) in enumerate(ordered, start=1):
        if value != previous:
            rank, previous = i, value
        row = Row(rank=rank, user=s.student, submission=s, value=value,
                  metrics={m: _metric(s, m) for m in columns}, is_me=s.student_id == viewer.pk)
        if viewer_is_staff or assignment.leaderboard_names == LeaderboardNames.FULL:
            row.name = s.student.get_full_name() or s.student.username
        elif row.is_me:
            row.name = "You"
        else:
            alias = pseudonym(assignment.pk, s.student_id)
            taken[alias] = taken.get(alias, 0) + 1
            row.name = alias if taken[alias] == 1 else f"{alias} {taken[alias]}"
        rows.append(row)
    return rows, columns
