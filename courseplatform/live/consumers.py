"""The WebSocket of a phone or a staff screen: ws/live/<live_id>/?as=phone|screen.

On connect (and so on every reconnect) the page is sent the current state from the database;
afterwards it gets what push.py broadcasts. The socket only receives: answers and the
instructor's steps are plain POSTs (views.py), stored before anyone is told.
"""
from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from courseplatform.courses.models import Membership, Role, STAFF_ROLES
from courseplatform.quizzes import bank

from . import push
from .models import LiveQuestion, LiveSession


def _load_sync(user, live_id: int, as_: str):
    """(live, role) if this user may watch this session as ``as_``, else (None, reason)."""
    if not user.is_authenticated:
        return None, "login"
    live = LiveSession.objects.select_related("course").filter(pk=live_id).first()
    if live is None:
        return None, "missing"
    role = Membership.objects.filter(course=live.course, user=user).values_list("role", flat=True).first()
    if role is None and user.is_superuser:
        role = Role.INSTRUCTOR
    if role is None:
        return None, "not a member"
    if as_ == "screen" and role not in STAFF_ROLES:
        return None, "staff only"
    if as_ == "phone" and role != Role.STUDENT:
        return None, "students only"
    return live, role


def _initial_sync(live_id: int, user, as_: str) -> dict:
    from .services import personal_state, staff_state

    live = LiveSession.objects.get(pk=live_id)
    return staff_state(live) if as_ == "screen" else personal_state(live, user)


# Not thread-sensitive: the lookups of many sockets connecting at once (300 phones after a restart of
# the push server) run side by side in the thread pool instead of one after another in one thread,
# so every handshake finishes well within the server's handshake timeout.
_load = database_sync_to_async(_load_sync, thread_sensitive=False)
_initial = database_sync_to_async(_initial_sync, thread_sensitive=False)


_slots: asyncio.Semaphore | None = None


def _connect_slots() -> asyncio.Semaphore:
    """At most 32 sockets of this process set themselves up at once (database lookups, group_add):
    a storm of reconnects queues here for milliseconds instead of opening hundreds of database and
    Redis connections at the same moment."""
    global _slots
    if _slots is None:
        _slots = asyncio.Semaphore(32)
    return _slots


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.live_id = int(self.scope["url_route"]["kwargs"]["live_id"])
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.as_ = (query.get("as") or ["phone"])[0]
        if self.as_ not in ("phone", "screen"):
            await self.close(code=4400)
            return
        user = self.scope.get("user")
        async with _connect_slots():
            live, why = await _load(user, self.live_id, self.as_)
            if live is None:
                await self.close(code=4403)
                return
            self.user = user
            self.group = push.staff_group(self.live_id) if self.as_ == "screen" else push.phones_group(self.live_id)
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.accept()
            await self.send_json(await _initial(self.live_id, user, self.as_))

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The only message a page sends: "resync" after it noticed a gap (a reconnect does the same).
        if isinstance(content, dict) and content.get("type") == "resync":
            await self.send_json(await _initial(self.live_id, self.user, self.as_))

    async def live_state(self, event):
        state = event["state"]
        personal = event.get("personal")
        if personal and self.as_ == "phone":
            q = LiveQuestion(pk=personal["id"], live_id=personal["live"], key=personal["key"], kind=personal["kind"],
                             spec=personal["spec"], personal=True, position=personal["position"], snapshot={})
            from .services import _public_question, _seed

            snap = bank.build_snapshot(q.spec, param_seed=_seed(q.live_id, q.key, self.user.pk), choice_seed=0,
                                       shuffle_choices=False)
            state = {**state, "question": _public_question(snap, q)}
        if self.as_ == "phone":
            state = {**state, "fresh": True}  # no personal fields: the page keeps its own, or asks me.json
        await self.send_json(state)

    async def live_counts(self, event):
        await self.send_json(event["counts"])
