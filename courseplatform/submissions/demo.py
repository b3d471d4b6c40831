"""Demo content: the course's assignment packs with due dates, and some graded submissions.

Submissions are graded for real through the engine, in this process (no worker needed), from
each pack's own files: a correct solution (solutions/ or reference.py) and known-wrong mutants.
Idempotent: packs are synced idempotently and a student who already has a submission for an
assignment gets no new one.
"""
from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from .models import Assignment, State, Submission
from .sync import sync

# Due dates following the lecture plan (Europe/Berlin, 23:59).
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


def _due(day: str):
    return timezone.make_aware(datetime.fromisoformat(day + "T23:59"))


def _files(pack: Path):
    good = sorted(pack.glob("solutions/*.py")) or ([pack / "reference.py"] if (pack / "reference.py").is_file() else [])
    bad = sorted(p for p in pack.glob("mutants/*.py"))
    return good, bad


def load(course, people, stdout):
    root = Path(settings.ASSIGNMENTS_DIR)
    out = stdout or io.StringIO()
    assignments = sync(course, root, out)
    for a in assignments:
        if a.slug in DUE and a.due_at is None:
            Assignment.objects.filter(pk=a.pk).update(due_at=_due(DUE[a.slug]))
    stdout.write(f"  assignments: {len(assignments)} pack(s) from {root}\n")
    demo = [a for a in Assignment.objects.filter(course=course, slug__in=GRADED_DEMOS)]
    students = people.get("students") or []
    graded = 0
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
            sub = _submit_and_grade(a, student, upload, created_at=(a.due_at or timezone.now()) - timedelta(days=2, hours=index))
            graded += sub is not None and sub.state in (State.GRADED, State.ERROR)
    stdout.write(f"  submissions: {graded} demo submission(s) graded\n")


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
    from .tasks import grade_submission
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
        grade_submission.apply(args=[sub.pk, sub.generation])
    except Exception as exc:  # no engine here: leave it queued for a worker
        Submission.objects.filter(pk=sub.pk).update(message=f"Waiting for a worker ({type(exc).__name__}).")
    sub.refresh_from_db()
    return sub
