"""Quiz scores go back to the LMS when the students' review opens: at once for "immediately", only once
the quiz has closed for "after the quiz closes" (the periodic reconcile notices the closing)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from test_flow import link_course

pytestmark = pytest.mark.django_db

BANK = r'''
[quiz]
title = "Heads"
slug = "heads"
time_limit_minutes = 10
max_attempts = 2
review = "{review}"

[[question]]
id = "num"
type = "numeric"
text = "Head dimension of BERT-base?"
answer = 64
tolerance = 0.5
points = 2
'''


def make_quiz(course, review):
    from courseplatform.quizzes import bank
    from courseplatform.quizzes.sync import apply_bank

    quiz = apply_bank(course, bank.parse_bank(BANK.format(review=review), where="t.toml"),
                      source_path="quizzes/t.toml")["quiz_obj"]
    now = timezone.now()
    quiz.published, quiz.opens_at, quiz.closes_at = True, now - timedelta(hours=1), now + timedelta(days=1)
    quiz.save()
    return quiz


def answer_and_submit(quiz, user, value):
    from courseplatform.quizzes import services

    attempt = services.start_attempt(quiz, user)
    item = attempt.items.get()
    services.save_answer(attempt.pk, item.pk, {"value": [value]})
    services.submit_attempt(attempt.pk)
    return attempt


@pytest.mark.parametrize("review", ["immediately", "after_close"])
def test_quiz_score_passback_follows_the_review_policy(platform, do_launch, course, eager, on_commit_now, review):
    from courseplatform.lti.passback import reconcile

    link_course(platform, do_launch, course)
    quiz = make_quiz(course, review)
    do_launch(Client(), platform, platform.login_params(platform.user("stu-1"), custom={"activity": "quiz:heads"}))
    ada = get_user_model().objects.get(lti_users__sub="stu-1")
    answer_and_submit(quiz, ada, "64")
    if review == "after_close":
        assert platform.scores == []  # the review (and so the score) is not released yet
        quiz.closes_at = timezone.now() - timedelta(minutes=1)
        quiz.save()
        assert reconcile() == 1
    assert [(s["scoreGiven"], s["scoreMaximum"]) for s in platform.scores] == [(2.0, 2.0)]
    assert platform.line_items[next(iter(platform.line_items))]["resourceId"] == "quiz:heads"
    assert reconcile() == 0 and len(platform.scores) == 1
