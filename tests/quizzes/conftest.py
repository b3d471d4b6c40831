from __future__ import annotations

from datetime import timedelta

import pytest

SAMPLE_BANK = r'''
[quiz]
title = "Sample quiz"
slug = "sample"
time_limit_minutes = 10
max_attempts = 2
review = "immediately"

[[question]]
id = "single"
type = "single"
text = 'Which is scaled dot-product attention? $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$'
choices = [
  { text = "right", correct = true, feedback = "yes" },
  { text = "wrong one" },
  { text = "wrong two" },
]
explanation = "Because."

[[question]]
id = "multi"
type = "multiple"
rule = "right_minus_wrong"
text = "Pick the encoder-decoder models."
choices = [
  { id = "t5", text = "T5", correct = true },
  { id = "bart", text = "BART", correct = true },
  { id = "gpt2", text = "GPT-2" },
  { id = "bert", text = "BERT" },
]
explanation = "T5 and BART."

[[question]]
id = "tf"
type = "truefalse"
text = "BERT is bidirectional."
answer = true
explanation = "No causal mask."

[[question]]
id = "num"
type = "numeric"
points = 2
text = "Head dimension of BERT-base?"
answer = 64
tolerance = 0.5
explanation = "768/12"

[[question]]
id = "param"
type = "numeric"
points = 2
text = 'Logits $z = {{z:bmatrix}}$: probability of token 1?'
answer = "softmax(z)[0]"
rel_tolerance = 0.01
explanation = "softmax"
[question.params]
z = { uniform = [-2.0, 2.0], size = 3, round = 1 }

[[question]]
id = "short"
type = "short"
text = "Special first token?"
answers = ["[CLS]"]
regex = ['\[?cls\]?']
explanation = "CLS"
'''


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _pack_store(settings, tmp_path):
    """Code questions' packs are stored (PACK_STORE/_quiz/...) in the test's own folder."""
    settings.PACK_STORE = tmp_path / "packs"


@pytest.fixture
def make_quiz(course):
    """make_quiz(text=SAMPLE_BANK, **overrides) -> Quiz loaded through the bank loader."""
    from courseplatform.quizzes import bank
    from courseplatform.quizzes.sync import apply_bank

    def make(text: str = SAMPLE_BANK, target=None, **overrides):
        parsed = bank.parse_bank(text, where="test.toml")
        quiz = apply_bank(target or course, parsed, source_path="quizzes/test.toml")["quiz_obj"]
        overrides.setdefault("published", True)
        for k, v in overrides.items():
            setattr(quiz, k, v)
        quiz.save()
        return quiz

    return make


@pytest.fixture
def quiz(make_quiz):
    from django.utils import timezone

    now = timezone.now()
    return make_quiz(opens_at=now - timedelta(hours=1), closes_at=now + timedelta(days=1))


def right_answers(attempt) -> dict:
    """POST data answering every item of an attempt correctly (by reading its snapshot)."""
    data = {}
    for item in attempt.items.all():
        s = item.snapshot
        f = f"q{item.pk}"
        if s["type"] == "single":
            data[f] = [next(c["id"] for c in s["choices"] if c["weight"] == 1.0)]
        elif s["type"] == "multiple":
            data[f] = [c["id"] for c in s["choices"] if c["correct"]]
        elif s["type"] == "truefalse":
            data[f] = ["true" if s["answer"] else "false"]
        elif s["type"] == "numeric":
            data[f] = [repr(s["answers"][0]["value"])]
        elif s["type"] == "short":
            data[f] = [s["answers"][0]["text"]]
    return data


def item_by_key(attempt, key):
    return attempt.items.select_related("question").get(question__key=key)


def run_job(kind: str, object_id: int) -> str:
    """Run the grading job of a quiz code answer ("quiz-answer") or check ("quiz-check") now, in
    this process, through its Celery task (the one grading path); returns the task's outcome."""
    from courseplatform.celery import app
    from courseplatform.grading.jobs import KINDS
    from courseplatform.grading.models import GradingJob

    job = GradingJob.objects.get(kind=kind, object_id=object_id)
    return app.tasks[KINDS[kind].task_name].apply(args=[job.pk, job.generation]).get()


@pytest.fixture
def grade_now():
    return run_job
