"""Issue 28, item 9 (quiz statistics): a histogram of the students' quiz scores, wrong options never
drawn green, and for per-student numbers the "most frequent wrong answer" counts an answer only
with others on the same draw (0.5 wrong on one draw is not the same mistake as 0.5 on another)."""
from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse

from courseplatform.quizzes import services
from courseplatform.quizzes.models import AttemptQuestion

from .conftest import item_by_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def students(course, make_user):
    from courseplatform.courses.models import Membership

    users = [make_user(f"stud{i}") for i in range(4)]
    for u in users:
        Membership.objects.create(course=course, user=u, role="student")
    return users


def _take(quiz, user, answers: dict, same_draw_as=None):
    a = services.start_attempt(quiz, user)
    if same_draw_as is not None:  # this student drew the same numbers as another
        AttemptQuestion.objects.filter(pk=item_by_key(a, "param").pk).update(
            snapshot=item_by_key(same_draw_as, "param").snapshot)
    for key, (field, values) in answers.items():
        services.save_answer(a.pk, item_by_key(a, key).pk, {field: values})
    services.submit_attempt(a.pk)
    a.refresh_from_db()
    return a


def test_statistics_histogram_colours_and_draws(course, quiz, students, ta, client_for):
    wrong = next(c["id"] for c in quiz.questions.get(key="single").spec["choices"] if c["text"] == "wrong one")
    right = next(c["id"] for c in quiz.questions.get(key="single").spec["choices"] if c["correct"])
    first = _take(quiz, students[0], {"single": ("choice", [wrong]), "param": ("value", ["0.5"])})
    _take(quiz, students[1], {"single": ("choice", [wrong]), "param": ("value", ["0.5"])}, same_draw_as=first)
    other = _take(quiz, students[2], {"single": ("choice", [right]), "param": ("value", ["0.5"])})
    _take(quiz, students[3], {"single": ("choice", [right]), "param": ("value", ["0.5"])}, same_draw_as=other)
    assert item_by_key(first, "param").snapshot["params"] != item_by_key(other, "param").snapshot["params"]

    page = client_for(ta).get(reverse("quizzes:stats", args=[course.slug, quiz.slug])).content.decode()
    soup = BeautifulSoup(page, "html.parser")

    # One bar per score range; the counts add up to the 4 students.
    bars = soup.select("[data-testid=score-histogram] svg.histogram rect.bar")
    assert bars and sum(int(b["data-count"]) for b in bars) == 4

    # Wrong options are drawn as wrong (never green like the right one); no <meter>, which the browser colours green.
    assert not soup.select(".choice-stats meter")
    fills = soup.select(".choice-stats rect.fill")
    assert {f["data-correct"] for f in fills} == {"0", "1"}
    assert all(("wrong" in f["class"]) == (f["data-correct"] == "0") for f in fills)

    # Per-student numbers: "0.5" was given 4 times, but on two different draws, 2 each.
    param = next(s for s in soup.select("[data-testid=question-stats]") if "<code>param</code>" in str(s))
    flag = param.select_one(".flag.warn").get_text(" ", strip=True)
    assert re.search(r"Most frequent wrong answer: 0\.5 \(2×\)", flag), flag
    assert param.select_one("[data-testid=same-draw]") is not None
    # Questions with one answer for everyone still count all of them together.
    single = next(s for s in soup.select("[data-testid=question-stats]") if "<code>single</code>" in str(s))
    assert "wrong one (2×)" in single.select_one(".flag.warn").get_text(" ", strip=True)
