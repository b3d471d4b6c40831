"""A populated course for the adversarial tests.

`world` holds one object of every kind a URL can point at, owned by *bob* (the victim), so
that *alice* (the attacker, a student of the same course) can try to reach them; *eve* is a
student of another course; the staff are *prof* (instructor) and *tara* (TA).
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

QUIZ_BANK = r'''
[quiz]
title = "Security quiz"
slug = "secquiz"
time_limit_minutes = 30
max_attempts = 3
review = "immediately"

[[question]]
id = "num"
type = "numeric"
text = "Head dimension of BERT-base?"
answer = 64
tolerance = 0.5
explanation = "768/12"

[[question]]
id = "short"
type = "short"
text = "Special first token?"
answers = ["[CLS]"]
explanation = "CLS"
'''

REVIEW = """# Review

## Source: Attention Is All You Need
**Objective:** Replace recurrence with attention.
**Method:** Encoder-decoder transformer.
**Outcome:** Better BLEU.

## Source: BERT
**Objective:** Bidirectional representations.
**Method:** Masked language modelling.
**Outcome:** State of the art on GLUE.
"""


@dataclass
class World:
    course: object
    other_course: object
    instructor: object
    ta: object
    alice: object
    bob: object
    eve: object
    objs: dict = field(default_factory=dict)

    def __getattr__(self, name):
        try:
            return self.__dict__["objs"][name]
        except KeyError:
            raise AttributeError(name) from None


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PACK_STORE = tmp_path / "packs"
    settings.ASSIGNMENTS_DIR = tmp_path / "assignments"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CELERY_TASK_ALWAYS_EAGER = False


@pytest.fixture
def no_tasks(monkeypatch):
    """Nothing is sent to a broker: Celery's send is replaced by a recorder."""
    sent = []
    from celery.app.task import Task

    monkeypatch.setattr(Task, "apply_async", lambda self, *a, **kw: sent.append((self.name, a, kw)))
    return sent


def _submission(assignment, user, name, data: bytes, settings, **extra):
    from courseplatform.submissions.models import Submission

    sha = hashlib.sha256(data).hexdigest()
    rel = f"submissions/{sha[:2]}/{sha}.py"
    path = Path(settings.MEDIA_ROOT) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Submission.objects.create(assignment=assignment, student=user, sha256=sha, blob=rel, original_name=name,
                                     kind="py", size=len(data), **extra)


@pytest.fixture
def world(db, settings, course, other_course, instructor, ta, student, other_student, outsider, no_tasks):
    from courseplatform.courses.models import LectureSession, Membership
    from courseplatform.projects import services as psvc
    from courseplatform.projects.models import Group, GroupMember, Milestone, MilestoneGrade, RubricCriterion
    from courseplatform.quizzes import bank
    from courseplatform.quizzes import services as qsvc
    from courseplatform.quizzes.sync import apply_bank
    from courseplatform.submissions.models import Assignment, Extension

    w = World(course, other_course, instructor, ta, student, other_student, outsider)
    now = timezone.now()
    o = w.objs
    o["assignment"] = Assignment.objects.create(
        course=course, slug="attention", title="Attention", points=10, accepted_kinds=["py"],
        due_at=now + timedelta(days=3), handout_html="<p>Implement attention.</p>")
    o["other_assignment"] = Assignment.objects.create(course=other_course, slug="other-a", title="Other", points=10,
                                                      accepted_kinds=["py"])
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    notebook = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "id": "m", "source": "# Executed"}]}).encode()

    def result_for(who):
        return {"score": 4, "max_score": 10, "status": "graded", "message": "ok",
                "tests": [{"name": "t", "score": 4, "max_score": 10, "status": "failed",
                           "message": f"{who}'s secret", "visible": True}],
                "artifacts": [{"name": f"{who}-plot.png", "content_type": "image/png",
                               "data_b64": base64.b64encode(png).decode()},
                              {"name": f"{who}-executed.ipynb", "content_type": "application/x-ipynb+json",
                               "data_b64": base64.b64encode(notebook).decode()}]}

    o["bob_sub"] = _submission(o["assignment"], other_student, "bob_solution.py", b"def f(): return 'bob'\n",
                               settings, state="graded", score=4, raw_score=4, max_score=10, result=result_for("bob"))
    o["alice_sub"] = _submission(o["assignment"], student, "alice_solution.py", b"def f(): return 'alice'\n",
                                 settings, state="graded", score=9, raw_score=9, max_score=10,
                                 result=result_for("alice"))
    o["extension"] = Extension.objects.create(assignment=o["assignment"], student=other_student,
                                              due_at=now + timedelta(days=5), reason="ill")

    parsed = bank.parse_bank(QUIZ_BANK, where="sec.toml")
    quiz = apply_bank(course, parsed, source_path="quizzes/sec.toml")["quiz_obj"]
    quiz.published = True
    quiz.opens_at, quiz.closes_at = now - timedelta(hours=1), now + timedelta(days=1)
    quiz.save()
    o["quiz"] = quiz
    o["question"] = quiz.questions.first()
    o["bob_attempt"] = qsvc.start_attempt(quiz, other_student)
    o["bob_item"] = o["bob_attempt"].items.first()
    o["alice_attempt"] = qsvc.start_attempt(quiz, student)
    o["alice_item"] = o["alice_attempt"].items.first()
    from courseplatform.quizzes.models import CodeCheck

    for who in ("alice", "bob"):  # a finished "Check" of each one's code answer (quizzes:check_status)
        item = o[f"{who}_item"]
        o[f"{who}_check"] = CodeCheck.objects.create(item=item, student_id=item.attempt.student_id, code="x = 1",
                                                     state="done")

    carol = Membership.objects.create(course=course, user=type(student).objects.create_user(
        "carol", password="pw-carol"), role="student").user
    o["carol"] = carol
    o["group_a"] = Group.objects.create(course=course, name="Team Alice")
    GroupMember.objects.create(course=course, group=o["group_a"], user=student)
    o["group_b"] = Group.objects.create(course=course, name="Team Bob")
    GroupMember.objects.create(course=course, group=o["group_b"], user=other_student)
    GroupMember.objects.create(course=course, group=o["group_b"], user=carol)
    o["other_group"] = Group.objects.create(course=other_course, name="Eve's team")
    GroupMember.objects.create(course=other_course, group=o["other_group"], user=outsider)
    m = Milestone.objects.create(course=course, slug="lit-review-1", title="Literature review I",
                                 deliverable="both", points=Decimal("10"), due=now + timedelta(days=3),
                                 instructions="Write a **review**.")
    RubricCriterion.objects.create(milestone=m, title="Sources", points=Decimal("10"), order=0)
    o["milestone"] = m
    o["other_milestone"] = Milestone.objects.create(course=other_course, slug="x", title="Other", deliverable="file",
                                                    points=Decimal("10"), due=now + timedelta(days=3))
    o["bob_version"] = psvc.deliver(m, o["group_b"], other_student, repo_url="https://example.org/bob",
                                    upload=SimpleUploadedFile("bob-review.md", REVIEW.encode(), "text/markdown"))
    o["alice_version"] = psvc.deliver(m, o["group_a"], student, repo_url="https://example.org/alice",
                                      upload=SimpleUploadedFile("alice-review.md", REVIEW.encode(), "text/markdown"))
    o["bob_grade"] = MilestoneGrade.objects.create(milestone=m, group=o["group_b"], score=Decimal("7"),
                                                   feedback="Bob's private feedback", graded_by=instructor)
    o["session"] = LectureSession.objects.create(course=course, date=now.date(), title="Lecture 1")
    o["other_session"] = LectureSession.objects.create(course=other_course, date=now.date(), title="Other lecture")
    from courseplatform.similarity.models import SimilarityCheck, SimilarityPair

    o["sim_check"] = SimilarityCheck.objects.create(assignment=o["assignment"], state="done", params={"threshold": 0.6})
    o["sim_pair"] = SimilarityPair.objects.create(  # Alice's and Bob's files, as a finished check ranked them
        check_run=o["sim_check"], rank=1, sub_a=o["alice_sub"], sub_b=o["bob_sub"], score=0.9, share_a=0.9,
        share_b=0.9, beyond_a=0.9, beyond_b=0.9, shared=5, common=0, public=0, regions=[
            {"a": [1, 1], "b": [1, 1], "kind": "copy"}])
    from courseplatform.live import services as live_services  # a live quiz with a question open

    o["live"] = live_services.start(course, o["session"], list(quiz.active_questions()), title="Live check",
                                    user=instructor, quiz=quiz)
    for who in (student, other_student):
        live_services.join(who, o["live"].code)
    live_services.control(o["live"].pk, "next", version=None)
    o["bob_membership"] = Membership.objects.get(course=course, user=other_student)
    o["alice_membership"] = Membership.objects.get(course=course, user=student)
    return w
