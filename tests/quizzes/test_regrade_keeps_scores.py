"""Issue 28, item 3 (quizzes): regrading a quiz keeps each code answer's previous score while the
engine grades it again: the attempt's total, the quiz mean and the gradebook do not dip, the
result page says "regrading", and the new result replaces the old score."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from courseplatform.quizzes import services

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]

BANK = '''
[quiz]
slug = "code"
review = "immediately"

[[question]]
id = "softmax"
type = "code"
points = 3
pack = "code/stable_softmax"
filename = "softmax.py"
text = "Write a stable softmax."

[[question]]
id = "tf"
type = "truefalse"
text = "BERT is bidirectional."
answer = true
'''


def test_quiz_regrade_keeps_code_scores_until_the_new_results(course, student, instructor, make_quiz, client_for,
                                                              settings, monkeypatch):
    from courseplatform.quizzes import dispatch, gradebook, tasks
    from courseplatform.quizzes.models import Attempt

    settings.ASSIGNMENTS_DIR = REPO / "assignments"
    quiz = make_quiz(BANK)
    a = services.start_attempt(quiz, student)
    code = a.items.get(question__key="softmax")
    tf = a.items.get(question__key="tf")
    services.save_answer(a.pk, code.pk, {"code": ["def softmax(x):\n    return x\n"]})
    services.save_answer(a.pk, tf.pk, {"value": ["true"]})
    sent = []
    monkeypatch.setattr(dispatch, "send", lambda name, args, queue: sent.append(args))
    services.submit_attempt(a.pk)
    # The engine's first result: 3 of 3.
    monkeypatch.setattr(tasks, "grade", lambda *args, **kw: {"status": "graded", "score": 3, "max_score": 3,
                                                             "message": "", "tests": []})
    tasks.grade_code_item(code.pk)
    a.refresh_from_db()
    assert a.score == 4 and a.pending == 0

    staff = client_for(instructor)
    stats_url = reverse("quizzes:stats", args=[course.slug, quiz.slug])
    assert staff.get(stats_url).context["mean"] == 4
    r = staff.post(reverse("quizzes:regrade", args=[course.slug, quiz.slug]))
    assert r.status_code == 302
    a = Attempt.objects.get(pk=a.pk)
    code.refresh_from_db()
    assert code.grading_state == "pending" and code.score == 3  # queued again, old score kept
    assert a.pending == 1 and a.score == 4  # no dip
    assert staff.get(stats_url).context["mean"] == 4
    item = next(i for i in gradebook.items(course) if i.key.endswith(quiz.slug))
    assert item.scores[student.pk] == 4
    page = client_for(student).get(reverse("quizzes:result", args=[course.slug, a.pk])).content.decode()
    assert 'data-testid="regrading"' in page and "being regraded" in page

    # The new result replaces the old score.
    monkeypatch.setattr(tasks, "grade", lambda *args, **kw: {"status": "graded", "score": 1, "max_score": 3,
                                                             "message": "", "tests": []})
    tasks.grade_code_item(code.pk)
    a.refresh_from_db()
    code.refresh_from_db()
    assert code.grading_state == "graded" and code.score == 1 and a.score == 2 and a.pending == 0


def test_a_quiz_regrade_the_engine_cannot_run_keeps_the_old_score(course, student, make_quiz, settings, monkeypatch):
    from courseplatform.quizzes import dispatch, tasks

    settings.ASSIGNMENTS_DIR = REPO / "assignments"
    quiz = make_quiz(BANK)
    a = services.start_attempt(quiz, student)
    code = a.items.get(question__key="softmax")
    services.save_answer(a.pk, code.pk, {"code": ["def softmax(x):\n    return x\n"]})
    monkeypatch.setattr(dispatch, "send", lambda name, args, queue: None)
    services.submit_attempt(a.pk)
    monkeypatch.setattr(tasks, "grade", lambda *args, **kw: {"status": "graded", "score": 2, "max_score": 3,
                                                             "message": "", "tests": []})
    tasks.grade_code_item(code.pk)
    services.regrade_quiz(quiz)
    tasks._mark_error(code.pk, "The grading engine is unavailable.")
    code.refresh_from_db()
    a.refresh_from_db()
    assert code.grading_state == "graded" and code.score == 2 and a.score == 2 and a.pending == 0
