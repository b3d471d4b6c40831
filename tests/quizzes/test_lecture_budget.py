"""The in-lecture quiz's hot paths stay cheap: a query budget per request (issue 11).

300 students open the same quiz within 30 seconds and autosave for ten minutes; bench/quiz_load.py
measures the latencies (Locust against gunicorn and PostgreSQL). These budgets are what the
profile of that load found each request needs; a change that adds a query to one of them (an
N+1 over the questions, a second look-up of the course or the attempt) fails here first. The
counts include the session and user look-ups of the authentication middleware.
"""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from courseplatform.quizzes.models import Attempt

from .conftest import right_answers

pytestmark = pytest.mark.django_db

BUDGET = {"quiz_page": 7, "start": 12, "attempt_page": 5, "autosave": 9}


def _queries(fn):
    with CaptureQueriesContext(connection) as ctx:
        resp = fn()
    sql = [q["sql"] for q in ctx.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    return resp, len(ctx.captured_queries), sql


def test_quiz_page_start_attempt_and_autosave_stay_within_their_query_budget(course, quiz, student, client_for):
    c = client_for(student)
    c.get(reverse("quizzes:detail", args=[course.slug, quiz.slug]))  # the session's first use
    resp, n, sql = _queries(lambda: c.get(reverse("quizzes:detail", args=[course.slug, quiz.slug])))
    assert resp.status_code == 200 and n <= BUDGET["quiz_page"], sql
    resp, n, sql = _queries(lambda: c.post(reverse("quizzes:start", args=[course.slug, quiz.slug])))
    assert resp.status_code == 302 and n <= BUDGET["start"], sql
    attempt = Attempt.objects.get(quiz=quiz, student=student)
    resp, n, sql = _queries(lambda: c.get(reverse("quizzes:take", args=[course.slug, attempt.pk])))
    assert resp.status_code == 200 and n <= BUDGET["attempt_page"], sql
    answers = right_answers(attempt)
    counts = []
    for item in attempt.items.all():  # every question type: the same cost
        resp, n, sql = _queries(lambda: c.post(reverse("quizzes:answer", args=[course.slug, attempt.pk, item.pk]),
                                               {f"q{item.pk}": answers[f"q{item.pk}"]}, HTTP_HX_REQUEST="true"))
        assert resp.status_code == 200 and "Saved" in resp.content.decode(), resp.content
        counts.append(n)
        assert n <= BUDGET["autosave"], sql
    assert len(set(counts)) == 1, counts  # no query per earlier answer or per question


def test_a_course_page_costs_one_lookup_for_course_and_membership(course, quiz, student, client_for):
    """The course and the student's membership come in one query (the role check of every page)."""
    c = client_for(student)
    c.get(reverse("quizzes:detail", args=[course.slug, quiz.slug]))
    _, _, sql = _queries(lambda: c.get(reverse("quizzes:detail", args=[course.slug, quiz.slug])))
    assert sum('FROM "courses_course"' in q for q in sql) == 0, sql
    assert sum('FROM "courses_membership"' in q and 'JOIN "courses_course"' in q for q in sql) == 1, sql
