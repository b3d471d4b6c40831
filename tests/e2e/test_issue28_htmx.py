"""Issue 28, item 1: on a timed attempt, "Check" on a code question shows its result in its own slot
(the poller has its own target, retries a failed poll visibly), and autosave keeps working after it:
an edit made after the check reaches the server and survives a reload. Debian's chromium."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CODE_BANK = r"""
[quiz]
title = "Timed code quiz"
slug = "timed-code"
time_limit_minutes = 15
max_attempts = 1
review = "immediately"

[[question]]
id = "softmax"
type = "code"
points = 3
pack = "code/stable_softmax"
filename = "softmax.py"
text = "Write a stable softmax."

[[question]]
id = "bidirectional"
type = "truefalse"
text = "BERT's self-attention is bidirectional."
answer = true
"""


@pytest.fixture
def timed_code_quiz(live_server, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.contrib.auth import get_user_model

    from courseplatform.courses.models import Course, Membership
    from courseplatform.quizzes import bank
    from courseplatform.quizzes.sync import apply_bank

    course = Course.objects.create(slug="llms", title="Deep Dive into LLMs")
    user = get_user_model().objects.create_user("coder", password="pw-coder-123")
    Membership.objects.create(course=course, user=user, role="student")
    quiz = apply_bank(course, bank.parse_bank(CODE_BANK))["quiz_obj"]
    quiz.opens_at, quiz.closes_at, quiz.published = timezone.now() - timedelta(minutes=5), None, True
    quiz.save()
    return live_server, quiz, user


def test_check_then_edit_then_reload_keeps_the_edit(timed_code_quiz, page, login, monkeypatch):
    from courseplatform.grading.models import GradingJob
    from courseplatform.quizzes import tasks
    from courseplatform.quizzes.models import AttemptQuestion, CodeCheck

    server, quiz, user = timed_code_quiz
    sent = []
    # No grader here: the check stays "pending" until the test finishes it, as a busy queue would.
    monkeypatch.setattr(tasks.run_code_check, "apply_async",
                        lambda args, queue: sent.append(args) or type("R", (), {"id": "tid"})())
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, "coder", "pw-coder-123")
    page.goto(f"{server.url}/courses/llms/quizzes/{quiz.slug}/")
    page.get_by_test_id("start-quiz").click()
    page.wait_for_url(re.compile(r"/quizzes/attempt/\d+/$"))
    assert page.get_by_test_id("countdown").is_visible()  # a timed attempt
    item = AttemptQuestion.objects.get(attempt__student=user, question__key="softmax")
    answer_url = f"/attempt/{item.attempt_id}/answer/{item.pk}/"

    editor = page.locator(".cm-editor .cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.type("import numpy as np\ndef softmax(x):\nreturn np.exp(x) / np.exp(x).sum()\n")
    page.locator(f"#status-{item.pk}").get_by_text("Saved").wait_for()

    # The first poll of the check fails (the network drops): the failure is shown and the poll retried.
    polls = {"n": 0}

    def flaky(route):
        polls["n"] += 1
        if polls["n"] == 1:
            route.abort()
        else:
            route.continue_()

    page.route(re.compile(r"/quizzes/attempt/\d+/checks/\d+/$"), flaky)
    page.get_by_test_id("check-code").click()
    slot = page.locator(f"#check-{item.pk}")
    slot.get_by_text("Checking on the visible tests").wait_for()
    slot.get_by_test_id("poll-error").wait_for()
    assert "trying again" in slot.get_by_test_id("poll-error").inner_text()
    check = CodeCheck.objects.get(item=item)
    job = GradingJob.objects.get(kind="quiz-check", object_id=check.pk)
    assert sent and sent[-1] == [job.pk, job.generation]  # sent through the one grading path
    CodeCheck.objects.filter(pk=check.pk).update(state="done", passed=2, total=3,
                                                 feedback="✓ sums to one\n✗ large logits: nan")
    summary = slot.get_by_test_id("check-summary")
    summary.wait_for()
    assert "Check: 2 of 3 visible tests passed" in summary.inner_text()
    assert polls["n"] >= 2
    # The result went to the check's own slot: the header's save badge is still there.
    assert page.locator(f"#status-{item.pk}").count() == 1
    assert "Check:" not in page.locator(f"#status-{item.pk}").inner_text()

    # Edit after the check: the edit is POSTed and saved.
    with page.expect_response(lambda r: answer_url in r.url and r.request.method == "POST") as saved:
        editor.click()
        page.keyboard.press("Control+End")
        page.keyboard.type("# edited after the check\n")
    assert saved.value.status == 200
    page.locator(f"#status-{item.pk}").get_by_text("Saved").wait_for()
    item.refresh_from_db()
    assert "# edited after the check" in item.response["code"]

    page.reload()
    page.locator(".cm-editor .cm-content").wait_for()
    assert "# edited after the check" in page.locator(".cm-editor .cm-content").inner_text()
    # Only the deliberately dropped poll failed; no htmx element missed its target.
    assert not [e for e in errors if "targetError" in e], errors


def test_autosave_that_fails_is_shown_and_sent_again(timed_code_quiz, page, login):
    """A save that does not reach the server says so and is retried without another keystroke."""
    from courseplatform.quizzes.models import AttemptQuestion

    server, quiz, user = timed_code_quiz
    login(page, "coder", "pw-coder-123")
    page.goto(f"{server.url}/courses/llms/quizzes/{quiz.slug}/")
    page.get_by_test_id("start-quiz").click()
    page.wait_for_url(re.compile(r"/quizzes/attempt/\d+/$"))
    item = AttemptQuestion.objects.get(attempt__student=user, question__key="bidirectional")
    calls = {"n": 0}

    def flaky(route):
        calls["n"] += 1
        if calls["n"] == 1:
            route.abort()
        else:
            route.continue_()

    page.route(re.compile(rf"/answer/{item.pk}/$"), flaky)
    page.locator(f"input[name=q{item.pk}][value=true]").check()
    status = page.locator(f"#status-{item.pk}")
    status.get_by_text("Not saved").wait_for()
    status.get_by_text(re.compile(r"^Saved \d")).wait_for(timeout=20_000)
    item.refresh_from_db()
    assert item.response == {"value": True} and calls["n"] >= 2
