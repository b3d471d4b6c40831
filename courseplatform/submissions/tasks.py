"""Grading tasks of the submissions app.

grade_submission(submission_id, generation) is the "submission" kind of the one grading path
(courseplatform/grading: claim, lease, retries for infrastructure faults only, MAX_DELIVERIES, the
sweeper and the requeue are written there once). What is particular to a submission is here: the
engine's input (the stored file, the visible cases only for a check) and how a result is saved (the
late penalty, the pack version). It is sent on commit, routed to the pack's queue (cpu | gpu).
"""
from __future__ import annotations

import logging
from pathlib import Path

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from courseplatform.grading import engine
from courseplatform.grading.jobs import EngineCall, InfrastructureError, Kind
from courseplatform.grading.worker import MAX_DELIVERIES, MAX_RETRIES, backoff, grading_task
from grader.api import GraderError, decoded_key

from . import artifacts, dispatch
from .models import PackUpload, State, Submission
from .packs import check_and_install
from .services import find_stuck, read_blob, read_decoded
from .validation import pack_facts

logger = logging.getLogger(__name__)

__all__ = ["MAX_DELIVERIES", "MAX_RETRIES", "grade_submission", "check_pack_upload"]


class SubmissionJob(Kind):
    """An upload (attempt, staff test run or check) graded by the engine; the Submission row is its
    own lease record."""

    name = dispatch.SUBMISSION_KIND
    task_name = dispatch.GRADE_SUBMISSION
    model = Submission
    order = ("fair_tier", "queued_at", "pk")
    related = ("assignment",)
    infrastructure_message = ("The grader could not grade this submission because of a problem on our side "
                              "({error}). It is not your fault; staff can regrade it.")

    def claim_queryset(self):
        return Submission.objects.select_related("assignment")

    def queue(self, record) -> str:
        return dispatch.run_queue(record)

    def queues(self) -> list[str]:
        return sorted({dispatch.queue_for(q, via) for q, via in Submission.objects.filter(state=State.QUEUED)
                       .values_list("assignment__queue", "via").distinct()} or {"cpu"})

    def call(self, sub) -> EngineCall:
        assignment = sub.assignment
        pack_dir = Path(assignment.pack_path)
        if not assignment.pack_path or not pack_dir.is_dir():
            raise InfrastructureError(f"the pack of {assignment.slug} is missing from trusted storage ({pack_dir})")
        # The real engine starts from the decoded form the web's intake kept for this pack (the file is
        # not read or parsed again); without one (or for a stand-in engine) from the file.
        decoded = None
        facts = pack_facts(assignment.pack_path) if engine.takes_decoded() else None
        if facts is not None:
            decoded = read_decoded(sub, decoded_key(*facts, tuple(assignment.kinds)))
        try:
            data = b"" if decoded is not None else read_blob(sub)
        except OSError as exc:
            raise InfrastructureError(f"cannot read the submitted file: {exc}") from exc
        # A student's "check" (via="check", never for credit) runs the visible cases only.
        run_on = dispatch.run_queue(sub)  # the pack's queue, or cpu for a GPU pack's check
        return EngineCall(pack_dir, sub.original_name, data, only_visible=sub.via == dispatch.CHECK_VIA,
                          queue=run_on if run_on != (assignment.queue or "cpu") else None, decoded=decoded)

    def save(self, sub, generation: int, result: dict) -> str:
        return _save_result(sub, generation, result)

    def previous_result_stands(self, sub) -> bool:
        return sub.regrading  # a regrade that cannot run leaves the previous result (score, feedback, pack)

    def stuck(self, now, margin_s, queued_after_s) -> list[int]:
        return list(find_stuck(now, margin_s=margin_s, queued_after_s=queued_after_s).values_list("pk", flat=True))


grade_submission = grading_task(SubmissionJob())


def _num(value, default=None):
    try:
        f = float(value)
    except (TypeError, ValueError):
        return default
    return f if f == f and f not in (float("inf"), float("-inf")) else default


def json_safe(value):
    """PostgreSQL's JSON has no NaN/Infinity: a non-finite number (e.g. a metric of a diverged
    model) is stored as null instead of failing the save and leaving the submission running."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _save_result(sub, generation: int, result: dict) -> str:
    assignment = sub.assignment
    status = result.get("status")
    raw = _num(result.get("score"), 0.0)
    max_score = _num(result.get("max_score"), assignment.points)
    if sub.is_test_run:
        days, penalty = 0, 0.0
    else:
        # Recomputed at grading time so that an extension granted later counts in a regrade.
        info = assignment.late_info(sub.student, sub.created_at)
        days, penalty = info.days, (info.penalty if info.days else 0.0)
    score = round(raw * (1 - penalty / 100.0), 4)
    message = str(result.get("message") or "")
    if penalty and status == "graded":
        message = f"{message} Late by {days} day(s): −{penalty:g}% → {score:g}/{max_score:g}.".strip()
    # Artifacts (executed notebooks, plots) are kept as files, not inside the JSON (artifacts.py); the
    # output is cut to what a page can show.
    stored = artifacts.store(json_safe(dict(result)))
    if isinstance(stored.get("output"), str) and len(stored["output"]) > 64 * 1024:
        stored["output"] = stored["output"][: 64 * 1024] + "\n… (truncated)"
    updated = Submission.objects.filter(pk=sub.pk, generation=generation).update(
        state=State.GRADED if status == "graded" else State.ERROR,
        raw_score=raw,
        score=score,
        max_score=max_score,
        late_days=days,
        penalty_percent=penalty,
        result=stored,
        message=message[:5000] or ("Graded." if status == "graded" else "The submission could not be graded."),
        finished_at=timezone.now(),
        pack_hash=assignment.pack_hash,  # the trusted copy (PACK_STORE/<slug>/<hash>) it was graded with
    )
    return "saved" if updated else "stale"


@shared_task(
    bind=True,
    name="submissions.check_pack_upload",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    ignore_result=True,
)
def check_pack_upload(self, upload_id: int) -> str:
    """An instructor's uploaded pack: the engine's self-check, then the install (packs.py)."""
    try:
        return check_and_install(upload_id)
    except PackUpload.DoesNotExist:
        return "missing"
    except (OperationalError, InterfaceError, GraderError) as exc:
        if self.request.retries < self.max_retries and not self.request.is_eager:
            raise self.retry(exc=exc, countdown=backoff(self.request.retries))
        PackUpload.objects.filter(pk=upload_id, status=PackUpload.Status.CHECKING).update(
            status=PackUpload.Status.ERROR, finished_at=timezone.now(),
            message=f"The grader could not check the pack ({type(exc).__name__}: {str(exc)[:300]}). Try again later.",
        )
        return "error"
    except Exception as exc:  # a driver that crashes the engine: report it, never loop
        logger.exception("pack check %s failed", upload_id)
        PackUpload.objects.filter(pk=upload_id, status=PackUpload.Status.CHECKING).update(
            status=PackUpload.Status.ERROR, finished_at=timezone.now(),
            message=f"The self-check crashed: {type(exc).__name__}: {str(exc)[:500]}",
        )
        return "error"
