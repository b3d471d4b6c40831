"""Running a similarity check for an assignment: what is compared, the cache, the saved report.

The engine (grader/similarity/) does the comparison; this module picks each student's latest
submission, reads the pack's starter and handout, the assignment's public sources, reuses cached
fingerprints (by sha256) and saves the ranked pairs.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from courseplatform.courses.models import Membership
from courseplatform.submissions.models import Assignment, LatePolicy, Submission
from courseplatform.submissions.services import blob_path
from grader.api import similarity

from .models import FingerprintCache, PublicSource, SimilarityCheck, SimilarityPair, SimilaritySettings

log = logging.getLogger(__name__)

# Pairs below this score are not kept (the report lists the flagged pairs and the highest below).
KEEP_FLOOR = 0.1
KEEP_MAX = 2000
MAX_PUBLIC_BYTES = 2 * 1024 * 1024


def settings_for(assignment: Assignment) -> SimilaritySettings:
    """The assignment's settings (unsaved defaults when none were stored: a GET never writes)."""
    try:
        return assignment.similarity_settings
    except SimilaritySettings.DoesNotExist:
        return SimilaritySettings(assignment=assignment)


def params_for(assignment: Assignment) -> similarity.Params:
    s = settings_for(assignment)
    return replace(similarity.DEFAULT, threshold=s.threshold, boilerplate_share=s.boilerplate_share)


def latest_submissions(assignment: Assignment) -> list[Submission]:
    """Each enrolled student's latest submission (staff test runs left out)."""
    students = set(Membership.objects.filter(course=assignment.course).students().values_list("user_id", flat=True))
    latest: dict[int, Submission] = {}
    for sub in (Submission.objects.filter(assignment=assignment, is_test_run=False, student_id__in=students)
                .select_related("student").order_by("student_id", "-created_at", "-id")):
        latest.setdefault(sub.student_id, sub)
    return sorted(latest.values(), key=lambda s: s.pk)


def read_submission(sub: Submission) -> similarity.Source:
    path = blob_path(sub.blob)
    try:
        data = path.read_bytes()
    except OSError:
        return similarity.Source("", notes=["The stored file is missing."])
    return similarity.read_source(sub.original_name, data)


def fingerprints(sub: Submission, params: similarity.Params) -> tuple[dict, list, bool]:
    """(fingerprints, notes, reused) for a submission's file, from the cache when it has them."""
    row = FingerprintCache.objects.filter(sha256=sub.sha256, key=params.cache_key).first()
    if row is not None:
        return row.data, row.notes, True
    src = read_submission(sub)
    data = similarity.fingerprint_source(src, params)
    FingerprintCache.objects.get_or_create(sha256=sub.sha256, key=params.cache_key,
                                           defaults={"data": data, "notes": src.notes})
    return data, src.notes, False


def excluded_hashes(assignment: Assignment, params: similarity.Params) -> set[int]:
    """k-grams of the pack's starter files and of the handout's code snippets."""
    out: set[int] = set()
    if not assignment.pack_path:
        return out
    pack = Path(assignment.pack_path)
    for name in ("starter.py", "starter.ipynb"):
        if (pack / name).is_file():
            out |= similarity.kgram_set(similarity.read_file(pack / name), params)
    if (pack / "handout.md").is_file():
        for code in similarity.snippet_sources((pack / "handout.md").read_text(encoding="utf-8", errors="replace")):
            out |= similarity.kgram_set(code, params)
    return out


def public_hashes(assignment: Assignment, params: similarity.Params) -> dict[str, set[int]]:
    return {f"{src.name} (#{src.pk})": similarity.kgram_set(src.text, params)
            for src in PublicSource.objects.filter(assignment=assignment)}


class PublicRejected(Exception):
    pass


def add_public_sources(assignment: Assignment, user, upload) -> list[PublicSource]:
    """Store an uploaded .py / .ipynb / .zip as public sources (a zip: one per code file inside)."""
    name = Path(upload.name or "source.py").name
    kind = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if kind not in similarity.KINDS:
        raise PublicRejected(f"'{name}' is not a .py, .ipynb or .zip file.")
    if upload.size > MAX_PUBLIC_BYTES:
        raise PublicRejected(f"'{name}' is larger than {MAX_PUBLIC_BYTES // (1024 * 1024)} MiB.")
    data = upload.read()
    files: list[tuple[str, bytes]] = []
    if kind == "zip":
        from grader.api import SUBMISSIONS, ZipRefused, open_zip

        try:
            with open_zip(data, name, SUBMISSIONS) as archive:
                files = [(p, b) for p, b in archive.files() if p.endswith((".py", ".ipynb"))]
        except ZipRefused as exc:
            raise PublicRejected(exc.message) from None
        if not files:
            raise PublicRejected(f"'{name}' holds no .py or .ipynb file.")
    else:
        files = [(name, data)]
    created = []
    for path, content in files:
        src = similarity.read_source(path, content)
        if not src.units:
            raise PublicRejected(f"'{path}' holds no code that can be compared" +
                                 (f" ({src.notes[0]})" if src.notes else "."))
        row, _ = PublicSource.objects.get_or_create(
            assignment=assignment, sha256=hashlib.sha256(content).hexdigest(),
            defaults={"name": path[:255], "text": src.text, "uploaded_by": user})
        created.append(row)
    return created


def accepts_until(assignment: Assignment):
    """The last moment a submission can still arrive (deadline, extensions, late cut-off); None: open."""
    if assignment.due_at is None:
        return None
    due = max([assignment.due_at, *assignment.extensions.values_list("due_at", flat=True)])
    if assignment.late_policy == LatePolicy.CLOSED:
        return due + timezone.timedelta(minutes=assignment.grace_minutes)
    return due + timezone.timedelta(days=assignment.late_cutoff_days)


def start_check(assignment: Assignment, user=None) -> SimilarityCheck:
    """Queue a check (the task is sent when the transaction commits)."""
    from .tasks import run_check

    params = params_for(assignment)
    check = SimilarityCheck.objects.create(assignment=assignment, started_by=user, params={
        "k": params.k, "w": params.w, "threshold": params.threshold, "boilerplate_share": params.boilerplate_share,
        "min_evidence": params.min_evidence}, stage="Waiting for a worker…")
    transaction.on_commit(lambda: run_check.delay(check.pk))
    return check


STALE_AFTER = timezone.timedelta(minutes=30)


def is_stale(check: SimilarityCheck) -> bool:
    """A check still unfinished long after it was queued: its worker died and its message is gone
    (a redelivered task finishes it well within this time, even for a large class)."""
    return not check.is_final and check.created_at < timezone.now() - STALE_AFTER


def give_up(check: SimilarityCheck) -> None:
    SimilarityCheck.objects.filter(pk=check.pk).exclude(state__in=[SimilarityCheck.State.DONE,
                                                                   SimilarityCheck.State.ERROR]).update(
        state=SimilarityCheck.State.ERROR, stage="", finished_at=timezone.now(),
        message="The check did not finish (its worker was lost). It was started again.")


def _progress(check: SimilarityCheck, stage: str, done: int, total: int) -> None:
    SimilarityCheck.objects.filter(pk=check.pk).update(stage=stage, done_items=done, total_items=total)


def run(check: SimilarityCheck) -> SimilarityCheck:
    """Compare the latest submissions and save the report (the Celery task calls this)."""
    assignment = check.assignment
    p = check.params or {}
    params = replace(similarity.DEFAULT, **{k: p[k] for k in ("k", "w", "threshold", "boilerplate_share",
                                                             "min_evidence") if k in p})
    SimilarityCheck.objects.filter(pk=check.pk).update(state=SimilarityCheck.State.RUNNING, started_at=timezone.now())
    subs = latest_submissions(assignment)
    total = len(subs) + 1
    fps, notes, reused = {}, {}, 0
    for i, sub in enumerate(subs):
        if i % 10 == 0:
            _progress(check, f"Reading submissions ({i} of {len(subs)})", i, total)
        data, sub_notes, hit = fingerprints(sub, params)
        fps[sub.pk] = data
        reused += hit
        if sub_notes:
            notes[str(sub.pk)] = sub_notes
    _progress(check, f"Comparing {len(subs)} submissions", len(subs), total)
    engine = similarity.Check(fps, excluded_hashes(assignment, params), public_hashes(assignment, params), params)
    report = engine.run(min_score=KEEP_FLOOR)
    by_id = {s.pk: s for s in subs}
    rows = [SimilarityPair(check_run=check, rank=i + 1, sub_a=by_id[pr.a], sub_b=by_id[pr.b], score=pr.score,
                           share_a=pr.share_a, share_b=pr.share_b, beyond_a=pr.beyond_a, beyond_b=pr.beyond_b,
                           shared=pr.shared, common=pr.common, public=pr.public,
                           public_sources=pr.public_sources, regions=pr.regions)
            for i, pr in enumerate(report.pairs[:KEEP_MAX])]
    with transaction.atomic():
        SimilarityPair.objects.filter(check_run=check).delete()
        SimilarityPair.objects.bulk_create(rows, batch_size=500)
        SimilarityCheck.objects.filter(pk=check.pk).update(
            state=SimilarityCheck.State.DONE, stage="", done_items=total, total_items=total, submissions=len(subs),
            reused=reused, clusters=report.clusters, notes=notes, finished_at=timezone.now(),
            message=f"{len(subs)} submissions compared; {len(report.flagged())} pair(s) flagged; "
                    f"{len(report.clusters)} cluster(s); {reused} fingerprint set(s) reused from earlier checks.")
    check.refresh_from_db()
    return check
