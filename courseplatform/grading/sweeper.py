"""Recovery of lost work, for every kind of job (beat runs ``tasks.sweep`` every SWEEP_INTERVAL_S):

  - lapsed leases: a running job whose worker stopped touching heartbeat_at for GRADING_LEASE_S
    (killed, host gone, network cut) is requeued; the old worker's late result, if it ever comes, is
    stale (the generation moved on) and is not saved.
  - lost messages: on Redis, each queued job's message is looked up in the broker (the queue lists
    and the unacknowledged hash); on other brokers a marker message sits in a queue nobody consumes,
    and when it is gone the broker lost its messages, so every queued job is sent again. The
    database is the source of truth.
  - stuck: what each kind adds (submissions: running past the pack's wall limit plus a margin), and
    anything queued for longer than QUEUED_TOO_LONG_S.
"""
from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from courseplatform.celery import app

from .jobs import KINDS, Kind, kind_for_task, requeue
from .models import State

logger = logging.getLogger(__name__)

MARKER_QUEUE = "courseplatform.broker-marker"
LOST_GRACE_S = 30.0  # a message is published right after its row commits: never call it lost before this
UNACKED_GRACE_S = 120.0  # longer than any retry countdown (60 s) a live worker holds a message for
STUCK_MARGIN_S = 120
QUEUED_TOO_LONG_S = 6 * 3600  # lost messages are re-sent by recover() long before


def is_redis(url: str | None = None) -> bool:
    url = url if url is not None else (app.conf.broker_url or "")
    return url.startswith(("redis://", "rediss://", "sentinel://"))


def lapsed_leases(kind: Kind, now: datetime | None = None, lease_s: float | None = None) -> list[int]:
    """Running jobs of this kind whose worker has not shown a sign of life for lease_s."""
    now = now or timezone.now()
    lease = timedelta(seconds=lease_s if lease_s is not None else settings.GRADING_LEASE_S)
    return list(kind.records().filter(state=State.RUNNING).filter(
        Q(heartbeat_at__lt=now - lease) | Q(heartbeat_at__isnull=True, started_at__lt=now - lease)
    ).values_list("pk", flat=True))


def broker_lost_messages() -> bool:
    """True when the broker lost its messages since the last call (the marker is gone); the marker
    is put back. The first call on a new broker also answers True (nothing to tell them apart)."""
    from kombu import Exchange, Queue

    exchange = Exchange(MARKER_QUEUE, type="direct", durable=True)
    marker = Queue(MARKER_QUEUE, exchange, routing_key=MARKER_QUEUE, durable=True, auto_delete=False)
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        channel = conn.channel()
        try:
            try:
                if hasattr(channel, "_size"):
                    # kombu's virtual transports (Redis): the list's length. A passive declare would
                    # look the queue up through a pipeline that ignores global_keyprefix.
                    count = channel._size(MARKER_QUEUE)
                else:
                    _, count, _ = channel.queue_declare(MARKER_QUEUE, passive=True)
            except Exception:  # no such queue (AMQP closes the channel: take a fresh one)
                count = 0
                channel.close()
                channel = conn.channel()
            if count:
                return False
            bound = marker(channel)
            bound.declare()
            producer = conn.Producer(channel)
            producer.publish({"marker": timezone.now().isoformat()}, exchange=exchange, routing_key=MARKER_QUEUE,
                             delivery_mode=2, serializer="json", declare=[marker])
            return True
        finally:
            try:
                channel.close()
            except Exception:
                pass


def redis_messages(queues=("cpu", "gpu")) -> dict[tuple[str, int, int], float | None]:
    """The grading messages a Redis broker holds: {(kind, pk, generation): None when waiting in a
    queue list, or the time it was delivered when it sits unacknowledged with a consumer}.
    kombu's layout: one list per queue and priority step, plus the "unacked" hash and its
    "unacked_index" (delivery time) of the messages consumers hold; keys carry global_keyprefix."""
    import redis  # only where the broker is Redis (local runs use the filesystem broker)

    options = app.conf.broker_transport_options or {}
    prefix = options.get("global_keyprefix", "")
    steps = options.get("priority_steps") or [0, 3, 6, 9]
    sep = options.get("sep", "\x06\x16")
    client = redis.Redis.from_url(app.conf.broker_url, socket_timeout=10, socket_connect_timeout=5)
    found: dict[tuple[str, int, int], float | None] = {}

    def key_of(raw) -> tuple[str, int, int] | None:
        try:
            message = json.loads(raw)
            if isinstance(message, list):  # unacked entries: [message, exchange, routing_key]
                message = message[0]
            kind = kind_for_task((message.get("headers") or {}).get("task"))
            if kind is None:
                return None
            args = json.loads(base64.b64decode(message["body"]))[0]
            return kind.name, int(args[0]), int(args[1])
        except Exception:
            return None

    try:
        for queue in queues:
            for pri in steps:
                name = f"{prefix}{queue}{sep}{pri}" if pri else f"{prefix}{queue}"
                for raw in client.lrange(name, 0, -1):
                    k = key_of(raw)
                    if k:
                        found[k] = None
        delivered = {tag.decode(): score for tag, score in client.zrange(f"{prefix}unacked_index", 0, -1, withscores=True)}
        for tag, raw in client.hgetall(f"{prefix}unacked").items():
            k = key_of(raw)
            if k and found.get(k, 0.0) is not None:
                found[k] = delivered.get(tag.decode(), 0.0)
    finally:
        client.close()
    return found


def lost_messages(now: datetime | None = None) -> dict[str, list[int]]:
    """Per kind, the queued jobs whose message the Redis broker does not hold (any more): lost in a
    broker restart, or popped by a worker killed before it recorded the message as unacknowledged;
    or held unacknowledged for longer than UNACKED_GRACE_S by a consumer that never started it (a
    dead one: a live worker starts what it takes at once, acks_late with prefetch 1)."""
    now = now or timezone.now()
    waiting = {}
    for kind in KINDS.values():
        rows = list(kind.records().filter(state=State.QUEUED, queued_at__lt=now - timedelta(seconds=LOST_GRACE_S))
                    .values_list("pk", "generation"))
        if rows:
            waiting[kind] = rows
    if not waiting:
        return {}
    held = redis_messages(sorted({q for kind in waiting for q in kind.queues()}))
    stale_before = now.timestamp() - UNACKED_GRACE_S
    lost: dict[str, list[int]] = {}
    for kind, rows in waiting.items():
        for pk, generation in rows:
            key = (kind.name, pk, generation)
            if key not in held or (held[key] is not None and held[key] < stale_before):
                lost.setdefault(kind.name, []).append(pk)
    return lost


def recover(now: datetime | None = None) -> dict:
    """One pass of the recovery, over every kind; returns what it did."""
    now = now or timezone.now()
    done = {"lapsed": 0, "resent": 0}
    # Lost messages first: the jobs requeued below for a lapsed lease have fresh messages.
    # Redis: each waiting job's message is looked up. Other brokers (RabbitMQ: durable queues, a
    # dead consumer's messages requeued at once) are only checked for a wholesale loss.
    try:
        if is_redis():
            lost = lost_messages(now)
        else:
            lost = ({name: list(kind.records().filter(state=State.QUEUED).values_list("pk", flat=True))
                     for name, kind in KINDS.items()} if broker_lost_messages() else {})
    except Exception as exc:  # the broker is down: the next sweep will look again
        logger.warning("cannot check the broker for lost messages: %s", exc)
        lost = {}
    for name, ids in lost.items():
        if ids:
            count = requeue(KINDS[name], ids, "Queued (sent to the grader again: the broker had lost its message).",
                            only_pending=True)
            done["resent"] += count
            logger.warning("the broker lost the messages of %d queued %s job(s): sent again", count, name)
    before = now - timedelta(seconds=settings.GRADING_LEASE_S)
    for kind in KINDS.values():
        ids = lapsed_leases(kind, now)
        if ids:
            count = requeue(kind, ids, "Queued again: the worker grading it stopped responding.", lapsed_before=before)
            done["lapsed"] += count
            logger.warning("requeued %d %s job(s) whose worker stopped responding", count, kind.name)
    return done


def sweep(now: datetime | None = None) -> int:
    """recover(), then what is stuck in some other way; returns how many jobs were requeued."""
    now = now or timezone.now()
    done = recover(now)
    count = 0
    for kind in KINDS.values():
        ids = kind.stuck(now, STUCK_MARGIN_S, QUEUED_TOO_LONG_S)
        if ids:
            n = requeue(kind, ids, "Queued for regrading.", fresh=True, only_pending=True)
            count += n
            logger.warning("requeued %d stuck %s job(s)", n, kind.name)
    return count + done["lapsed"] + done["resent"]
