"""Grading tasks.

grade_submission(submission_id, generation) is sent on commit, routed to the pack's queue
(cpu | gpu). It is acks_late + reject_on_worker_lost: a worker that dies mid-grade leaves the
message unacknowledged, so the broker redelivers it (Redis: after the transport's
visibility_timeout) and another worker grades the submission again. The task is idempotent:
a submission already graded, or whose generation moved on (a regrade), is left alone.

Retries are for infrastructure faults only (database gone, blob unreadable, the engine's
GraderError: sandbox unavailable, zygote died); a student's broken code is a normal result.
A submission that kills its worker again and again is stopped after MAX_DELIVERIES with an
error, instead of poisoning the queue forever.
"""
from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from grader.errors import GraderError

from .models import FINAL_STATES, PackUpload, State, Submission
from .packs import run_check
from .queue import recover
from .services import find_stuck, read_blob, regrade

logger = logging.getLogger(__name__)

MAX_DELIVERIES = 3
MAX_RETRIES = 3
STUCK_MARGIN_S = 120
QUEUED_TOO_LONG_S = 6 * 3600  # lost messages are re-sent by queue.recover long before


class InfrastructureError(Exception):
    """A fault of the platform, not of the submission: retried."""


def grade_function():
    """The engine entry point; COURSEPLATFORM_GRADE_FUNCTION (dotted path) swaps it in tests."""
    dotted = os.environ.get("COURSEPLATFORM_GRADE_FUNCTION", "grader.api.grade")
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _worker_name(task) -> str:
    hostname = getattr(task.request, "hostname", None) or socket.gethostname()
    return f"{hostname} pid {os.getpid()}"


@shared_task(
    bind=True,
    name="submissions.grade_submission",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    ignore_result=True,
)
def grade_submission(self, submission_id: int, generation: int) -> str:
    # 1. Claim it: queued (or running after a crashed worker) -> running.
    try:
        with transaction.atomic():
            sub = (
                Submission.objects.select_for_update()
                .select_related("assignment")
                .filter(pk=submission_id)
                .first()
            )
            if sub is None:
                return "missing"
            if sub.generation != generation:
                return "stale"
            if sub.state in FINAL_STATES:
                return "already-final"
            redelivered = sub.state == State.RUNNING
            if sub.deliveries >= MAX_DELIVERIES:
                sub.state = State.ERROR
                sub.finished_at = timezone.now()
                sub.message = (
                    f"Grading was interrupted {sub.deliveries} times (the worker stopped while grading "
                    "this file). Course staff can see this and will look into it."
                )
                sub.save(update_fields=["state", "finished_at", "message"])
                return "gave-up"
            sub.state = State.RUNNING
            sub.started_at = timezone.now()
            sub.finished_at = None
            sub.worker = _worker_name(self)[:200]
            sub.task_id = (self.request.id or "")[:64]
            sub.deliveries += 1
            sub.heartbeat_at = sub.started_at
            sub.message = "Grading (again: the previous worker stopped)." if redelivered else "Grading…"
            sub.save(update_fields=["state", "started_at", "finished_at", "worker", "task_id", "deliveries", "message",
                                    "heartbeat_at"])
    except (OperationalError, InterfaceError) as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries))

    assignment = sub.assignment
    # 2. Grade, outside any transaction (grading takes seconds), holding the lease meanwhile.
    if self.request.is_eager:  # graded in the caller's process and transaction: no one to sweep it
        return _grade_and_save(self, sub, generation)
    with Lease(sub.pk, generation):
        return _grade_and_save(self, sub, generation)


class Lease:
    """While grading, a thread touches heartbeat_at every GRADING_HEARTBEAT_S. The sweeper requeues
    a running submission whose heartbeat is older than GRADING_LEASE_S: its worker was killed, its
    host died or lost its network. Redis' visibility_timeout can then stay longer than any grading."""

    def __init__(self, pk: int, generation: int):
        self.pk, self.generation = pk, generation
        self.interval = max(0.2, float(settings.GRADING_HEARTBEAT_S))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"lease-{pk}", daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.wait(self.interval):
                try:
                    Submission.objects.filter(pk=self.pk, generation=self.generation, state=State.RUNNING).update(
                        heartbeat_at=timezone.now())
                except DatabaseError as exc:  # the database is away: the lease may lapse, nothing worse
                    logger.warning("lease of submission %s not renewed: %s", self.pk, exc)
                    connection.close()
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)
        return False


def _grade_and_save(self, sub, generation: int) -> str:
    assignment = sub.assignment
    submission_id = sub.pk
    try:
        pack_dir = Path(assignment.pack_path)
        if not assignment.pack_path or not pack_dir.is_dir():
            raise InfrastructureError(f"the pack of {assignment.slug} is missing from trusted storage ({pack_dir})")
        try:
            data = read_blob(sub)
        except OSError as exc:
            raise InfrastructureError(f"cannot read the submitted file: {exc}") from exc
        # A student's "check" (via="check", never for credit) runs the visible cases only.
        extra = {"only_visible": True} if sub.via == "check" else {}
        result = grade_function()(pack_dir, sub.original_name, data, **extra)
        if not isinstance(result, dict):
            raise InfrastructureError(f"the engine returned {type(result).__name__}, not a result")
    except (InfrastructureError, OSError, DatabaseError, GraderError) as exc:
        return _infrastructure_fault(self, sub, generation, exc)
    except Exception as exc:  # an engine bug: do not blame the student, do not loop forever
        logger.exception("engine failed on submission %s", submission_id)
        return _infrastructure_fault(self, sub, generation, exc)

    # 3. Save, unless a regrade started meanwhile.
    return _save_result(sub, generation, result)


def _backoff(retries: int) -> int:
    return min(60, 2 * (2**retries))


def _infrastructure_fault(task, sub, generation: int, exc: BaseException) -> str:
    logger.warning("infrastructure fault grading submission %s: %s", sub.pk, exc)
    if task.request.retries < task.max_retries and not task.request.is_eager:
        Submission.objects.filter(pk=sub.pk, generation=generation).update(
            state=State.QUEUED,
            retries=task.request.retries + 1,
            message=f"The grader had a problem and will try again shortly ({type(exc).__name__}).",
        )
        raise task.retry(exc=exc, countdown=_backoff(task.request.retries))
    if sub.regrading:
        # A regrade that cannot run leaves the previous result standing (score, feedback, pack).
        Submission.objects.filter(pk=sub.pk, generation=generation).update(
            state=State.GRADED, finished_at=timezone.now(), retries=task.request.retries,
            message=(f"The regrade could not run because of a problem on our side ({type(exc).__name__}); "
                     "the previous result stands. Staff can regrade it again."),
        )
        return "regrade-failed"
    Submission.objects.filter(pk=sub.pk, generation=generation).update(
        state=State.ERROR,
        finished_at=timezone.now(),
        retries=task.request.retries,
        message=(
            "The grader could not grade this submission because of a problem on our side "
            f"({type(exc).__name__}: {str(exc)[:300]}). It is not your fault; staff can regrade it."
        ),
    )
    return "infrastructure-error"


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
    # Large artifacts (executed notebooks) are kept, but the output is cut to what a page can show.
    stored = json_safe(dict(result))
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


@shared_task(name="submissions.sweep_stuck", ignore_result=True)
def sweep_stuck() -> int:
    """Beat runs this every SWEEP_INTERVAL_S (queue "ops"). It requeues running submissions whose
    worker's lease lapsed, sends the queued ones again when the broker lost its messages (see
    queue.recover), and requeues submissions still running past their pack's wall limit plus a
    margin, or queued for longer than QUEUED_TOO_LONG_S (a message lost some other way)."""
    done = recover()
    stuck = find_stuck(margin_s=STUCK_MARGIN_S, queued_after_s=QUEUED_TOO_LONG_S)
    count = regrade(stuck, reset_deliveries=False) if stuck.exists() else 0
    if count:
        logger.warning("requeued %d stuck submission(s)", count)
    return count + done["lapsed"] + done["resent"]


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
        return run_check(upload_id)
    except PackUpload.DoesNotExist:
        return "missing"
    except (OperationalError, InterfaceError, GraderError) as exc:
        if self.request.retries < self.max_retries and not self.request.is_eager:
            raise self.retry(exc=exc, countdown=_backoff(self.request.retries))
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
