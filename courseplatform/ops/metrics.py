"""Metrics in the Prometheus text format, for what an operator pages on.

Three sources, one endpoint (`/metrics`, views.metrics):
- the database's present state, read at scrape time through the same function the staff queue page
  uses (`submissions.queue.staff_overview`): queue depth, age of the oldest waiting submission and
  running gradings per queue, the age of the oldest grading lease (a worker that stopped
  heartbeating), the workers holding leases;
- counters that several processes move, kept in the database (ops.models.MetricCounter): grading
  results per status (graded / error / infrastructure fault), sandbox limit hits per kind (time,
  memory, processes), the grading-latency histogram (queued -> result), failed and retried Celery
  tasks;
- per-process request metrics of django-prometheus (latency and responses per view and method); with
  gunicorn's several workers set PROMETHEUS_MULTIPROC_DIR so they are summed across processes.

Counters are bumped after the fact they count is committed; a counter that cannot be written is
logged and never fails the grading it counts.
"""
from __future__ import annotations

import logging
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from .models import MetricCounter

log = logging.getLogger(__name__)

PREFIX = "courseplatform"
# Grading latency buckets (seconds, queued -> result): from a warm CPU grade to a GPU fine-tuning run.
LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800)
LIMIT_KINDS = ("time", "memory", "processes")


def _labels(**labels) -> str:
    return ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _parse(labels: str) -> dict[str, str]:
    out = {}
    for pair in filter(None, _split(labels)):
        key, _, value = pair.partition("=")
        out[key] = value[1:-1].replace(r"\n", "\n").replace(r"\"", '"').replace(r"\\", "\\")
    return out


def _split(labels: str):
    part, quoted, escaped = "", False, False
    for ch in labels:
        if ch == "," and not quoted:
            yield part
            part = ""
            continue
        part += ch
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
    yield part


def bump(name: str, amount: float = 1.0, **labels) -> None:
    bump_many([(name, _labels(**labels))], amount)


def bump_many(keys: list[tuple[str, str]], amount: float = 1.0) -> None:
    """Add `amount` to each (name, labels) counter, creating the missing ones; never raises."""
    try:
        with transaction.atomic():
            for name, labels in keys:
                if not MetricCounter.objects.filter(name=name, labels=labels).update(value=F("value") + amount):
                    try:
                        with transaction.atomic():
                            MetricCounter.objects.create(name=name, labels=labels, value=amount)
                    except IntegrityError:  # another process created it meanwhile
                        MetricCounter.objects.filter(name=name, labels=labels).update(value=F("value") + amount)
    except DatabaseError as exc:
        log.warning("metrics not recorded (%s): %s", ", ".join(n for n, _ in keys), exc)


def limits_hit(result: dict) -> set[str]:
    """The sandbox limits a result ran into, from the engine's per-test statuses and messages:
    'time' (a test timed out, or the total time ran out), 'memory' (ran out of memory, the cgroup's
    OOM kill), 'processes' (the process/thread limit)."""
    hit = set()
    for test in result.get("tests") or []:
        if not isinstance(test, dict):
            continue
        status = str(test.get("status", ""))
        message = str(test.get("message", "")).lower()
        if status == "timeout" or "time limit" in message:
            hit.add("time")
        if "out of memory" in message or "memory limit" in message or "mb of memory" in message:
            hit.add("memory")
        if ("process limit" in message or ("processes" in message and "limit" in message)
                or "blockingioerror" in message or "resource temporarily unavailable" in message):
            hit.add("processes")
    message = str(result.get("message", "")).lower()
    if "out of memory" in message or "mb of memory" in message:
        hit.add("memory")
    return hit


def record_result(queue: str, kind: str, status: str, result: dict | None, latency_s: float | None) -> None:
    """A grading result was saved: its status ('graded' or 'error'), its limit hits and its latency.
    kind: what was graded (the grading package's job kind: submission, quiz answer, quiz check)."""
    keys = [(f"{PREFIX}_grading_results_total", _labels(queue=queue, kind=kind, status=status))]
    keys += [(f"{PREFIX}_sandbox_limit_hits_total", _labels(queue=queue, kind=kind, limit=limit))
             for limit in sorted(limits_hit(result or {}))]
    if latency_s is not None and latency_s >= 0:
        name = f"{PREFIX}_grading_latency_seconds"
        keys += [(f"{name}_bucket", _labels(queue=queue, le=_le(b))) for b in LATENCY_BUCKETS if latency_s <= b]
        keys += [(f"{name}_bucket", _labels(queue=queue, le="+Inf")), (f"{name}_count", _labels(queue=queue))]
        bump_many(keys)
        bump(f"{name}_sum", latency_s, queue=queue)
        return
    bump_many(keys)


def record_infrastructure_fault(queue: str, kind: str, final: bool) -> None:
    """The platform (not the submission) failed a grading: retried, or given up as an error."""
    bump(f"{PREFIX}_grading_results_total", queue=queue, kind=kind,
         status="infrastructure_fault" if final else "infrastructure_retry")


def record_task(task_name: str, outcome: str) -> None:
    """A Celery task failed (raised) or was retried (Celery's task_failure / task_retry signals)."""
    bump(f"{PREFIX}_celery_tasks_total", task=task_name, outcome=outcome)


def _le(bound: float) -> str:
    return f"{float(bound):g}" if bound != int(bound) else f"{float(bound):.1f}"


class DatabaseCollector:
    """The database's present state and the shared counters, read once per scrape."""

    def collect(self):
        yield from self._state()
        yield from self._counters()

    def _state(self):
        from courseplatform.submissions.models import State, Submission
        from courseplatform.submissions.queue import staff_overview

        now = timezone.now()
        overview = staff_overview(now=now)
        depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Submissions waiting in the queue", labels=["queue"])
        age = GaugeMetricFamily(f"{PREFIX}_queue_oldest_age_seconds",
                                "Seconds the oldest waiting submission has waited (0: none waiting)", labels=["queue"])
        running = GaugeMetricFamily(f"{PREFIX}_grading_running", "Submissions being graded now", labels=["queue"])
        for q in overview["queues"]:
            depth.add_metric([q["queue"]], q["waiting"])
            age.add_metric([q["queue"]], q["oldest_wait_s"] or 0)
            running.add_metric([q["queue"]], q["running"])
        yield from (depth, age, running)

        lease = GaugeMetricFamily(f"{PREFIX}_grading_lease_age_seconds",
                                  "Seconds since the stalest running grading's worker last heartbeated",
                                  labels=["queue"])
        workers = GaugeMetricFamily(f"{PREFIX}_worker_last_heartbeat_seconds",
                                    "Seconds since each grading worker (holding a lease) last heartbeated",
                                    labels=["worker"])
        stalest: dict[str, float] = {}
        seen: dict[str, float] = {}
        for queue, worker, beat, started in Submission.objects.filter(state=State.RUNNING).values_list(
                "assignment__queue", "worker", "heartbeat_at", "started_at"):
            when = beat or started
            if when is None:
                continue
            seconds = max(0.0, (now - when).total_seconds())
            stalest[queue] = max(stalest.get(queue, 0.0), seconds)
            host = (worker or "unknown").split(" pid ")[0]
            seen[host] = min(seen.get(host, seconds), seconds)
        for queue in ("cpu", "gpu"):
            lease.add_metric([queue], stalest.get(queue, 0.0))
        for host, seconds in sorted(seen.items()):
            workers.add_metric([host], seconds)
        yield from (lease, workers)

    def _counters(self):
        families: dict[str, object] = {}
        histograms: dict[tuple, dict] = {}
        for row in MetricCounter.objects.order_by("name", "labels"):
            labels = _parse(row.labels)
            name = row.name
            hist = next((h for h in ("_bucket", "_count", "_sum") if name.endswith(h)), None)
            if hist and name.startswith(f"{PREFIX}_grading_latency_seconds"):
                le = labels.pop("le", None)
                key = tuple(sorted(labels.items()))
                h = histograms.setdefault(key, {"buckets": {}, "count": 0.0, "sum": 0.0})
                if hist == "_bucket":
                    h["buckets"][le] = row.value
                elif hist == "_count":
                    h["count"] = row.value
                else:
                    h["sum"] = row.value
                continue
            base = name[: -len("_total")] if name.endswith("_total") else name
            family = families.get(base)
            if family is None:
                family = families[base] = CounterMetricFamily(base, _HELP.get(base, base), labels=sorted(labels))
            family.add_metric([labels[k] for k in sorted(labels)], row.value)
        yield from families.values()
        if histograms:
            latency = HistogramMetricFamily(f"{PREFIX}_grading_latency_seconds",
                                            "Seconds from entering the queue to the saved result",
                                            labels=["queue"])
            for key, h in histograms.items():
                buckets = [(_le(b), h["buckets"].get(_le(b), 0.0)) for b in LATENCY_BUCKETS]
                buckets.append(("+Inf", h["buckets"].get("+Inf", h["count"])))
                latency.add_metric([dict(key).get("queue", "")], buckets, h["sum"])
            yield latency


_HELP = {
    f"{PREFIX}_grading_results": "Grading results saved, per queue and status (graded, error, infrastructure_fault, "
                                 "infrastructure_retry)",
    f"{PREFIX}_sandbox_limit_hits": "Results in which the sandbox stopped the submission at a limit (time, memory, "
                                    "processes)",
    f"{PREFIX}_celery_tasks": "Celery tasks that failed (raised) or were retried, per task",
}
