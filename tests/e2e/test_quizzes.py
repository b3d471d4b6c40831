"""A student takes a timed quiz in Debian's chromium: math rendered by the vendored KaTeX, a
parameterised question, autosave, a reload that keeps every answer, submit, score."""
from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BANK = r"""
[quiz]
title = "Attention check"
slug = "attention-check"
time_limit_minutes = 10
max_attempts = 1
review = "immediately"

[[question]]
id = "formula"
type = "single"
text = 'Which expression is scaled dot-product attention?'
choices = [
  { text = '$\mathrm{softmax}\left(\frac{QK^\top}{\sqrt{d_k}}\right)V$', correct = true },
  { text = '$\mathrm{softmax}(QV^\top)K$' },
  { text = '$QK^\top V$' },
]
explanation = 'Scores $QK^\top$ scaled by $1/\sqrt{d_k}$.'

[[question]]
id = "weight"
type = "numeric"
points = 2
text = '''
Scores of one query against three keys: $s = {{s:bmatrix}}$. What is $\mathrm{softmax}(s)_1$?
'''
answer = "softmax(s)[0]"
tolerance = 0.005
explanation = "softmax"
[question.params]
s = { uniform = [-2.0, 2.0], size = 3, round = 1 }

[[question]]
id = "bidirectional"
type = "truefalse"
text = "BERT's self-attention is bidirectional."
answer = true
explanation = "No causal mask."
"""


def shot(page, name):
    folder = os.environ.get("E2E_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


@pytest.fixture
def quiz_setup(live_server, settings):
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
    return live_server, course, quiz, user


def test_student_takes_timed_quiz(quiz_setup, page, login):
    from courseplatform.quizzes.models import Attempt

    server, course, quiz, user = quiz_setup
    login(page, "stud", "pw-stud-123")
    page.goto(f"{server.url}/courses/llms/quizzes/{quiz.slug}/")
    page.get_by_test_id("start-quiz").click()
    page.wait_for_url(re.compile(r"/quizzes/attempt/\d+/$"))
    attempt = Attempt.objects.get(quiz=quiz, student=user)

    # KaTeX (served by the site) rendered the math of the question and the drawn parameters.
    page.wait_for_selector(".katex")
    assert page.locator(".katex").count() >= 4
    assert page.locator(".q-text .katex .mord").count() > 0
    countdown = page.get_by_test_id("countdown")
    assert re.match(r"\d+:\d\d", page.locator("#countdown-value").inner_text())
    assert 540 <= attempt.seconds_left() <= 600 and countdown.is_visible()

    items = {i.question.key: i for i in attempt.items.select_related("question")}
    right = next(c for c in items["formula"].snapshot["choices"] if c["correct"])["id"]
    value = items["weight"].snapshot["answers"][0]["value"]

    page.locator(f"input[name=q{items['formula'].pk}][value={right}]").check()
    page.locator(f"#status-{items['formula'].pk}").get_by_text("Saved").wait_for()
    page.fill(f"input[name=q{items['weight'].pk}]", "not a number")
    page.locator(f"#status-{items['weight'].pk}").get_by_text("is not a number").wait_for()
    page.fill(f"input[name=q{items['weight'].pk}]", f"{value:.4f}")
    page.locator(f"#status-{items['weight'].pk}").get_by_text("Saved").wait_for()

    shot(page, "quiz-take")
    # Reload mid-quiz: everything saved is still there, the timer continues.
    page.reload()
    page.wait_for_selector(".katex")
    assert page.locator(f"input[name=q{items['formula'].pk}][value={right}]").is_checked()
    assert page.input_value(f"input[name=q{items['weight'].pk}]") == f"{value:.4f}"

    # The last answer goes in with the submit (even before its autosave fires).
    page.locator(f"input[name=q{items['bidirectional'].pk}][value=true]").check()
    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("submit-quiz").click()
    page.wait_for_url(re.compile(r"/result/$"))
    score = page.get_by_test_id("score").inner_text()
    assert score.startswith("4") and "/ 4 points" in score, score
    assert page.locator("[data-testid=review-question]").count() == 3
    assert page.locator(".explanation .katex").count() >= 1
    shot(page, "quiz-result")
    attempt.refresh_from_db()
    assert attempt.state == "submitted" and attempt.score == 4
