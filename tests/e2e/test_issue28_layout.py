"""Issue 28 in a browser, on small fixtures (the demo-wide walk is tests/e2e/test_pages.py):

- item 6: a deadline names the course's zone, and a reader whose browser is elsewhere also sees
  their own time (static/js/localtime.js, allowed by the CSP: no inline script);
- item 2: at 390 px the quiz list's Start button and the student gradebook's points are on screen,
  not inside a scroll box, and an assignment page with the client block is not wider than the phone.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from .test_pages import LAYOUT_JS, PHONE

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def assignment(course):
    from courseplatform.submissions.models import Assignment

    return Assignment.objects.create(
        course=course, slug="attention", title="Attention", points=10, accepted_kinds=["py", "ipynb"],
        due_at=datetime(2026, 12, 18, 23, 59, tzinfo=BERLIN),
        handout_html="<p>Implement <code>scaled_dot_product_attention(q, k, v, mask=None)</code>.</p>"
                     "<pre><code>" + "x = torch.softmax(q @ k.transpose(-2, -1) / d ** 0.5, dim=-1)  # " * 3
                     + "</code></pre>")


def _open(browser, live_server, login, user, path, **context_args):
    context = browser.new_context(**context_args)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page, user.username, "pw-" + user.username)
    page.goto(live_server.url + path)
    return context, page, errors


@pytest.mark.parametrize("zone, own_time", [("America/New_York", True), ("Europe/Berlin", False)])
def test_a_deadline_names_its_zone_and_the_readers_own_time(browser, live_server, login, student, assignment,
                                                            zone, own_time):
    context, page, errors = _open(browser, live_server, login, student,
                                  f"/courses/{assignment.course.slug}/assignments/{assignment.slug}/",
                                  timezone_id=zone, locale="en-GB")
    deadline = page.locator(".deadline time[data-local-time]")
    expect(deadline).to_have_text("Fri 18.12.2026 23:59 CET")
    local = page.locator(".deadline .local-time")
    if own_time:
        expect(local).to_have_text("(your time: Fri 18 Dec, 17:59 GMT-5)")
    else:
        page.wait_for_load_state("load")
        expect(deadline).to_have_attribute("data-local-done", "")
        expect(local).to_have_count(0)
    assert not errors, errors
    context.close()


def test_phone_quiz_list_and_gradebook_show_start_and_points_without_scrolling(browser, live_server, login, student,
                                                                               course, assignment):
    from courseplatform.quizzes import bank
    from courseplatform.quizzes.sync import apply_bank

    parsed = bank.parse_bank('''[quiz]
title = "Attention basics, with a rather long title that needs two lines on a phone"
slug = "attn"
time_limit_minutes = 20
max_attempts = 2
[[question]]
id = "dk"
type = "numeric"
text = "Head dimension of BERT-base?"
answer = 64
''', where="attn.toml")
    quiz = apply_bank(course, parsed, source_path="quizzes/attn.toml")["quiz_obj"]
    quiz.published = True
    quiz.opens_at, quiz.closes_at = timezone.now() - timedelta(hours=1), timezone.now() + timedelta(days=1)
    quiz.save()
    context, page, errors = _open(browser, live_server, login, student, f"/courses/{course.slug}/quizzes/",
                                  viewport=PHONE, is_mobile=True, has_touch=True)
    start = page.get_by_role("link", name="Start")
    expect(start).to_be_visible()
    layout = page.evaluate(LAYOUT_JS)
    assert layout["width"] <= PHONE["width"] and not layout["overflow"] and not layout["hidden"], layout
    box = start.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    page.goto(live_server.url + f"/courses/{course.slug}/gradebook/")
    points = page.locator("#my-grades td.must-see").first
    expect(points).to_be_visible()
    box = points.bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"], box
    layout = page.evaluate(LAYOUT_JS)
    assert not layout["overflow"] and not layout["hidden"], layout
    page.goto(live_server.url + f"/courses/{course.slug}/assignments/{assignment.slug}/")
    page.wait_for_load_state("load")
    layout = page.evaluate(LAYOUT_JS)
    assert layout["width"] <= PHONE["width"] and not layout["overflow"], layout
    assert not errors, errors
    context.close()


def test_phone_milestone_editor_is_not_wider_than_the_phone(browser, live_server, login, instructor, course):
    """The rubric table's screen-reader labels stay inside the card's scroll box (they widened the page)."""
    context, page, errors = _open(browser, live_server, login, instructor, f"/courses/{course.slug}/projects/milestones/new/",
                                  viewport=PHONE, is_mobile=True, has_touch=True)
    page.wait_for_load_state("load")
    layout = page.evaluate(LAYOUT_JS)
    assert layout["width"] <= PHONE["width"] and not layout["overflow"], layout
    assert not errors, errors
    context.close()
