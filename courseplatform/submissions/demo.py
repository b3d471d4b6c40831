"""Demo content: the course's assignment packs with due dates, and some graded submissions.

Submissions are graded for real through the engine, in this process (no worker needed), from
each pack's own files: a correct solution (solutions/ or reference.py) and known-wrong mutants.
Idempotent: packs are synced idempotently and a student who already has a submission for an
assignment gets no new one.
"""
from __future__ import annotations

import io
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from courseplatform.courses import demo_data

from . import dispatch
from .models import Assignment, State, Submission
from .sync import sync

# Due dates following the lecture plan (Europe/Berlin, 23:59), moved with the demo's plan by
# people["shift_weeks"] (courses/demo_data.py: the attention assignment is then due within a week).
DUE = {
    "attention": "2026-11-13",
    "multihead_attention": "2026-11-20",
    "positional_encoding": "2026-11-27",
    "tokenization": "2026-12-04",
    "generation": "2026-12-11",
    "embeddings_notebook": "2026-12-18",
    "bert_finetune": "2027-01-08",
}
# Which demo students submit what (index into people["students"]): a solution or a mutant.
GRADED_DEMOS = ("attention", "multihead_attention", "positional_encoding")
PLAN = [(0, "solution"), (1, "mutant"), (2, "solution"), (3, "mutant"), (4, "mutant")]
# The leaderboard assignment: fine-tuning takes about half a minute per submission on a CPU. The
# first demo submission is graded here (the leaderboard has a row as soon as load_demo is done), the
# others are queued for the worker `make run` starts (they join the leaderboard within minutes).
LEADERBOARD_DEMO = "bert_finetune"
LEADERBOARD_PLAN = [(5, "solution"), (6, "solution"), (7, "mutant")]


def _due(day: str, weeks: int = 0):
    return demo_data.shifted(datetime.fromisoformat(day + "T23:59").replace(tzinfo=demo_data.PLAN_ZONE), weeks)


def _files(pack: Path):
    good = sorted(pack.glob("solutions/*.py")) or ([pack / "reference.py"] if (pack / "reference.py").is_file() else [])
    bad = sorted(p for p in pack.glob("mutants/*.py"))
    return good, bad


def load(course, people, stdout):
    root = Path(settings.ASSIGNMENTS_DIR)
    out = stdout or io.StringIO()
    out.write(f"  assignments: syncing the packs of {root}...\n")
    assignments = sync(course, root, out)
    weeks = people.get("shift_weeks", 0)
    for a in assignments:
        if a.slug in DUE:  # every run: the plan follows today (the same week: the same dates)
            Assignment.objects.filter(pk=a.pk).update(due_at=_due(DUE[a.slug], weeks))
    out.write(f"  assignments: {len(assignments)} pack(s) from {root}\n")
    demo = [a for a in Assignment.objects.filter(course=course, slug__in=GRADED_DEMOS)]
    students = people.get("students") or []
    graded = 0
    now = timezone.now()
    todo = sum(1 for a in demo for index, _ in PLAN if index < len(students)
               and not Submission.objects.filter(assignment=a, student=students[index]).exists())
    if todo:
        out.write(f"  submissions: grading {todo} demo submission(s) with the real engine (a few seconds each)...\n")
    for a in demo:
        pack = Path(a.pack_path)
        good, bad = _files(pack)
        if not good:
            continue
        for i, (index, what) in enumerate(PLAN):
            if index >= len(students):
                break
            student = students[index]
            if Submission.objects.filter(assignment=a, student=student).exists():
                continue
            source = good[i % len(good)] if what == "solution" or not bad else bad[i % len(bad)]
            module = _module_name(pack, a.slug)
            upload = SimpleUploadedFile(f"{module}.py", source.read_bytes(), content_type="text/x-python")
            # Submitted before the deadline, and never in the future (a deadline may be days away).
            before = min((a.due_at or now) - timedelta(days=2), now - timedelta(hours=1))
            started = time.monotonic()
            sub = _submit_and_grade(a, student, upload, created_at=before - timedelta(hours=index))
            graded += sub is not None and sub.state in (State.GRADED, State.ERROR)
            out.write(f"    {a.slug} / {student.username}: {sub.state if sub else 'rejected'}"
                      f"{'' if sub is None or sub.score is None else f', score {sub.score:g}'}"
                      f" ({time.monotonic() - started:.1f} s)\n")
            if hasattr(out, "flush"):
                out.flush()
    out.write(f"  submissions: {graded} demo submission(s) graded\n")
    _leaderboard_demo(course, students, now, out)


def _leaderboard_demo(course, students, now, out) -> None:
    from .services import enqueue_on_commit, store_blob
    from .validation import UploadRejected, check_upload

    a = Assignment.objects.filter(course=course, slug=LEADERBOARD_DEMO).first()
    if a is None:
        return
    pack = Path(a.pack_path)
    good, bad = _files(pack)
    queued = 0
    for i, (index, what) in enumerate(LEADERBOARD_PLAN):
        if index >= len(students) or not good:
            break
        student = students[index]
        if Submission.objects.filter(assignment=a, student=student).exists():
            continue
        source = good[i % len(good)] if what == "solution" or not bad else bad[i % len(bad)]
        upload = SimpleUploadedFile(f"{_module_name(pack, a.slug)}.py", source.read_bytes(),
                                    content_type="text/x-python")
        at = now - timedelta(minutes=30 - 5 * i)
        if i == 0:
            out.write(f"  submissions: grading one {LEADERBOARD_DEMO} submission for its leaderboard "
                      "(fine-tuning: about half a minute on a CPU)...\n")
            if hasattr(out, "flush"):
                out.flush()
            started = time.monotonic()
            sub = _submit_and_grade(a, student, upload, created_at=at)
            out.write(f"    {a.slug} / {student.username}: {sub.state if sub else 'rejected'}"
                      f" ({time.monotonic() - started:.1f} s)\n")
            continue
        try:
            checked = check_upload(upload, a.kinds)
        except UploadRejected:
            continue
        rel, _ = store_blob(upload, checked)
        sub = Submission.objects.create(
            assignment=a, student=student, attempt=1, sha256=checked.sha256, blob=rel,
            original_name=checked.name, kind=checked.kind, size=checked.size, created_at=at, queued_at=at,
            max_score=a.points,
        )
        enqueue_on_commit(sub)  # sent when the demo's transaction commits
        queued += 1
    if queued:
        out.write(f"  submissions: {queued} more {LEADERBOARD_DEMO} submission(s) queued for the worker "
                  "(the leaderboard grows as it grades them)\n")


def _module_name(pack: Path, slug: str) -> str:
    try:
        import tomllib

        return str(tomllib.loads((pack / "assignment.toml").read_text()).get("module") or slug)
    except Exception:
        return slug


def _submit_and_grade(assignment, student, upload, created_at):
    """Store a demo submission as if it had been uploaded before the deadline, then grade it
    here and now through the same task code the workers run (eagerly)."""
    from .services import store_blob
    from .validation import UploadRejected, check_upload

    try:
        checked = check_upload(upload, assignment.kinds)
    except UploadRejected:
        return None
    rel, _ = store_blob(upload, checked)
    sub = Submission.objects.create(
        assignment=assignment, student=student, attempt=1, sha256=checked.sha256, blob=rel,
        original_name=checked.name, kind=checked.kind, size=checked.size, created_at=created_at,
        queued_at=created_at, max_score=assignment.points,
    )
    try:
        dispatch.run_here(dispatch.GRADE_SUBMISSION, [sub.pk, sub.generation])
    except Exception as exc:  # no engine here: leave it queued for a worker
        Submission.objects.filter(pk=sub.pk).update(message=f"Waiting for a worker ({type(exc).__name__}).")
    sub.refresh_from_db()
    return sub
