"""The demo course's people and plan (plain data, no Django import: the dev server prints it too)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

COURSE = {
    "slug": "llms",
    "title": "Deep Dive into LLMs",
    "term": "Winter term 2026/27",
    "description": (
        "From neural-network basics to attention, transformers, BERT and GPT: coding assignments graded "
        "automatically, quizzes after each lecture, and a group project with milestones.\n"
        "Lectures on Fridays. More than 2 unexcused absences are flagged."
    ),
}

# username, password, first name, last name (passwords are set directly: demo only)
INSTRUCTOR = ("instructor", "instructor-demo", "Iris", "Ingram")
TA = ("ta", "ta-demo", "Theo", "Adler")
STUDENTS = [
    ("student1", "student1-demo", "Ada", "Lovelace"),
    ("student2", "student2-demo", "Alan", "Turing"),
    ("student3", "student3-demo", "Grace", "Hopper"),
    ("student4", "student4-demo", "Claude", "Shannon"),
    ("student5", "student5-demo", "Katherine", "Johnson"),
    ("student6", "student6-demo", "John", "McCarthy"),
    ("student7", "student7-demo", "Barbara", "Liskov"),
    ("student8", "student8-demo", "Edsger", "Dijkstra"),
]

# The lecture plan: Fridays, 23.10.2026 to 15.01.2027, Christmas break skipped. These are the real
# course's dates (as are assignments/milestones.toml and submissions/demo.py DUE); `load_demo` moves
# the demo course by whole weeks (shift_weeks) so that today falls inside the plan.
SESSIONS = [
    (dt.date(2026, 10, 23), "Lecture 1: Neural-network basics"),
    (dt.date(2026, 10, 30), "Lecture 2: CNNs, RNNs and vanishing gradients · forming project groups"),
    (dt.date(2026, 11, 6), "Lecture 3: Attention, queries, keys and values"),
    (dt.date(2026, 11, 13), "Lecture 4: Multi-head attention and positional encoding"),
    (dt.date(2026, 11, 20), "Lecture 5: The transformer block: layer norm and residuals"),
    (dt.date(2026, 11, 27), "Lecture 6: Encoder, decoder and encoder-decoder families"),
    (dt.date(2026, 12, 4), "Lecture 7: BERT: WordPiece, [CLS]/[SEP], MLM and NSP"),
    (dt.date(2026, 12, 11), "Lecture 8: GPT and autoregressive decoding, KV caching"),
    (dt.date(2026, 12, 18), "Lecture 9: Fine-tuning and evaluation metrics"),
    (dt.date(2027, 1, 8), "Project presentations"),
    (dt.date(2027, 1, 15), "Lecture 10: Cost, scale and ethics"),
]

# Attendance of the first three sessions (always before "today" in the shifted demo): absences per
# student index (0-based) -> session indexes. student8 misses 3 (over the allowance of 2: flagged);
# student4 misses 2 (at the limit: not flagged); student6 has one excused absence.
ABSENT = {7: [0, 1, 2], 3: [0, 2], 1: [2]}
EXCUSED = {5: [1]}
MARKED_SESSIONS = 3

# The demo's "today": the week in which the flagship assignment (attention, due Friday 13.11.2026
# 23:59, three late days allowed) is due. Moved there, the demo has at once: lectures, milestones,
# a quiz and graded work in the past; the attention assignment open and due within a week; later
# assignments, milestones and quizzes still to come.
PLAN_ZONE = ZoneInfo("Europe/Berlin")
ANCHOR_DUE = dt.datetime(2026, 11, 13, 23, 59, tzinfo=PLAN_ZONE)


def shift_weeks(now: dt.datetime) -> int:
    """The whole number of weeks to move the plan by so that ANCHOR_DUE lies in [now, now + 7 days):
    weekdays, times of day and spacing stay as planned. 0 while the real course runs that week."""
    behind = now - ANCHOR_DUE
    weeks = -(-behind // dt.timedelta(weeks=1))  # ceiling
    return int(weeks)


def shifted(value, weeks: int):
    """A plan date or datetime moved by whole weeks; a datetime keeps its wall-clock time in the
    course zone (a deadline at 23:59 stays at 23:59 across a daylight-saving change)."""
    if value is None or not weeks:
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value + dt.timedelta(weeks=weeks)
        local = value.astimezone(PLAN_ZONE).replace(tzinfo=None) + dt.timedelta(weeks=weeks)
        return local.replace(tzinfo=PLAN_ZONE).astimezone(value.tzinfo)
    return value + dt.timedelta(weeks=weeks)


def logins() -> list[tuple[str, str, str]]:
    """(role, username, password) for printing."""
    out = [("instructor", INSTRUCTOR[0], INSTRUCTOR[1]), ("TA", TA[0], TA[1])]
    out += [("student", s[0], s[1]) for s in STUDENTS]
    return out


def logins_text() -> str:
    lines = ["Demo logins (course 'Deep Dive into LLMs'):"]
    for role, username, password in logins():
        lines.append(f"  {role:<10} {username:<10} / {password}")
    return "\n".join(lines)
