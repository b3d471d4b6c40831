"""The control page's steps on its socket (the real push server, as in test_push.py): the same
checks as the POST, committed before the "stepped" reply, and the POST still there as the fallback;
and sockets whose login session is gone are closed as "logged out"."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from django.urls import reverse
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from courseplatform.courses.models import Membership
from courseplatform.live import services
from courseplatform.live.models import LiveSession

from .conftest import run_async as _run
from .test_push import _headers, _next_state, _ws_url

pytestmark = pytest.mark.django_db(transaction=True)


async def _step(ws, rid, **body):
    await ws.send(json.dumps({"type": "step", "rid": rid, **body}))
    return await _next_state(ws, lambda m: m.get("type") == "stepped" and m["rid"] == rid)


def _version(live) -> int:
    return LiveSession.objects.get(pk=live.pk).version


def test_staff_steps_on_the_socket_are_committed_before_the_reply_and_pushed(asgi_server, live, student, ta,
                                                                             session_cookie):
    services.join(student, live.code)

    async def scenario():
        async with connect(_ws_url(asgi_server, live, "screen"),
                           additional_headers=_headers(asgi_server, session_cookie(ta))) as control, \
                connect(_ws_url(asgi_server, live), additional_headers=_headers(asgi_server, session_cookie(student))) as phone:
            first = json.loads(await control.recv())
            await phone.recv()
            reply = await _step(control, "s1", action="next", version=first["version"])
            assert reply["ok"] and reply["status"] == 200
            assert reply["state"]["phase"] == "open" and reply["state"]["position"] == 0
            # committed before the reply: the database already says so
            row = await asyncio.to_thread(lambda: LiveSession.objects.get(pk=live.pk))
            assert (row.phase, row.current, row.version) == ("open", 0, first["version"] + 1)
            shown = await _next_state(phone, lambda m: m.get("phase") == "open")
            assert shown["question"]["position"] == 0
            v = reply["state"]["version"]
            counted = await _step(control, "s2", action="countdown", seconds=30, version=v)
            assert counted["ok"] and counted["state"]["closes_in"] is not None
            closed = await _step(control, "s3", action="close", version=counted["state"]["version"])
            assert closed["ok"] and closed["state"]["phase"] == "closed"
            await _next_state(phone, lambda m: m.get("phase") == "closed")
            revealed = await _step(control, "s4", action="reveal", version=closed["state"]["version"])
            assert revealed["ok"] and revealed["state"]["phase"] == "revealed"
            # the rules of services.control, answered on the socket
            bad = await _step(control, "s5", action="reveal", version=revealed["state"]["version"])
            assert not bad["ok"] and bad["status"] == 409 and bad["state"]["phase"] == "revealed"
            short = await _step(control, "s6", action="next", version=revealed["state"]["version"])
            assert short["ok"]
            bogus = await _step(control, "s7", action="bogus", version=short["state"]["version"])
            assert not bogus["ok"] and bogus["status"] == 400

    _run(scenario())


def test_a_step_from_a_stale_page_is_refused(asgi_server, live, instructor, session_cookie):
    """A step made on a page that shows an older state (another window moved on, so the question it
    shows is no longer the current one) changes nothing."""

    async def scenario():
        async with connect(_ws_url(asgi_server, live, "screen"),
                           additional_headers=_headers(asgi_server, session_cookie(instructor))) as control:
            seen = json.loads(await control.recv())
            await asyncio.to_thread(services.control, live.pk, "next", version=None)  # another window
            await asyncio.to_thread(services.control, live.pk, "close", version=None)
            stale = await _step(control, "s1", action="next", version=seen["version"])
            assert not stale["ok"] and stale["status"] == 409 and "another window" in stale["message"]
            assert stale["state"]["position"] == 0 and stale["state"]["phase"] == "closed"  # the current one

    _run(scenario())
    live.refresh_from_db()
    assert (live.current, live.phase) == (0, "closed")


def test_steps_are_refused_to_students_and_to_other_courses_staff(asgi_server, live, student, instructor,
                                                                  make_user, other_course, session_cookie):
    services.join(student, live.code)
    stranger = make_user("carol")
    Membership.objects.create(course=other_course, user=stranger, role="instructor")
    before = _version(live)

    async def scenario():
        # a student's own socket: the step is answered with a refusal, nothing changes
        async with connect(_ws_url(asgi_server, live), additional_headers=_headers(asgi_server, session_cookie(student))) as phone:
            await phone.recv()
            refused = await _step(phone, "p1", action="next", version=before)
            assert not refused["ok"] and refused["status"] == 403 and "staff" in refused["message"]
        # another course's instructor cannot even open a socket of this session
        with pytest.raises(InvalidStatus) as exc:
            async with connect(_ws_url(asgi_server, live, "screen"),
                               additional_headers=_headers(asgi_server, session_cookie(stranger))) as ws:
                await ws.recv()
        assert exc.value.response.status_code == 403
        # staff removed from the course while the control page is open: the next step is refused
        async with connect(_ws_url(asgi_server, live, "screen"),
                           additional_headers=_headers(asgi_server, session_cookie(instructor))) as control:
            await control.recv()
            await asyncio.to_thread(lambda: Membership.objects.filter(user=instructor).update(role="student"))
            demoted = await _step(control, "c1", action="next", version=before)
            assert not demoted["ok"] and demoted["status"] == 403

    _run(scenario())
    assert _version(live) == before and LiveSession.objects.get(pk=live.pk).phase == "lobby"


def test_the_post_stays_the_fallback_and_is_pushed_to_the_sockets(asgi_server, live, instructor, client_for,
                                                                  session_cookie):
    prof = client_for(instructor)
    url = reverse("live:action", args=[live.course.slug, live.pk])

    async def scenario():
        async with connect(_ws_url(asgi_server, live, "screen"),
                           additional_headers=_headers(asgi_server, session_cookie(instructor))) as screen:
            await screen.recv()
            r = await asyncio.to_thread(prof.post, url, {"action": "next", "version": live.version},
                                        HTTP_ACCEPT="application/json")
            assert r.status_code == 200 and r.json()["state"]["phase"] == "open"
            await _next_state(screen, lambda m: m.get("phase") == "open")
            # without JS: the form posts and comes back to the control page
            r = await asyncio.to_thread(prof.post, url, {"action": "close", "version": _version(live)})
            assert r.status_code == 302
            await _next_state(screen, lambda m: m.get("phase") == "closed")

    _run(scenario())


def test_a_socket_whose_login_session_is_gone_is_closed_as_logged_out(asgi_server, live, student, instructor,
                                                                      session_cookie):
    from django.contrib.sessions.models import Session

    services.join(student, live.code)
    alice, prof = session_cookie(student), session_cookie(instructor)

    async def closed_within(ws, seconds):
        t0 = time.monotonic()
        with pytest.raises(ConnectionClosed) as exc:
            while True:
                await asyncio.wait_for(ws.recv(), seconds)
        return exc.value.rcvd.code, time.monotonic() - t0

    async def scenario():
        async with connect(_ws_url(asgi_server, live), additional_headers=_headers(asgi_server, alice)) as phone, \
                connect(_ws_url(asgi_server, live, "screen"), additional_headers=_headers(asgi_server, prof)) as screen, \
                connect(_ws_url(asgi_server, live), additional_headers=_headers(asgi_server, session_cookie(student))) as other_tab:
            await phone.recv(), await screen.recv(), await other_tab.recv()
            await asyncio.to_thread(lambda: Session.objects.filter(session_key=alice).delete())  # logged out elsewhere
            code, took = await closed_within(phone, 8)
            assert code == 4401 and took < 5
            # the instructor's screen and the student's other login are untouched, and still pushed to
            await asyncio.to_thread(services.control, live.pk, "next", version=None)
            await _next_state(screen, lambda m: m.get("phase") == "open")
            await _next_state(other_tab, lambda m: m.get("phase") == "open")
            # a deactivated user: every socket of theirs goes
            await asyncio.to_thread(lambda: type(instructor).objects.filter(pk=instructor.pk).update(is_active=False))
            code, took = await closed_within(screen, 8)
            assert code == 4401 and took < 5

    _run(scenario())
