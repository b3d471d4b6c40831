"""The WebSocket of a phone or a staff screen: ws/live/<live_id>/?as=phone|screen.

On connect (and so on every reconnect) the page is sent the current state from the database;
afterwards it gets what push.py broadcasts. A phone sends its answers on this socket (the page
falls back to the POST of views.py while the socket is down): each is stored in PostgreSQL
(services.answer, one statement) before the "received" reply naming its request id goes back.
The control page sends the instructor's steps on its socket the same way ({"type": "step"}): the
same role check as the POST (the course's staff, checked again at every step) and the same
services.control, committed (and pushed) in this process before the "stepped" reply.

Every SESSION_EVERY s one query checks, for all of this process's sockets, that their login
session still exists and their user is active; a socket whose session is gone (logged out
elsewhere, expired, the user deactivated) is closed with LOGGED_OUT, which the page shows as
"logged out" instead of reconnecting.

A process that loses its Redis (a restart without persistence, a flush) loses the groups its
sockets joined: a watchdog notices and closes its sockets with code 4001, and the pages reconnect
by themselves, joining the groups again and being sent the current state.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import weakref
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer

from courseplatform.courses.models import Membership, Role, STAFF_ROLES
from courseplatform.quizzes import bank

from . import push
from .models import LiveQuestion, LiveSession

log = logging.getLogger(__name__)
ANSWER_FIELDS = ("choice", "value", "text")
RECONNECT = 4001  # the close code that asks a page to reconnect at once
LOGGED_OUT = 4401  # the login session is gone: the page says so and does not reconnect


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


def _answer_sync(live_id: int, user, session_key: str | None, content: dict) -> dict:
    from .services import LiveError, answer, answer_text, personal_state

    data = {}
    for name in ANSWER_FIELDS:  # the same shape as the form's fields: lists of short strings
        values = content.get(name, [])
        values = values if isinstance(values, list) else [values]
        if len(values) > 50 or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                       and len(str(v)) <= 1000 for v in values):
            return {"ok": False, "status": 400, "message": "That answer is not well formed."}
        data[name] = [str(v) for v in values]
    try:
        row, created = answer(live_id, user, content.get("question"), data, session_key=session_key or "")
    except LiveError as exc:
        live = LiveSession.objects.filter(pk=live_id).first()
        return {"ok": False, "status": exc.status, "message": str(exc),
                "state": personal_state(live, user) if live is not None else None}
    return {"ok": True, "question": row.question_id, "created": created, "text": answer_text(row),
            "message": "Answer received." if created else "Answer received (it had already arrived)."}


def _step_sync(live_id: int, user, session_key: str | None, content: dict) -> dict:
    """One step of the control page on its socket: views.action's checks and services.control."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from .services import LiveError, control, staff_state

    if session_key and not Session.objects.filter(session_key=session_key, expire_date__gt=timezone.now()).exists():
        return {"ok": False, "status": 401, "message": "You have been logged out: log in again."}
    live, role = _load_sync(user, live_id, "screen")
    if live is None or not user.is_active:
        log.warning("live: step %r on session %s refused to user %s (%s)", str(content.get("action"))[:20],
                    live_id, getattr(user, "pk", None), role if live is None else "inactive")
        return {"ok": False, "status": 403, "message": "Only the course's staff can pace this live quiz."}

    def number(name):
        try:
            return int(content.get(name))
        except (TypeError, ValueError):
            return None

    try:
        live = control(live_id, str(content.get("action", ""))[:20], version=number("version"),
                       seconds=number("seconds"))
        ok, status, message = True, 200, "Done."
    except LiveError as exc:
        ok, status, message = False, exc.status, str(exc)
        live.refresh_from_db()
    return {"ok": ok, "status": status, "message": message, "state": staff_state(live)}


def _sessions_alive_sync(pairs: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which (session key, user id) pairs still have their session (not expired) and an active user:
    one query for all the sockets of this process."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session
    from django.db import connection

    keys, users = zip(*pairs)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT k.key, k.uid FROM unnest(%s::varchar[], %s::bigint[]) AS k(key, uid)"
            f" JOIN {Session._meta.db_table} s ON s.session_key = k.key AND s.expire_date > now()"
            f" JOIN {get_user_model()._meta.db_table} u ON u.id = k.uid AND u.is_active",
            [list(keys), list(users)])
        return {(k, int(u)) for k, u in cur.fetchall()}


# Not thread-sensitive: the lookups of many sockets connecting at once (300 phones after a restart of
# the push server) run side by side in the thread pool instead of one after another in one thread,
# so every handshake finishes well within the server's handshake timeout.
_load = database_sync_to_async(_load_sync, thread_sensitive=False)
_initial = database_sync_to_async(_initial_sync, thread_sensitive=False)
_answer = database_sync_to_async(_answer_sync, thread_sensitive=False)
_step = database_sync_to_async(_step_sync, thread_sensitive=False)
_sessions_alive = database_sync_to_async(_sessions_alive_sync, thread_sensitive=False)


_slots: asyncio.Semaphore | None = None


def _connect_slots() -> asyncio.Semaphore:
    """At most 32 sockets of this process set themselves up at once (database lookups, group_add):
    a storm of reconnects queues here for milliseconds instead of opening hundreds of database and
    Redis connections at the same moment."""
    global _slots
    if _slots is None:
        _slots = asyncio.Semaphore(32)
    return _slots


class _Fanout:
    """This process's one channel in each live group it has sockets for: a push to a session is one
    message per push process (not one per socket: 300 phones cost Redis one message, not 300 that
    this process would pop one round trip at a time), handed here to every local socket of the group.
    The message names its group (push._send)."""

    def __init__(self, layer):
        self.layer = layer
        self.channel: str | None = None
        self.members: dict[str, set] = {}
        self.lock = asyncio.Lock()
        self.task: asyncio.Task | None = None

    async def join(self, group: str, consumer) -> None:
        async with self.lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                self.task = asyncio.get_running_loop().create_task(self._run())
            if group not in self.members:
                await self.layer.group_add(group, self.channel)  # Redis down: the handshake fails, the page retries
                self.members[group] = set()
            self.members[group].add(consumer)

    def leave(self, group: str, consumer) -> None:
        # The membership stays (sockets come and go all lecture long); it expires with group_expiry.
        self.members.get(group, set()).discard(consumer)

    def forget(self) -> None:
        """Redis lost the groups: the next socket of each group joins it again."""
        self.members.clear()

    async def _run(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis away: the watchdog reconnects the pages
                await asyncio.sleep(0.5)
                continue
            for consumer in list(self.members.get(message.get("group"), ())):
                consumer.deliver(message)


_fanouts: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Fanout]" = weakref.WeakKeyDictionary()


def _fanout(layer) -> _Fanout:
    loop = asyncio.get_running_loop()
    f = _fanouts.get(loop)
    if f is None or f.layer is not layer:
        f = _fanouts[loop] = _Fanout(layer)
    return f


_open: "weakref.WeakSet[LiveConsumer]" = weakref.WeakSet()
_watchdog: asyncio.Task | None = None
WATCH_EVERY = 1.0


async def _watch_redis(layer) -> None:
    """Every WATCH_EVERY s: is this process's mark still in the channel layer's Redis? A Redis that
    restarted without its data or was flushed has forgotten every group this process's sockets
    joined (they would hear nothing more), and one that was unreachable lost the pushes meanwhile:
    either way the sockets are closed with RECONNECT once Redis answers, and the pages come back."""
    key = f"{layer.prefix}:alive:{secrets.token_hex(8)}"
    marked = lost = False
    while True:
        try:
            r = layer.connection(0)
            if marked and not await r.exists(key):
                lost = True  # restarted without its data, or flushed
            await r.set(key, "1", ex=60)
            marked = True
        except Exception:  # noqa: BLE001 - Redis unreachable: try again
            lost = True
            await asyncio.sleep(WATCH_EVERY)
            continue
        if lost:
            lost = False
            _fanout(layer).forget()
            log.warning("live: the channel layer's Redis lost this process's groups; %d sockets reconnect", len(_open))
            for consumer in list(_open):
                try:
                    await consumer.close(code=RECONNECT)
                except Exception:  # noqa: BLE001 - that one is gone already
                    pass
        await asyncio.sleep(WATCH_EVERY)


def _ensure_watchdog(layer) -> None:
    global _watchdog
    if not type(layer).__module__.startswith("channels_redis"):
        return
    if _watchdog is None or _watchdog.done() or _watchdog.get_loop() is not asyncio.get_running_loop():
        _watchdog = asyncio.get_running_loop().create_task(_watch_redis(layer))


SESSION_EVERY = 2.0
_session_watch: asyncio.Task | None = None


async def _watch_sessions() -> None:
    """Every SESSION_EVERY s: close the sockets whose login session is gone or whose user is no
    longer active (one query for all of this process's sockets)."""
    while True:
        await asyncio.sleep(SESSION_EVERY)
        sockets = [c for c in list(_open) if getattr(c, "session_key", None)]
        if not sockets:
            continue
        try:
            alive = await _sessions_alive({(c.session_key, c.user.pk) for c in sockets})
        except Exception:  # noqa: BLE001 - the database away: try again at the next tick
            log.warning("live: could not check the sockets' login sessions", exc_info=True)
            continue
        gone = [c for c in sockets if (c.session_key, c.user.pk) not in alive]
        if gone:
            log.info("live: %d sockets closed, their login session is gone", len(gone))
        for consumer in gone:
            _open.discard(consumer)
            try:
                await consumer.close(code=LOGGED_OUT)
            except Exception:  # noqa: BLE001 - that one is gone already
                pass


def _ensure_session_watch() -> None:
    global _session_watch
    loop = asyncio.get_running_loop()
    if _session_watch is None or _session_watch.done() or _session_watch.get_loop() is not loop:
        _session_watch = loop.create_task(_watch_sessions())


def _personal_question_sync(personal: dict, user_id: int) -> dict:
    from .services import _public_question, _seed

    q = LiveQuestion(pk=personal["id"], live_id=personal["live"], key=personal["key"], kind=personal["kind"],
                     spec=personal["spec"], personal=True, position=personal["position"], snapshot={})
    snap = bank.build_snapshot(q.spec, param_seed=_seed(q.live_id, q.key, user_id), choice_seed=0,
                               shuffle_choices=False)
    return _public_question(snap, q)


_personal_question = sync_to_async(_personal_question_sync, thread_sensitive=False)
INBOX_LIMIT = 50  # pushes waiting for one socket before it is asked to reconnect (and sent the state)


class LiveConsumer(AsyncJsonWebsocketConsumer):
    # No channel of its own per socket (an alias that names no layer): pushes arrive through this
    # process's fanout, and a socket does not die with a Redis connection (the watchdog decides).
    channel_layer_alias = "live-sockets-have-no-channel"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._pump: asyncio.Task | None = None
        self._ready = False

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
            self.session_key = getattr(self.scope.get("session"), "session_key", None)
            self.group = push.staff_group(self.live_id) if self.as_ == "screen" else push.phones_group(self.live_id)
            layer = get_channel_layer()
            await _fanout(layer).join(self.group, self)
            _ensure_watchdog(layer)
            _ensure_session_watch()
            _open.add(self)
            await self.accept()
            await self.send_json(await _initial(self.live_id, user, self.as_))
            self._ready = True
            self._start_pump()

    async def disconnect(self, code):
        _open.discard(self)
        if self._pump is not None:
            self._pump.cancel()
        if getattr(self, "group", None):
            _fanout(get_channel_layer()).leave(self.group, self)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            return
        if content.get("type") == "resync":  # after the page noticed a gap (a reconnect does the same)
            await self.send_json(await _initial(self.live_id, self.user, self.as_))
        elif content.get("type") == "answer" and self.as_ == "phone":
            # Stored in PostgreSQL before the reply; "rid" is the page's id of this request.
            session = self.scope.get("session")
            reply = await _answer(self.live_id, self.user, getattr(session, "session_key", None), content)
            await self.send_json({"type": "answered", "rid": str(content.get("rid", ""))[:40], **reply})
            if reply.get("status") == 401:  # logged out meanwhile: this socket is done
                await self.close(code=LOGGED_OUT)
        elif content.get("type") == "step":
            # The control page's step (any socket may ask; only the course's staff are obeyed).
            # Committed, and pushed to the groups, before the reply.
            reply = await _step(self.live_id, self.user, self.session_key, content)
            await self.send_json({"type": "stepped", "rid": str(content.get("rid", ""))[:40], **reply})
            if reply.get("status") == 401:
                await self.close(code=LOGGED_OUT)

    def deliver(self, message: dict) -> None:
        """A push for this socket (from the fanout): sent in order by this socket's own task, so one
        slow phone never holds up the others; one too far behind is asked to reconnect."""
        if self._inbox.qsize() >= INBOX_LIMIT:
            asyncio.get_running_loop().create_task(self.close(code=RECONNECT))
            return
        self._inbox.put_nowait(message)
        self._start_pump()

    def _start_pump(self) -> None:
        if self._pump is None and self._ready:  # after the first state: nothing is sent before accept
            self._pump = asyncio.get_running_loop().create_task(self._send_pushes())

    async def _send_pushes(self) -> None:
        while True:
            message = await self._inbox.get()
            handler = getattr(self, str(message.get("type", "")).replace(".", "_"), None)
            try:
                if handler is not None:
                    await handler(message)
            except Exception:  # noqa: BLE001 - the socket is closing; the page gets the state on reconnect
                log.debug("live: a push to one socket failed", exc_info=True)

    async def live_state(self, event):
        state = event["state"]
        personal = event.get("personal")
        if personal and self.as_ == "phone":
            # This student's numbers, drawn in a thread: 300 phones' snapshots never stall the loop.
            state = {**state, "question": await _personal_question(personal, self.user.pk)}
        if self.as_ == "phone":
            state = {**state, "fresh": True}  # no personal fields: the page keeps its own, or asks me.json
        await self.send_json(state)

    async def live_counts(self, event):
        await self.send_json(event["counts"])
