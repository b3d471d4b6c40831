"""The job interface: what the one grading path needs to know about a kind of engine work.

A kind (``Kind`` subclass, registered with ``register``) names its Celery task and its lease
records: a model with the columns state, generation, queued_at, started_at, finished_at,
heartbeat_at, deliveries, retries, worker, task_id, message (submissions.Submission has them;
grading.models.GradingJob holds them for the kinds whose row does not). Everything else (claim,
lease, retries, sweeper, requeue) is written once, in grading/worker.py, grading/sweeper.py and here.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from courseplatform.celery import app

from .models import PENDING_STATES, GradingJob, State

KINDS: dict[str, Kind] = {}


class InfrastructureError(Exception):
    """A fault of the platform, not of the student's code: retried, then reported as ours."""


class Gone(Exception):
    """The object the job grades no longer exists or no longer waits for grading (deleted, or
    graded another way): the job ends without a result."""


@dataclass
class EngineCall:
    """What the engine grades: grader.api.grade(pack_dir, filename, data, only_visible=..., queue=...)."""

    pack_dir: Path
    filename: str
    data: bytes
    only_visible: bool = False
    queue: str | None = None  # where it runs when not the pack's queue (a GPU pack's check: "cpu")
    decoded: object = None    # the upload's decoded form for this pack, kept by the web's intake (real engine only)


class Kind:
    """One kind of engine work. Subclasses set ``name``, ``task_name`` and implement ``call`` and
    ``save``; ``fail`` tells the student's side that grading gave up."""

    name: str = ""
    task_name: str = ""
    model: type[models.Model] = GradingJob
    order: tuple = ("queued_at", "pk")  # the order requeued records are sent in
    infrastructure_message = ("The grader could not grade this because of a problem on our side ({error}). "
                              "It is not your fault; staff can regrade it.")

    def records(self) -> models.QuerySet:
        """This kind's lease records."""
        if self.model is GradingJob:
            return GradingJob.objects.filter(kind=self.name)
        return self.model.objects.all()

    def claim_queryset(self) -> models.QuerySet:
        return self.records()

    def queue(self, record) -> str:
        return getattr(record, "queue", "") or "cpu"

    def queues(self) -> list[str]:
        """The queues where this kind's messages may wait (for the sweeper's look into the broker)."""
        return sorted(set(self.records().filter(state=State.QUEUED).values_list("queue", flat=True)) or {"cpu"})

    def call(self, record) -> EngineCall:  # pragma: no cover - abstract
        """The engine's input; raises InfrastructureError when trusted storage fails us."""
        raise NotImplementedError

    def save(self, record, generation: int, result: dict) -> str:  # pragma: no cover - abstract
        """Store the engine's result unless the generation moved on; "saved" or "stale"."""
        raise NotImplementedError

    def previous_result_stands(self, record) -> bool:
        """After an infrastructure fault that ends a job's retries: True when the record had a result
        before (a regrade), which then stands (state graded again) instead of becoming an error."""
        return False

    def fail(self, record, message: str) -> None:
        """Grading stopped for good with ``message`` (the lease record is already marked error)."""

    def stuck(self, now, margin_s: float, queued_after_s: float) -> list[int]:
        """Records the sweeper requeues besides lapsed leases and lost messages: queued for longer
        than queued_after_s (a message lost in a way the broker check cannot see)."""
        return list(self.records().filter(state=State.QUEUED, queued_at__lt=now - timedelta(
            seconds=queued_after_s)).values_list("pk", flat=True))


def register(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


def kind_of(kind: Kind | str) -> Kind:
    """A kind, or the kind registered under this name (apps' services name kinds: they never import
    the tasks modules that define them)."""
    return KINDS[kind] if isinstance(kind, str) else kind


def kind_for_task(task_name: str) -> Kind | None:
    return next((k for k in KINDS.values() if k.task_name == task_name), None)


def on_commit(fn) -> None:
    transaction.on_commit(fn)


def send_on_commit(kind: Kind | str, record) -> None:
    """Send the kind's task for this record once the row is committed, to the record's queue."""
    kind = kind_of(kind)
    pk, generation, queue = record.pk, record.generation, kind.queue(record)

    def send():
        result = app.tasks[kind.task_name].apply_async(args=[pk, generation], queue=queue)
        kind.records().filter(pk=pk, generation=generation).update(task_id=(result.id or "")[:64])

    on_commit(send)


def enqueue(kind: Kind | str, object_id: int, queue: str, message: str = "Queued.") -> GradingJob:
    """Queue the work on one object (a GradingJob kind): a new job, or the existing one sent again
    as a fresh generation (a regrade: an older generation's late result is ignored). Call it inside
    the transaction that makes the object wait for grading; the task is sent once it commits."""
    kind = kind_of(kind)
    now = timezone.now()
    job, created = GradingJob.objects.select_for_update().get_or_create(
        kind=kind.name, object_id=object_id, defaults={"queue": queue, "message": message, "queued_at": now})
    if not created:
        GradingJob.objects.filter(pk=job.pk).update(
            queue=queue, state=State.QUEUED, generation=F("generation") + 1, queued_at=now, started_at=None,
            finished_at=None, heartbeat_at=None, deliveries=0, retries=0, message=message)
        job.refresh_from_db()
    send_on_commit(kind, job)
    return job


def requeue(kind: Kind | str, ids, message: str, *, fresh: bool = False, reset_deliveries: bool = False,
            only_pending: bool = False, lapsed_before=None) -> int:
    """The one requeue: send these records again with a new generation; an old message, or a late
    result of the old generation, is then ignored.

    fresh (a regrade by staff): the record enters the queue now with its retries reset (and its
    delivery count with reset_deliveries). Otherwise (the sweeper's recovery) it keeps its place
    (queued_at) and its delivery and retry counts, so a submission that kills workers is stopped.
    only_pending: only those still queued or running. lapsed_before: only those running with no
    sign of life since then, re-checked under the row lock (two sweepers, a heartbeat meanwhile)."""
    kind = kind_of(kind)
    rows = kind.records().filter(pk__in=list(ids))
    if only_pending or lapsed_before is not None:
        rows = rows.filter(state__in=PENDING_STATES)
    if lapsed_before is not None:
        rows = rows.filter(state=State.RUNNING).filter(
            models.Q(heartbeat_at__lt=lapsed_before) | models.Q(heartbeat_at__isnull=True, started_at__lt=lapsed_before))
    fields = {"state": State.QUEUED, "generation": F("generation") + 1, "started_at": None, "finished_at": None,
              "heartbeat_at": None, "message": message}
    count = 0
    with transaction.atomic():
        locked = rows.order_by(*kind.order).select_for_update(of=("self",))
        if kind.model is not GradingJob:
            locked = locked.select_related(*getattr(kind, "related", ()))
        for record in locked:
            update = dict(fields)
            if fresh:
                update.update(queued_at=timezone.now(), retries=0, **({"deliveries": 0} if reset_deliveries else {}))
            kind.records().filter(pk=record.pk).update(**update)
            record.refresh_from_db()
            send_on_commit(kind, record)
            count += 1
    return count
