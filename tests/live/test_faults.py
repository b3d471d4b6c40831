"""Faults mid-question, with real servers: the ASGI server (uvicorn) is killed and restarted, or the
Redis of the channel layer is killed and restarted empty (or flushed). The phones are one real page
in a browser (live.js: its socket, its backoff, its answer on the socket) and clients speaking the
same protocol (bench/_common.LivePhone, the load bench's phone). They reconnect by themselves and
show the current state; every answer that was acknowledged is in PostgreSQL; the projector's counts
come back from the database."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from bench._common import LivePhone, free_port
from courseplatform.courses.models import Membership
from courseplatform.live import services
from courseplatform.live.models import Response

from .conftest import AsgiServer, BackgroundLoop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _phones(course, live, make_user, n):
    users = []
    for i in range(n):
        u = make_user(f"phone{i}")
        Membership.objects.create(course=course, user=u, role="student")
        services.join(u, live.code)
        users.append(u)
    return users


@contextlib.contextmanager
def _browser_phone_and_loop(browser, server, course, live, cookie):
    """(the phone page of ``cookie``'s student in a 390 px browser context, a BackgroundLoop for the
    protocol phones); both closed afterwards."""
    expect.set_options(timeout=20_000)  # a loaded machine; restored below
    bg = BackgroundLoop()
    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        ctx.set_default_timeout(20_000)
        ctx.add_cookies([{"name": "sessionid", "value": cookie, "url": server.url}])
        page = ctx.new_page()
        page.goto(f"{server.url}/courses/{course.slug}/live/{live.pk}/")
        expect(page.get_by_test_id("conn")).to_have_attribute("data-connected", "1")
        yield page, bg
    finally:
        expect.set_options(timeout=5_000)
        ctx.close()
        bg.stop()


def _answer_in_browser(page, choice_text):
    page.locator("label.opt", has_text=re.compile(rf"^\s*[A-C]\s+{choice_text}\s*$")).click()
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("received")).to_contain_text("Answer received")


def _choice(q, text):
    return next(c["id"] for c in q.snapshot["choices"] if c["html"] == text)


def test_asgi_server_restart_mid_question(browser, asgi_server, live, course, student, make_user, session_cookie):
    server = asgi_server
    users = _phones(course, live, make_user, 4)
    services.join(student, live.code)
    services.control(live.pk, "next", version=None)
    q = live.questions.get(position=0)
    right = _choice(q, "12")
    with _browser_phone_and_loop(browser, server, course, live, session_cookie(student)) as (page, bg):
        expect(page.get_by_test_id("question")).to_contain_text("How many heads")
        ws = server.url.replace("http://", "ws://") + f"/ws/live/{live.pk}/?as=phone"
        phones = [LivePhone(ws, session_cookie(u), server.url, open_timeout=20) for u in users]
        for p in phones:
            assert bg.run(p.start())["phase"] == "open"
        acked = set()
        for p, u in zip(phones[:2], users[:2]):
            reply = bg.run(p.answer(q.pk, {"choice": right}))
            assert reply["ok"] and reply["created"], reply
            acked.add(u.pk)
        _answer_in_browser(page, "12")  # on the page's socket
        acked.add(student.pk)

        server.kill()  # a crash: no close frames
        expect(page.get_by_test_id("conn")).to_have_attribute("data-connected", "0")
        with pytest.raises(Exception):  # no server: nothing is acknowledged
            bg.run(phones[2].answer(q.pk, {"choice": right}, timeout=5))
        server.start()

        # every phone is back by itself, with the current state (its own answer included)
        expect(page.get_by_test_id("conn")).to_have_attribute("data-connected", "1")
        expect(page.get_by_test_id("phase")).to_have_text("Question open")
        expect(page.get_by_test_id("received")).to_contain_text("Answer received")
        expect(page.get_by_test_id("send")).to_be_disabled()
        for p in phones:
            bg.run(_until(lambda p=p: p.connects >= 2, 30))
            assert p.state["phase"] == "open" and p.state["question"]["id"] == q.pk
        assert phones[0].state["answered"]["text"] == "B" and phones[3].state["answered"] is None
        for p, u in zip(phones[2:], users[2:]):  # the others answer now
            reply = bg.run(p.answer(q.pk, {"choice": right}))
            assert reply["ok"] and reply["created"], reply
            acked.add(u.pk)
        # a repeat (a "received" that got lost) is recognised, not stored twice
        again = bg.run(phones[0].answer(q.pk, {"choice": right}))
        assert again["ok"] and again["created"] is False

        stored = set(Response.objects.filter(question=q).values_list("user_id", flat=True))
        assert stored == acked and len(acked) == 5
        for p in phones:
            bg.run(p.close())


async def _until(pred, timeout):
    import asyncio

    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.05)


class RedisServer:
    """A redis-server of this test on a free port, without persistence: a restart comes back empty."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path / "redis"
        self.dir.mkdir()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)], stdout=subprocess.DEVNULL, start_new_session=True)
        import redis

        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def flush(self):
        import redis

        redis.Redis.from_url(self.url).flushall()


@pytest.fixture
def own_redis(tmp_path, settings):
    """The channel layer of this process and of the ASGI server on the test's own redis-server."""
    from channels.layers import channel_layers

    r = RedisServer(tmp_path)
    r.start()
    layers = {k: dict(v) for k, v in settings.CHANNEL_LAYERS.items()}
    config = dict(layers["default"]["CONFIG"])
    config["hosts"] = [{**config["hosts"][0], "address": r.url}]
    layers["default"]["CONFIG"] = config
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    old = os.environ.get("CHANNEL_LAYER_URL")
    os.environ["CHANNEL_LAYER_URL"] = r.url
    yield r
    if old is None:
        os.environ.pop("CHANNEL_LAYER_URL", None)
    else:
        os.environ["CHANNEL_LAYER_URL"] = old
    r.kill()
    channel_layers.backends.clear()


@pytest.mark.parametrize("fault", ["restart", "flush"])
def test_redis_lost_mid_question(fault, browser, own_redis, transactional_db, tmp_path, live, course, student,
                                 instructor, make_user, session_cookie):
    server = AsgiServer(tmp_path)  # after own_redis: its CHANNEL_LAYER_URL is the test's Redis
    server.start()
    users = _phones(course, live, make_user, 3)
    services.join(student, live.code)
    try:
        with _browser_phone_and_loop(browser, server, course, live, session_cookie(student)) as (page, bg):
            _redis_fault(fault, own_redis, server, page, bg, live, users, student, instructor, session_cookie)
    finally:
        server.stop()


def _redis_fault(fault, own_redis, server, page, bg, live, users, student, instructor, session_cookie):
    """Phones (the browser's and protocol ones) and a screen on a question; one answer before the
    fault, one while Redis is away (killed) or just flushed, one after: all acknowledged, all stored."""
    ws = server.url.replace("http://", "ws://") + f"/ws/live/{live.pk}/"
    # as the page: an answer whose socket the push server closes before the reply (it noticed the
    # lost Redis: 4001) is sent again by POST (live.js sendAnswer)
    answer_path = reverse("live:answer", args=[live.course.slug, live.pk])
    phones = [LivePhone(ws + "?as=phone", session_cookie(u), server.url, open_timeout=20, answer_path=answer_path)
              for u in users]
    screen = LivePhone(ws + "?as=screen", session_cookie(instructor), server.url, open_timeout=20)
    for p in (*phones, screen):
        bg.run(p.start())
    services.control(live.pk, "next", version=None)  # pushed from this process through Redis
    for p in phones:
        bg.run(p.wait_for(lambda m: m["phase"] == "open"))
    expect(page.get_by_test_id("question")).to_contain_text("How many heads")
    q = live.questions.get(position=0)
    right = _choice(q, "12")
    acked = set()
    reply = bg.run(phones[0].answer(q.pk, {"choice": right}))
    assert reply["ok"], reply
    acked.add(users[0].pk)

    own_redis.kill() if fault == "restart" else own_redis.flush()
    # Redis is down or empty: an answer still goes to PostgreSQL and is acknowledged
    reply = bg.run(phones[1].answer(q.pk, {"choice": right}))
    assert reply["ok"], reply
    acked.add(users[1].pk)
    if fault == "restart":
        own_redis.start()  # empty: every group is forgotten

    # the push server notices, the pages reconnect by themselves and join their groups again
    for p in (*phones, screen):
        bg.run(_until(lambda p=p: p.connects >= 2, 30))
    # the projector's counts after the reconnect: from the database (nothing of them was in Redis)
    assert (screen.state["answered"], screen.state["joined"]) == (2, 4)
    _answer_in_browser(page, "12")
    acked.add(student.pk)
    # a push after the fault reaches every phone, the browser's too
    services.control(live.pk, "close", version=None)
    for p in phones:
        bg.run(p.wait_for(lambda m: m["phase"] == "closed"))
    expect(page.get_by_test_id("phase")).to_have_text("Closed")
    expect(page.get_by_test_id("received")).to_contain_text("Answer received")
    assert set(Response.objects.filter(question=q).values_list("user_id", flat=True)) == acked
    for p in (*phones, screen):
        bg.run(p.close())
