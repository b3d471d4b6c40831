"""What a worker does with one job of any kind: claim it, hold its lease, grade, save or retry.

Each kind's Celery task (made by ``grading_task``) is acks_late + reject_on_worker_lost: a worker
that dies mid-grade leaves its message unacknowledged, so the broker redelivers it, and the sweeper
requeues the job once its lease lapses (grading/sweeper.py). The task is idempotent: a job already
final, or whose generation moved on (a requeue), is left alone. Retries are for infrastructure
faults only (database gone, file unreadable, the engine's GraderError); a student's broken code is a
normal result. A job that kills its worker again and again is stopped after MAX_DELIVERIES.
"""
from __future__ import annotations

import logging
import os
import socket
import threading

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from grader.api import GraderError

from . import engine, signals
from .jobs import Gone, InfrastructureError, Kind, register
from .models import FINAL_STATES, State

logger = logging.getLogger(__name__)

MAX_DELIVERIES = 3
MAX_RETRIES = 3


def backoff(retries: int) -> int:
    return min(60, 2 * (2**retries))


def _worker_name(task) -> str:
    hostname = getattr(task.request, "hostname", None) or socket.gethostname()
    return f"{hostname} pid {os.getpid()}"


class Lease:
    """While grading, a thread touches heartbeat_at every GRADING_HEARTBEAT_S. The sweeper requeues
    a running job whose heartbeat is older than GRADING_LEASE_S: its worker was killed, its host
    died or lost its network. Redis' visibility_timeout can then stay longer than any grading."""

    def __init__(self, kind: Kind, pk: int, generation: int):
        self.kind, self.pk, self.generation = kind, pk, generation
        self.interval = max(0.2, float(settings.GRADING_HEARTBEAT_S))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"lease-{kind.name}-{pk}", daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.wait(self.interval):
                try:
                    self.kind.records().filter(pk=self.pk, generation=self.generation, state=State.RUNNING).update(
                        heartbeat_at=timezone.now())
                except DatabaseError as exc:  # the database is away: the lease may lapse, nothing worse
                    logger.warning("lease of %s %s not renewed: %s", self.kind.name, self.pk, exc)
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


def run(task, kind: Kind, pk: int, generation: int) -> str:
    """The body of every grading task."""
    # 1. Claim it: queued (or running after a crashed worker) -> running.
    try:
        with transaction.atomic():
            record = kind.claim_queryset().select_for_update().filter(pk=pk).first()
            if record is None:
                return "missing"
            if record.generation != generation:
                return "stale"
            if record.state in FINAL_STATES:
                return "already-final"
            redelivered = record.state == State.RUNNING
            if record.deliveries >= MAX_DELIVERIES:
                message = (f"Grading was interrupted {record.deliveries} times (the worker stopped while grading "
                           "this file). Course staff can see this and will look into it.")
                record.state, record.finished_at, record.message = State.ERROR, timezone.now(), message
                record.save(update_fields=["state", "finished_at", "message"])
                kind.fail(record, message)
                return "gave-up"
            record.state = State.RUNNING
            record.started_at = timezone.now()
            record.finished_at = None
            record.worker = _worker_name(task)[:200]
            record.task_id = (task.request.id or "")[:64]
            record.deliveries += 1
            record.heartbeat_at = record.started_at
            record.message = "Grading (again: the previous worker stopped)." if redelivered else "Grading…"
            record.save(update_fields=["state", "started_at", "finished_at", "worker", "task_id", "deliveries",
                                       "message", "heartbeat_at"])
    except (OperationalError, InterfaceError) as exc:
        raise task.retry(exc=exc, countdown=backoff(task.request.retries))

    # 2. Grade, outside any transaction (grading takes seconds), holding the lease meanwhile.
    if task.request.is_eager:  # graded in the caller's process and transaction: no one to sweep it
        return _grade_and_save(task, kind, record, generation)
    with Lease(kind, record.pk, generation):
        return _grade_and_save(task, kind, record, generation)


def _grade_and_save(task, kind: Kind, record, generation: int) -> str:
    try:
        call = kind.call(record)
        extra = {"only_visible": True} if call.only_visible else {}
        if call.queue:
            extra["queue"] = call.queue
        if call.decoded is not None:
            extra["decoded"] = call.decoded
        result = engine.grade_function()(call.pack_dir, call.filename, call.data, **extra)
        if not isinstance(result, dict):
            raise InfrastructureError(f"the engine returned {type(result).__name__}, not a result")
    except Gone as exc:
        kind.records().filter(pk=record.pk, generation=generation).update(
            state=State.ERROR, finished_at=timezone.now(), message=str(exc)[:500])
        return "gone"
    except (InfrastructureError, OSError, DatabaseError, GraderError) as exc:
        return _infrastructure_fault(task, kind, record, generation, exc)
    except Exception as exc:  # an engine bug: do not blame the student, do not loop forever
        logger.exception("engine failed on %s %s", kind.name, record.pk)
        return _infrastructure_fault(task, kind, record, generation, exc)
    # 3. Save, unless a requeue started meanwhile; the result's metrics are committed with it.
    with transaction.atomic():
        saved = kind.save(record, generation, result)
        if saved == "saved":
            signals.result_saved.send(type(kind), queue=kind.queue(record), kind=kind.name,
                                      status="graded" if result.get("status") == "graded" else "error",
                                      result=result, latency_s=_latency(record))
    return saved


def _latency(record) -> float | None:
    queued = getattr(record, "queued_at", None)
    return (timezone.now() - queued).total_seconds() if queued else None


def _infrastructure_fault(task, kind: Kind, record, generation: int, exc: BaseException) -> str:
    logger.warning("infrastructure fault grading %s %s: %s", kind.name, record.pk, exc)
    if task.request.retries < task.max_retries and not task.request.is_eager:
        with transaction.atomic():
            kind.records().filter(pk=record.pk, generation=generation).update(
                state=State.QUEUED, retries=task.request.retries + 1,
                message=f"The grader had a problem and will try again shortly ({type(exc).__name__}).",
            )
            signals.infrastructure_fault.send(type(kind), queue=kind.queue(record), kind=kind.name, final=False)
        raise task.retry(exc=exc, countdown=backoff(task.request.retries))
    if kind.previous_result_stands(record):
        message = (f"The regrade could not run because of a problem on our side ({type(exc).__name__}); "
                   "the previous result stands. Staff can regrade it again.")
        with transaction.atomic():
            if kind.records().filter(pk=record.pk, generation=generation).update(
                    state=State.GRADED, finished_at=timezone.now(), retries=task.request.retries, message=message):
                signals.infrastructure_fault.send(type(kind), queue=kind.queue(record), kind=kind.name, final=True)
        return "regrade-failed"
    message = kind.infrastructure_message.format(error=f"{type(exc).__name__}: {str(exc)[:300]}")
    with transaction.atomic():
        updated = kind.records().filter(pk=record.pk, generation=generation).update(
            state=State.ERROR, finished_at=timezone.now(), retries=task.request.retries, message=message)
        if updated:
            kind.fail(record, message)
            signals.infrastructure_fault.send(type(kind), queue=kind.queue(record), kind=kind.name, final=True)
    return "infrastructure-error"


def grading_task(kind: Kind):
    """Register ``kind`` and make its Celery task (named kind.task_name; args: record pk, generation)."""
    register(kind)

    @shared_task(bind=True, name=kind.task_name, acks_late=True, reject_on_worker_lost=True,
                 max_retries=MAX_RETRIES, ignore_result=True)
    def grade(self, pk: int, generation: int) -> str:
        return run(self, kind, pk, generation)

    return grade
