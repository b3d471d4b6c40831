"""A student answers a matching question on a timed attempt on a 390 px phone in Debian's chromium:
one labelled menu per item, each choice autosaved, a reload keeps them, the submit grades each pair
(partial credit), the review shows every pair; nothing on the page is wider than the phone."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from .test_pages import PHONE, check_page

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BANK = r"""
[quiz]
title = "Model families"
slug = "families"
time_limit_minutes = 10
max_attempts = 1
review = "immediately"

[[question]]
id = "families"
type = "matching"
points = 3
text = "Match each model with the part of the Transformer it keeps."
pairs = [
  { left = "BERT (bidirectional encoder representations from transformers)", right = "encoder only, with a bidirectional self-attention over the whole input" },
  { left = "GPT-2", right = "decoder only, causal self-attention" },
  { left = "T5", right = "encoder and decoder" },
]
distractors = ["neither: a recurrent network"]

[[question]]
id = "bidirectional"
type = "truefalse"
text = "BERT's self-attention is bidirectional."
answer = true
"""

# Every element's right edge, not only the document's width: a wide menu inside a scroll box would
# leave the document narrow and the page still unusable.
WIDE_JS = """
() => {
  const out = [];
  for (const el of document.querySelectorAll("fieldset.q-matching, fieldset.q-matching *")) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > window.innerWidth + 1) out.push(el.tagName + " " + Math.round(r.right));
  }
  return out;
}
"""


@pytest.fixture
def matching_setup(live_server, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.contrib.auth import get_user_model

    from courseplatform.courses.models import Course, Membership
    from courseplatform.quizzes import bank
    from courseplatform.quizzes.sync import apply_bank

    course = Course.objects.create(slug="llms", title="Deep Dive into LLMs")
    user = get_user_model().objects.create_user("stud", password="pw-stud-123", first_name="Stu")
    Membership.objects.create(course=course, user=user, role="student")
    quiz = apply_bank(course, bank.parse_bank(BANK))["quiz_obj"]
    quiz.opens_at = timezone.now() - timedelta(minutes=5)
    quiz.closes_at = timezone.now() + timedelta(days=1)
    quiz.published = True
    quiz.save()
    return live_server, quiz, user


def test_student_answers_a_matching_question_on_a_phone(matching_setup, browser, login):
    from courseplatform.quizzes.models import Attempt

    server, quiz, user = matching_setup
    context = browser.new_context(viewport=PHONE)
    context.set_default_timeout(15_000)
    page = context.new_page()
    login(page, "stud", "pw-stud-123")
    page.goto(f"{server.url}/courses/llms/quizzes/{quiz.slug}/")
    page.get_by_test_id("start-quiz").click()
    page.wait_for_url(re.compile(r"/quizzes/attempt/\d+/$"))
    attempt = Attempt.objects.get(quiz=quiz, student=user)
    item = attempt.items.get(question__key="families")
    snap = item.snapshot
    text = {o["id"]: o["text"] for o in snap["options"]}
    key = snap["key"]
    wrong_for_t5 = next(o for o in snap["options"] if o["id"] not in key.values())["id"]  # the distractor

    # One menu per item, found by its item's label.
    assert page.get_by_test_id("match-select").count() == 3
    menus = {pid: page.get_by_label(label, exact=True) for pid, label in
             (("a", "BERT (bidirectional encoder representations from transformers)"), ("b", "GPT-2"), ("c", "T5"))}
    # The answers are listed in this attempt's shuffled order.
    options = menus["a"].locator("option")
    assert [options.nth(i).inner_text() for i in range(1, options.count())] == [o["text"] for o in snap["options"]]

    answers = {"a": key["a"], "b": key["b"], "c": wrong_for_t5}
    for pid, option in answers.items():
        with page.expect_response(lambda r: f"/answer/{item.pk}/" in r.url and r.request.method == "POST") as resp:
            menus[pid].select_option(label=text[option])
        assert resp.value.ok
    item.refresh_from_db()
    assert item.response == {"matches": answers}

    assert page.evaluate(WIDE_JS) == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]

    # A reload keeps every choice.
    page.reload()
    for pid, option in answers.items():
        expect(menus[pid]).to_have_value(f"{pid}:{option}")
    assert check_page(page, page.url, "quiz-matching-phone", PHONE["width"]) == []

    page.locator(f"input[name=q{attempt.items.get(question__key='bidirectional').pk}][value=true]").check()
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("submit-quiz").click()
    page.wait_for_url(re.compile(r"/result/$"))
    score = page.get_by_test_id("score").inner_text()
    assert score.startswith("3") and "/ 4 points" in score, score  # 2 of 3 pairs (2 points) + 1
    rows = page.get_by_test_id("match-review-row")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="T5")).to_contain_text("correct: encoder and decoder")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    attempt.refresh_from_db()
    assert attempt.state == "submitted" and attempt.score == pytest.approx(3.0)
    context.close()
