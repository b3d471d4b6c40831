"""Push to the phones and screens of a session through the channel layer (settings.CHANNEL_LAYERS:
Redis in production and tests, in-memory under `make run`). Two groups per session: the students'
phones, and the staff's screens (control and projector), which also get the live counts.

Sending is best effort and happens after the commit: what a message says is already in the
database, and every (re)connecting page is sent the current state (consumers.py), so a message
lost to a restart of the push server or of Redis costs nothing but a moment.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import weakref

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def phones_group(live_id: int) -> str:
    return f"live-{live_id}-phones"


def staff_group(live_id: int) -> str:
    return f"live-{live_id}-staff"


_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, in a daemon thread, that owns the channel layer's Redis
    connections: a request hands its message over and answers at once, instead of building an
    event loop and a Redis connection for every publish (async_to_sync). Created lazily, so each
    forked web worker gets its own."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-push", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


async def _publish(group: str, message: dict) -> None:
    # The group travels in the message: each push process hands it to its sockets of that group.
    message = {**message, "group": group}
    for attempt in range(3):  # a Redis that restarted: the first try finds the old connection dead
        try:
            await get_channel_layer().group_send(group, message)
            return
        except Exception:  # noqa: BLE001 - Redis down: the pages catch up when they reconnect
            if attempt == 2:
                log.warning("live push to %s failed", group, exc_info=True)
            else:
                await asyncio.sleep(0.2)


def _send(group: str, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if type(layer).__module__.startswith("channels_redis"):
        asyncio.run_coroutine_threadsafe(_publish(group, message), _publisher_loop())
    else:
        # The in-memory layer (`make run`) lives in the server's own event loop: async_to_sync from
        # a view's thread runs the send there.
        async_to_sync(_publish)(group, message)


def state(live_id: int) -> None:
    """The session's phase or question changed: everyone gets the new state."""
    from .models import LiveSession
    from .services import public_state, staff_state

    live = LiveSession.objects.get(pk=live_id)
    phones = public_state(live)
    q = live.questions.filter(position=live.current).first() if phones["question"] else None
    message = {"type": "live.state", "state": phones}
    if q is not None and q.personal:
        # Each phone's consumer draws its student's own numbers from this (never sent to a phone).
        message["personal"] = {"id": q.pk, "key": q.key, "live": live.pk, "spec": q.spec, "kind": q.kind,
                               "position": q.position}
    _send(phones_group(live_id), message)
    _send(staff_group(live_id), {"type": "live.state", "state": staff_state(live)})


def counts(live_id: int, question_id: int | None = None) -> None:
    """Someone joined or answered: the screens get the new numbers (rebuilt from the database)."""
    from .models import LiveQuestion, LiveSession
    from .services import counts as count

    live = LiveSession.objects.get(pk=live_id)
    q = LiveQuestion.objects.filter(pk=question_id).first() if question_id else None
    _send(staff_group(live_id), {"type": "live.counts", "counts": count(live, q)})


# The screens' counts follow the answers at most every COUNTS_EVERY seconds: an answer marks its
# session due, and one count from the database (the truth, so nothing to rebuild after a restart of
# Redis or of this process) is pushed for all the answers of that moment, instead of one count query
# and one push per answer. Per event loop: the push server's own, or a web process's publisher loop.
COUNTS_EVERY = 0.2
_counter = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="live-counts")  # its own DB connection
_due: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, int | None]]" = weakref.WeakKeyDictionary()


def _counts_message(live_id: int, question_id: int | None) -> dict | None:
    from django.db import close_old_connections

    from .models import LiveQuestion, LiveSession
    from .services import counts as count

    close_old_connections()
    try:
        live = LiveSession.objects.filter(pk=live_id).first()
        if live is None:
            return None
        q = LiveQuestion.objects.filter(pk=question_id).first() if question_id else None
        return {"type": "live.counts", "counts": count(live, q)}
    finally:
        close_old_connections()


async def _flush_counts(live_id: int) -> None:
    loop = asyncio.get_running_loop()
    question_id = _due.get(loop, {}).pop(live_id, None)
    try:
        message = await loop.run_in_executor(_counter, _counts_message, live_id, question_id)
    except Exception:  # the database is away: the next answer or reconnect brings the numbers
        log.warning("live counts of session %s failed", live_id, exc_info=True)
        return
    if message is not None:
        await _publish(staff_group(live_id), message)


def _mark_due(live_id: int, question_id: int | None) -> None:
    """In the event loop: count this session soon (one pending count per session)."""
    loop = asyncio.get_running_loop()
    due = _due.setdefault(loop, {})
    if live_id not in due:
        loop.call_later(COUNTS_EVERY, lambda: loop.create_task(_flush_counts(live_id)))
    due[live_id] = question_id


def counts_soon(live_id: int, question_id: int | None = None) -> None:
    """An answer was stored: the screens get the new numbers within COUNTS_EVERY seconds. Called
    from the push server's event loop (an answer over the socket) or from a web thread (a POST)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        _mark_due(live_id, question_id)
        return
    if type(layer).__module__.startswith("channels_redis"):
        loop = _publisher_loop()
        loop.call_soon_threadsafe(_mark_due, live_id, question_id)
    else:
        counts(live_id, question_id)  # the in-memory layer (`make run`): at once, through the server's loop


def close_db_connections() -> None:
    """Close the counting thread's database connection (tests, before their database is dropped)."""
    from django.db import connections

    _counter.submit(connections.close_all).result(30)
