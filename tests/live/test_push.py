"""The push channel for real: uvicorn serving courseplatform.asgi in its own process, the Redis
channel layer, WebSocket clients on loopback. This test process plays a second web machine: what
it commits is pushed through Redis to the sockets the server holds."""
from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from courseplatform.live import services
from courseplatform.live.models import Response

from .conftest import run_async as _run

pytestmark = pytest.mark.django_db(transaction=True)


def _ws_url(server, live, as_="phone"):
    return server.url.replace("http://", "ws://") + f"/ws/live/{live.pk}/?as={as_}"


def _headers(server, cookie):
    h = {"Origin": server.url}
    if cookie:
        h["Cookie"] = f"sessionid={cookie}"
    return h


async def _next_state(ws, pred, timeout=10.0):
    async def loop():
        while True:
            msg = json.loads(await ws.recv())
            if pred(msg):
                return msg
    return await asyncio.wait_for(loop(), timeout)


def test_phone_and_screen_get_state_on_connect_and_every_change(asgi_server, live, student, instructor,
                                                                session_cookie):
    services.join(student, live.code)
    phone_cookie, staff_cookie = session_cookie(student), session_cookie(instructor)

    async def scenario():
        async with connect(_ws_url(asgi_server, live), additional_headers=_headers(asgi_server, phone_cookie)) as phone, \
                connect(_ws_url(asgi_server, live, "screen"), additional_headers=_headers(asgi_server, staff_cookie)) as screen:
            first = json.loads(await phone.recv())
            assert first["type"] == "state" and first["phase"] == "lobby" and first["joined"] is True
            assert json.loads(await screen.recv())["joined"] == 1
            await asyncio.to_thread(services.control, live.pk, "next", version=None)
            opened = await _next_state(phone, lambda m: m.get("phase") == "open")
            assert opened["question"]["position"] == 0 and "answers" not in json.dumps(opened)
            await _next_state(screen, lambda m: m.get("phase") == "open")
            q = await asyncio.to_thread(lambda: live.questions.get(position=0))
            choice = q.snapshot["choices"][1]["id"]
            await asyncio.to_thread(services.answer, live.pk, student, q.pk, {"choice": [choice]})
            counted = await _next_state(screen, lambda m: m.get("type") == "counts")
            assert (counted["answered"], counted["joined"], counted["question"]) == (1, 1, q.pk)
            # a phone asking again (woken up) gets its own state, with its answer
            await phone.send(json.dumps({"type": "resync"}))
            again = await _next_state(phone, lambda m: m.get("type") == "state" and not m.get("fresh"))
            assert again["answered"]["text"] == "B"

    _run(scenario())


def test_personal_numbers_reach_each_phone(asgi_server, live, student, other_student, session_cookie):
    for u in (student, other_student):
        services.join(u, live.code)
    pos = next(q.position for q in live.questions.all() if q.personal)

    async def scenario():
        urls = _ws_url(asgi_server, live)
        async with connect(urls, additional_headers=_headers(asgi_server, session_cookie(student))) as a, \
                connect(urls, additional_headers=_headers(asgi_server, session_cookie(other_student))) as b:
            await a.recv(), await b.recv()
            for _ in range(pos + 1):
                await asyncio.to_thread(services.control, live.pk, "close", version=None) if _ else None
                await asyncio.to_thread(services.control, live.pk, "next", version=None)
            sa = await _next_state(a, lambda m: m.get("position") == pos and m.get("phase") == "open")
            sb = await _next_state(b, lambda m: m.get("position") == pos and m.get("phase") == "open")
            q = await asyncio.to_thread(lambda: live.questions.get(position=pos))
            for s, user in ((sa, student), (sb, other_student)):
                own = services._student_snapshot(q, user.pk)
                assert s["question"]["text_html"] == own["text_html"]
                assert "answers" not in json.dumps(s)

    _run(scenario())


def test_sockets_are_refused_to_outsiders(asgi_server, live, student, outsider, session_cookie):
    services.join(student, live.code)

    async def refused(url, headers):
        with pytest.raises(InvalidStatus) as exc:
            async with connect(url, additional_headers=headers) as ws:
                await ws.recv()
        return exc.value.response.status_code

    async def scenario():
        phone = _ws_url(asgi_server, live)
        assert await refused(phone, _headers(asgi_server, None)) == 403  # anonymous
        assert await refused(phone, _headers(asgi_server, session_cookie(outsider))) == 403  # another course
        assert await refused(_ws_url(asgi_server, live, "screen"),
                             _headers(asgi_server, session_cookie(student))) == 403  # a student on the screen
        assert await refused(phone, {"Origin": "http://evil.example",
                                     "Cookie": f"sessionid={session_cookie(student)}"}) == 403  # another site

    _run(scenario())


def test_restart_of_the_push_server_mid_question_loses_no_acknowledged_answer(asgi_server, live, student,
                                                                             other_student, session_cookie):
    """The server is killed with an open question and an answer acknowledged; meanwhile the
    instructor closes the question (its push goes nowhere). After the restart a reconnecting
    phone is sent the current state, and the answer is there."""
    for u in (student, other_student):
        services.join(u, live.code)
    services.control(live.pk, "next", version=None)
    q = live.questions.get(position=0)
    url = _ws_url(asgi_server, live)
    cookie = session_cookie(student)

    async def before():
        async with connect(url, additional_headers=_headers(asgi_server, cookie)) as ws:
            assert json.loads(await ws.recv())["phase"] == "open"
            _, created = await asyncio.to_thread(services.answer, live.pk, student, q.pk,
                                                 {"choice": [q.snapshot["choices"][1]["id"]]})
            assert created
            asgi_server.kill()
            with pytest.raises(Exception):
                await asyncio.wait_for(ws.recv(), 10)  # the connection drops

    _run(before())
    services.control(live.pk, "close", version=None)  # while the push server is down
    asgi_server.start()

    async def after():
        async with connect(url, additional_headers=_headers(asgi_server, cookie)) as ws:
            state = json.loads(await ws.recv())
            assert state["phase"] == "closed" and state["question"]["id"] == q.pk
            assert state["answered"]["text"] == "B"
        async with connect(url.replace("as=phone", "as=screen"),
                           additional_headers=_headers(asgi_server, session_cookie(live.created_by))) as screen:
            st = json.loads(await screen.recv())
            assert (st["answered"], st["joined"]) == (1, 2)  # the counts, rebuilt from the database
            assert sum(b["count"] for b in st["distribution"]["bars"]) == 1

    _run(after())
    assert Response.objects.filter(question=q).count() == 1


def test_answers_on_the_socket_are_stored_before_the_reply_and_checked(asgi_server, live, student, other_student,
                                                                      instructor, session_cookie):
    from django.contrib.sessions.models import Session
    from websockets.exceptions import ConnectionClosed

    from courseplatform.courses.models import Membership

    for u in (student, other_student):
        services.join(u, live.code)
    services.control(live.pk, "next", version=None)
    q, later = live.questions.get(position=0), live.questions.get(position=1)
    right, wrong = (next(c["id"] for c in q.snapshot["choices"] if c["html"] == t) for t in ("12", "8"))
    phone_url = _ws_url(asgi_server, live)
    alice = session_cookie(student)

    async def ask(ws, rid, **body):
        await ws.send(json.dumps({"type": "answer", "rid": rid, **body}))
        return await _next_state(ws, lambda m: m.get("type") == "answered" and m["rid"] == rid)

    async def scenario():
        async with connect(phone_url, additional_headers=_headers(asgi_server, alice)) as ws, \
                connect(phone_url, additional_headers=_headers(asgi_server, session_cookie(other_student))) as bob, \
                connect(_ws_url(asgi_server, live, "screen"),
                        additional_headers=_headers(asgi_server, session_cookie(instructor))) as screen:
            await ws.recv(), await bob.recv(), await screen.recv()
            reply = await ask(ws, "r1", question=q.pk, choice=[right])
            assert (reply["ok"], reply["created"], reply["text"]) == (True, True, "B")
            # in the database before the reply came
            assert await asyncio.to_thread(lambda: Response.objects.filter(question=q, user=student).count()) == 1
            counted = await _next_state(screen, lambda m: m.get("type") == "counts" and m["answered"] == 1)
            assert counted["question"] == q.pk
            again = await ask(ws, "r2", question=q.pk, choice=[right])  # a reply that got lost: sent again
            assert again["ok"] and again["created"] is False
            changed = await ask(ws, "r3", question=q.pk, choice=[wrong])
            assert not changed["ok"] and changed["status"] == 409 and "first answer counts" in changed["message"]
            stale = await ask(ws, "r4", question=later.pk, choice=[later.snapshot["choices"][0]["id"]])
            assert not stale["ok"] and stale["state"]["question"]["id"] == q.pk  # told the current question
            for rid, body in (("r5", {"question": q.pk, "choice": [{"x": 1}]}), ("r6", {"question": "zzz"}),
                              ("r7", {"question": q.pk, "choice": ["x" * 2000]})):
                bad = await ask(ws, rid, **body)
                assert not bad["ok"] and bad["status"] == 400
            # a staff screen does not answer: no reply, nothing stored
            await screen.send(json.dumps({"type": "answer", "rid": "s1", "question": q.pk, "choice": [right]}))
            with pytest.raises(asyncio.TimeoutError):
                await _next_state(screen, lambda m: m.get("type") == "answered", timeout=1.5)
            # removed from the course while the socket is open: refused, nothing stored
            await asyncio.to_thread(lambda: Membership.objects.filter(user=other_student).delete())
            gone = await ask(bob, "b1", question=q.pk, choice=[right])
            assert not gone["ok"] and gone["status"] == 403
            # logged out elsewhere (the session is gone) while the socket is open: refused, socket closed
            await asyncio.to_thread(lambda: Session.objects.filter(session_key=alice).delete())
            try:
                out = await ask(ws, "r8", question=later.pk, choice=[later.snapshot["choices"][0]["id"]])
                assert not out["ok"] and out["status"] == 401
            except ConnectionClosed as exc:  # the push server's session check (every 2 s) came first
                assert exc.rcvd.code == 4401
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)

    _run(scenario())
    assert list(Response.objects.values_list("user_id", "response")) == [(student.pk, {"choice": right})]
