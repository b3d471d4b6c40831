"""A whole live quiz in real browsers, against the real ASGI server and the Redis channel layer:
one control page, one projector page and three phones (separate contexts, one 390 px wide):
join by the QR link, open, answer, close, reveal, next, attendance marked; then the push server is
killed mid-question and the pages reconnect by themselves to the current state."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from courseplatform.courses.models import Attendance, Membership
from courseplatform.live import services
from courseplatform.live.models import Response

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _context(browser, server, cookie, width=1280, height=900):
    ctx = browser.new_context(viewport={"width": width, "height": height})
    ctx.set_default_timeout(20_000)
    ctx.add_cookies([{"name": "sessionid", "value": cookie, "url": server.url}])
    return ctx


def test_a_whole_live_session_in_browsers(browser, asgi_server, live, course, lecture, instructor, student,
                                          other_student, make_user, session_cookie):
    carol = make_user("carol", first_name="Carol", last_name="Cole")
    Membership.objects.create(course=course, user=carol, role="student")
    server = asgi_server
    contexts = []
    expect.set_options(timeout=20_000)  # a loaded machine; restored below
    try:
        control_ctx = _context(browser, server, session_cookie(instructor))
        contexts.append(control_ctx)
        control = control_ctx.new_page()
        control.goto(f"{server.url}/courses/{course.slug}/live/{live.pk}/control/")
        projector = control_ctx.new_page()
        projector.goto(f"{server.url}/courses/{course.slug}/live/{live.pk}/projector/")
        expect(projector.get_by_test_id("code")).to_have_text(live.code)
        expect(projector.get_by_test_id("qr")).to_have_js_property("complete", True)
        expect(projector.get_by_test_id("qr")).not_to_have_js_property("naturalWidth", 0)  # the SVG loaded under the CSP
        expect(projector.get_by_test_id("conn")).to_have_attribute("data-connected", "1")

        phones = {}
        for user, width in ((student, 390), (other_student, 1024), (carol, 1024)):
            ctx = _context(browser, server, session_cookie(user), width=width, height=844)
            contexts.append(ctx)
            p = ctx.new_page()
            p.goto(f"{server.url}/live/?code={live.code}")  # what the QR code opens
            expect(p.locator("#live-code")).to_have_value(live.code)
            p.get_by_test_id("join").click()
            expect(p.get_by_test_id("conn")).to_have_attribute("data-connected", "1")
            expect(p.get_by_test_id("phase")).to_have_text("Waiting for the first question")
            phones[user.username] = p
        expect(projector.get_by_test_id("joined")).to_have_text("3")

        # open: every phone shows the question without a reload
        control.get_by_test_id("next").click()
        for p in phones.values():
            expect(p.get_by_test_id("question")).to_contain_text("How many heads does BERT-base have?")
        expect(projector.get_by_test_id("question")).to_contain_text("How many heads")
        # answer
        for name, choice in (("alice", "12"), ("bob", "12"), ("carol", "8")):
            p = phones[name]
            p.locator("label.opt", has_text=re.compile(rf"^\s*[A-C]\s+{choice}\s*$")).click()
            p.get_by_test_id("send").click()
            expect(p.get_by_test_id("received")).to_contain_text("Answer received")
        assert Response.objects.count() == 3
        expect(projector.get_by_test_id("answered")).to_have_text("3")
        expect(control.get_by_test_id("answered")).to_have_text("3")
        # the narrow phone has no horizontal scrolling
        assert phones["alice"].evaluate("document.documentElement.scrollWidth") <= 390
        # close: the phones stop taking answers, the projector shows the bars
        control.get_by_test_id("close").click()
        for p in phones.values():
            expect(p.get_by_test_id("phase")).to_have_text("Closed")
            expect(p.get_by_test_id("send")).to_be_disabled()
        expect(projector.locator(".bars li")).to_have_count(3)
        expect(projector.get_by_test_id("dist")).to_contain_text("3 answers")
        # reveal
        control.get_by_test_id("reveal").click()
        expect(projector.locator(".bars li.is-correct")).to_have_count(1)
        expect(projector.get_by_test_id("dist")).to_contain_text("67% correct")
        expect(phones["alice"].get_by_test_id("reveal")).to_contain_text("You were right")
        expect(phones["carol"].get_by_test_id("reveal")).to_contain_text("Not quite")
        # nothing on the projector names a student
        text = projector.locator("body").inner_text()
        for name in ("alice", "bob", "carol", "Adams", "Brown", "Cole"):
            assert name not in text
        # next
        control.get_by_test_id("next").click()
        for p in phones.values():
            expect(p.get_by_test_id("question")).to_contain_text("Which models are encoder-only?")
            expect(p.get_by_test_id("send")).to_be_enabled()
            expect(p.get_by_test_id("received")).to_have_text("")
        expect(projector.get_by_test_id("answered")).to_have_text("0")
        bob = phones["bob"]
        bob.locator("label.opt", has_text="BERT").first.click()
        bob.get_by_test_id("send").click()
        expect(bob.get_by_test_id("received")).to_contain_text("Answer received")

        # fault: the push server dies mid-question; the instructor closes it meanwhile (from another
        # web machine: this process); the pages reconnect by themselves to the current state
        server.kill()
        for p in (*phones.values(), projector):
            expect(p.get_by_test_id("conn")).to_have_attribute("data-connected", "0")
        services.control(live.pk, "close", version=None)
        server.start()
        for p in (*phones.values(), projector):
            expect(p.get_by_test_id("conn")).to_have_attribute("data-connected", "1")
        for p in phones.values():
            expect(p.get_by_test_id("phase")).to_have_text("Closed")
        expect(bob.get_by_test_id("received")).to_contain_text("Answer received")
        expect(projector.get_by_test_id("answered")).to_have_text("1")
        expect(projector.get_by_test_id("dist")).to_contain_text("1 answer")
        assert Response.objects.filter(question__position=1).count() == 1

        # attendance: marked present by joining, and shown as such
        assert set(Attendance.objects.filter(session=lecture, status="present").values_list("user__username", flat=True)) \
            == {"alice", "bob", "carol"}
        control.goto(f"{server.url}/courses/{course.slug}/sessions/{lecture.pk}/")
        expect(control.get_by_test_id("live-joined")).to_have_count(3)
    finally:
        expect.set_options(timeout=5_000)
        for ctx in contexts:
            ctx.close()


def test_control_steps_go_on_the_socket_and_a_logged_out_page_stops_reconnecting(browser, asgi_server, live, course,
                                                                                  instructor, session_cookie):
    from django.contrib.sessions.models import Session

    cookie = session_cookie(instructor)
    ctx = _context(browser, asgi_server, cookie)
    try:
        page = ctx.new_page()
        sockets, sent = [], []
        page.on("websocket", lambda ws: (sockets.append(ws), ws.on("framesent", lambda f: sent.append(f))))
        posts = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        page.goto(f"{asgi_server.url}/courses/{course.slug}/live/{live.pk}/control/")
        expect(page.get_by_test_id("conn")).to_have_attribute("data-connected", "1")
        page.get_by_test_id("next").click()
        expect(page.get_by_test_id("phase")).to_have_text("Question open")
        assert any('"type": "step"' in str(f) or '"type":"step"' in str(f) for f in sent) and posts == []
        live.refresh_from_db()
        assert live.phase == "open"
        # logged out elsewhere: the socket is closed and the page says so instead of reconnecting
        Session.objects.filter(session_key=cookie).delete()
        expect(page.get_by_test_id("conn")).to_contain_text("Logged out", timeout=8_000)
        page.wait_for_timeout(3000)
        assert len(sockets) == 1
    finally:
        ctx.close()
