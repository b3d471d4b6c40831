"""The engine's "review" reasons (grader result JSON, issue 22) are shown to staff as "Flagged for
review" and never to the student."""
from __future__ import annotations

import pytest
from django.urls import reverse

from test_grading import fake_engine, make_sub, run  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

REASON = "During grading the submission used ctypes.dlopen: a way to reach the forbidden-API guard; review the code."


def test_review_flag_is_shown_to_staff_only(client_for, student, instructor, assignment, fake_engine):  # noqa: F811
    sub = make_sub(assignment, student, "# SCORE=10")
    run(sub)
    sub.refresh_from_db()
    url = reverse("submissions:status", args=[assignment.course.slug, sub.pk])
    assert "Flagged for review" not in client_for(instructor).get(url).content.decode()  # nothing to flag
    sub.result = dict(sub.result, review=[REASON])
    sub.save(update_fields=["result"])
    staff_html = client_for(instructor).get(url).content.decode()
    assert "Flagged for review" in staff_html and "used ctypes.dlopen" in staff_html
    student_html = client_for(student).get(url).content.decode()
    assert "Flagged for review" not in student_html and "ctypes" not in student_html
