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


def _engine_gives(monkeypatch, score):
    from courseplatform.grading import engine

    monkeypatch.setattr(engine, "grade_function", lambda: lambda *args, **kw: {
        "status": "graded", "score": score, "max_score": 3, "message": "", "tests": []})


def test_quiz_regrade_keeps_code_scores_until_the_new_results(course, student, instructor, make_quiz, client_for,
                                                              settings, monkeypatch, grade_now):
    from courseplatform.quizzes import gradebook
    from courseplatform.quizzes.models import Attempt

    settings.ASSIGNMENTS_DIR = REPO / "assignments"
    quiz = make_quiz(BANK)
    a = services.start_attempt(quiz, student)
    code = a.items.get(question__key="softmax")
    tf = a.items.get(question__key="tf")
    services.save_answer(a.pk, code.pk, {"code": ["def softmax(x):\n    return x\n"]})
    services.save_answer(a.pk, tf.pk, {"value": ["true"]})
    services.submit_attempt(a.pk)  # the job is sent on commit, which this test's transaction never does
    _engine_gives(monkeypatch, 3)  # the engine's first result: 3 of 3
    assert grade_now("quiz-answer", code.pk) == "saved"
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
    _engine_gives(monkeypatch, 1)
    assert grade_now("quiz-answer", code.pk) == "saved"
    a.refresh_from_db()
    code.refresh_from_db()
    assert code.grading_state == "graded" and code.score == 1 and a.score == 2 and a.pending == 0


def test_a_quiz_regrade_the_engine_cannot_run_keeps_the_old_score(course, student, make_quiz, settings, monkeypatch,
                                                                 grade_now):
    from courseplatform.grading import engine
    from grader.errors import GraderError

    settings.ASSIGNMENTS_DIR = REPO / "assignments"
    quiz = make_quiz(BANK)
    a = services.start_attempt(quiz, student)
    code = a.items.get(question__key="softmax")
    services.save_answer(a.pk, code.pk, {"code": ["def softmax(x):\n    return x\n"]})
    services.submit_attempt(a.pk)
    _engine_gives(monkeypatch, 2)
    assert grade_now("quiz-answer", code.pk) == "saved"
    services.regrade_quiz(quiz)

    def unavailable(*args, **kwargs):
        raise GraderError("sandbox unavailable")

    monkeypatch.setattr(engine, "grade_function", lambda: unavailable)
    assert grade_now("quiz-answer", code.pk) == "infrastructure-error"  # eager: no retries left
    code.refresh_from_db()
    a.refresh_from_db()
    assert code.grading_state == "graded" and code.score == 2 and a.score == 2 and a.pending == 0
