"""The grading queue as students and staff see it, fair share, and recovery of lost work.

Fair share (FAIR_SHARE, on by default): a submission's tier is how many other submissions its
student made to the same assignment in the hour before it (capped at MAX_TIER). The Celery router
below turns the tier into a message priority, so a student's third resubmission waits behind other
students' first attempts; the brokers order the messages (Redis: one list per priority step, 0
first; RabbitMQ: x-max-priority queues, higher first). Within a tier the order is first come,
first served.

Position and ETA are computed from the database, which mirrors the broker's order: the queued
submissions of the same queue ahead of this one (lower tier, or same tier and queued earlier), the
grading slots in use (the submissions running on that queue), and the measured grading times of
each pack (median of its recent grades).

Recovery of lapsed leases and lost messages is the one sweeper's, for every kind of grading job
(courseplatform/grading/sweeper.py).
"""
from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone

from courseplatform.grading.sweeper import is_redis

from . import dispatch
from .models import FINAL_STATES, PENDING_STATES, Assignment, State, Submission

logger = logging.getLogger(__name__)

MAX_TIER = 3
FAIR_WINDOW = timedelta(hours=1)
GRADE_TASK = dispatch.GRADE_SUBMISSION
RECENT_GRADES = 50


def fair_share_enabled() -> bool:
    return bool(settings.FAIR_SHARE)


def broker_priority(tier: int, url: str | None = None) -> int:
    """Tier 0..MAX_TIER -> the broker's priority (Redis: 0 first; AMQP: 9 first)."""
    step = 9 // MAX_TIER
    tier = max(0, min(MAX_TIER, int(tier)))
    return tier * step if is_redis(url) else 9 - tier * step


def tier_for(sub) -> int:
    """How many other submissions of this student to this assignment came in the hour before it."""
    if not fair_share_enabled() or sub.is_test_run:
        return 0
    earlier = Submission.objects.filter(
        assignment_id=sub.assignment_id, student_id=sub.student_id, is_test_run=False,
        created_at__gte=sub.created_at - FAIR_WINDOW,
    ).filter(Q(created_at__lt=sub.created_at) | Q(created_at=sub.created_at, pk__lt=sub.pk))
    return min(MAX_TIER, earlier.count())


def route_task(name, args, kwargs, options, task=None, **kw):
    """Celery router (settings.CELERY_TASK_ROUTES): the grading task's priority from fair share.
    The queue stays the one the caller chose (the pack's queue)."""
    if name != GRADE_TASK or not args:
        return None

    try:
        sub = Submission.objects.only("id", "assignment_id", "student_id", "created_at", "is_test_run").get(pk=args[0])
    except Exception:  # missing row or no database: send it with the default priority
        return None
    tier = tier_for(sub)
    Submission.objects.filter(pk=sub.pk).exclude(fair_tier=tier).update(fair_tier=tier)
    return {"priority": broker_priority(tier)}


# --- measured grading times ---------------------------------------------------------------------


def grading_times(assignment_ids=None, since: datetime | None = None, limit: int = RECENT_GRADES) -> dict[int, list[float]]:
    """Recent grading durations (seconds) per assignment, newest first."""
    qs = Submission.objects.filter(state__in=FINAL_STATES, started_at__isnull=False,
                                   finished_at__isnull=False)
    if assignment_ids is not None:
        qs = qs.filter(assignment_id__in=list(assignment_ids))
    if since is not None:
        qs = qs.filter(finished_at__gte=since)
    out: dict[int, list[float]] = {}
    for aid, started, finished in qs.order_by("-finished_at").values_list("assignment_id", "started_at", "finished_at")[:5000]:
        times = out.setdefault(aid, [])
        if len(times) < limit:
            times.append(max(0.0, (finished - started).total_seconds()))
    return out


def typical_seconds(times: dict[int, list[float]], assignment_id: int, fallback: float | None) -> float | None:
    t = times.get(assignment_id)
    return statistics.median(t) if t else fallback


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(len(ordered) - 1, int(k) + 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --- position and ETA ---------------------------------------------------------------------------


@dataclass
class QueueInfo:
    queue: str
    position: int | None  # 1 = next to start; None when not waiting
    ahead: int
    running: int  # slots in use on this queue
    estimated_start: datetime | None
    estimated_finish: datetime | None
    typical_seconds: float | None


def queue_info(sub, now: datetime | None = None) -> QueueInfo | None:
    """Where a queued or running submission stands; None once it is final."""
    if sub.state not in PENDING_STATES:
        return None
    now = now or timezone.now()
    queue = sub.assignment.queue or "cpu"
    running = list(Submission.objects.filter(state=State.RUNNING, assignment__queue=queue)
                   .values_list("assignment_id", "started_at"))
    ahead_qs = Submission.objects.filter(state=State.QUEUED, assignment__queue=queue).exclude(pk=sub.pk)
    if sub.state == State.QUEUED:
        ahead_qs = ahead_qs.filter(
            Q(fair_tier__lt=sub.fair_tier)
            | Q(fair_tier=sub.fair_tier, queued_at__lt=sub.queued_at)
            | Q(fair_tier=sub.fair_tier, queued_at=sub.queued_at, pk__lt=sub.pk)
        )
    else:
        ahead_qs = ahead_qs.none()
    ahead = list(ahead_qs.values_list("assignment_id", flat=True))
    ids = {sub.assignment_id, *ahead, *(a for a, _ in running)}
    times = grading_times(ids)
    all_times = [t for ts in times.values() for t in ts]
    fallback = statistics.median(all_times) if all_times else None
    mine = typical_seconds(times, sub.assignment_id, fallback)
    if sub.state == State.RUNNING:
        start = sub.started_at
        finish = (start + timedelta(seconds=mine)) if (start and mine is not None) else None
        if finish and finish < now:
            finish = now
        return QueueInfo(queue, None, 0, len(running), start, finish, mine)
    if mine is None:
        return QueueInfo(queue, len(ahead) + 1, len(ahead), len(running), None, None, None)
    # Work before this one starts: what the running gradings have left, plus the queued ones ahead,
    # shared by the slots in use (at least one).
    remaining = 0.0
    for aid, started in running:
        typ = typical_seconds(times, aid, mine)
        elapsed = (now - started).total_seconds() if started else 0.0
        remaining += max(0.0, typ - elapsed)
    work = remaining + sum(typical_seconds(times, aid, mine) for aid in ahead)
    slots = max(1, len(running))
    start = now + timedelta(seconds=work / slots)
    return QueueInfo(queue, len(ahead) + 1, len(ahead), len(running), start, start + timedelta(seconds=mine), mine)


# --- staff view -----------------------------------------------------------------------------------


WORKERS_SEEN_WINDOW = timedelta(minutes=30)


def workers_from_heartbeats(now: datetime | None = None) -> list[dict]:
    """The grading workers as the database knows them, without asking the broker (a control ping
    blocks for its whole timeout on every page load): each running submission's lease is touched by
    its worker every GRADING_HEARTBEAT_S (Submission.heartbeat_at, tasks.Lease), and every result
    names the worker that made it. Per worker, newest first:
      * "grading": it holds a lease renewed within GRADING_LEASE_S (alive);
      * "stale": its lease lapsed (killed, host or network gone; the sweeper requeues its work);
      * "idle": nothing running, its last result came within WORKERS_SEEN_WINDOW."""
    now = now or timezone.now()
    lease = timedelta(seconds=float(settings.GRADING_LEASE_S))
    workers: dict[str, dict] = {}
    running = (Submission.objects.filter(state=State.RUNNING).exclude(worker="")
               .values("worker").annotate(beat=Max("heartbeat_at"), started=Max("started_at"), n=Count("id")))
    for row in running:
        beat = row["beat"] or row["started"]
        alive = beat is not None and now - beat <= lease
        workers[row["worker"]] = {"name": row["worker"], "status": "grading" if alive else "stale", "alive": alive,
                                  "last_seen": beat, "running": row["n"]}
    recent = (Submission.objects.filter(finished_at__gte=now - WORKERS_SEEN_WINDOW).exclude(worker="")
              .values("worker").annotate(last=Max("finished_at")))
    for row in recent:
        w = workers.get(row["worker"])
        if w is None:
            workers[row["worker"]] = {"name": row["worker"], "status": "idle", "alive": now - row["last"] <= lease,
                                      "last_seen": row["last"], "running": 0}
        elif w["last_seen"] is None or row["last"] > w["last_seen"]:
            w["last_seen"] = row["last"]
    out = sorted(workers.values(), key=lambda w: (w["status"] != "grading", w["status"] != "stale", w["name"]))
    for w in out:
        w["seconds_ago"] = round((now - w["last_seen"]).total_seconds()) if w["last_seen"] else None
    return out


def staff_overview(now: datetime | None = None) -> dict:
    """Per queue: waiting, running, oldest waiting; workers (from their stored heartbeats, never a
    broker ping); grading time percentiles per pack."""
    now = now or timezone.now()
    queues = []
    for queue in ("cpu", "gpu"):
        waiting = Submission.objects.filter(dispatch.on_queue(queue), state=State.QUEUED)
        oldest = waiting.order_by("queued_at").values_list("queued_at", flat=True).first()
        by_tier = {t: waiting.filter(fair_tier=t).count() for t in range(MAX_TIER + 1)}
        queues.append({
            "queue": queue,
            "waiting": waiting.count(),
            "waiting_by_tier": by_tier,
            "first_attempts": by_tier[0],
            "resubmissions": sum(by_tier.values()) - by_tier[0],
            "running": Submission.objects.filter(dispatch.on_queue(queue), state=State.RUNNING).count(),
            "oldest_wait_s": round((now - oldest).total_seconds()) if oldest else None,
        })
    times = grading_times(since=now - timedelta(days=1), limit=500)
    packs = []
    for a in Assignment.objects.filter(pk__in=list(times)).select_related("course").order_by("course__slug", "slug"):
        t = times[a.pk]
        packs.append({
            "assignment": a, "course": a.course.slug, "slug": a.slug, "queue": a.queue, "count": len(t),
            "p50": percentile(t, 0.5), "p90": percentile(t, 0.9), "p95": percentile(t, 0.95), "max": max(t),
        })
    workers = workers_from_heartbeats(now)
    return {"queues": queues, "packs": packs, "workers": workers, "now": now,
            "workers_grading": sum(1 for w in workers if w["status"] == "grading"),
            "workers_stale": sum(1 for w in workers if w["status"] == "stale"),
            "lease_s": float(settings.GRADING_LEASE_S), "seen_window_min": int(WORKERS_SEEN_WINDOW.total_seconds() // 60)}


def queue_text(info: QueueInfo | None, now: datetime | None = None) -> str:
    """One line for the CLI and the API: "Position 3 in the gpu queue; starts in about 4 min, result in about 6 min"."""
    if info is None:
        return ""
    now = now or timezone.now()

    def until(when):
        s = max(0, round((when - now).total_seconds()))
        return f"{s} s" if s < 90 else (f"{round(s / 60)} min" if s < 3600 else f"{s // 3600} h {s % 3600 // 60:02d} min")

    if info.position is None:
        text = f"Grading on the {info.queue} queue"
        return text + (f"; result in about {until(info.estimated_finish)}" if info.estimated_finish else "")
    text = f"Position {info.position} in the {info.queue} queue"
    if info.estimated_start:
        text += f"; starts in about {until(info.estimated_start)}, result in about {until(info.estimated_finish)}"
    return text
