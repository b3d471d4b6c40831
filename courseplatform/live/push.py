"""Push to the phones and screens of a session through the channel layer (settings.CHANNEL_LAYERS:
Redis in production and tests, in-memory under `make run`). Two groups per session: the students'
phones, and the staff's screens (control and projector), which also get the live counts.

Sending is best effort and happens after the commit: what a message says is already in the
database, and every (re)connecting page is sent the current state (consumers.py), so a message
lost to a restart of the push server or of Redis costs nothing but a moment.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading

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
    try:
        await get_channel_layer().group_send(group, message)
    except Exception:  # Redis down: the pages catch up when they reconnect
        log.warning("live push to %s failed", group, exc_info=True)


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
