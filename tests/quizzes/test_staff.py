"""Instructor side: statistics, fixing a question and regrading, sync and versioning, dashboard,
gradebook, demo data, and code questions graded by the engine."""
from __future__ import annotations

import io
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from courseplatform.core.hooks import PartsFailed
from courseplatform.grading.models import GradingJob
from courseplatform.quizzes import codepacks, services
from courseplatform.quizzes.models import Attempt, AttemptQuestion, Question, Quiz
from courseplatform.quizzes.sync import sync

from .conftest import SAMPLE_BANK, item_by_key

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


def url(name, course, *args):
    return reverse(f"quizzes:{name}", args=[course.slug, *args])


def take(quiz, user, answers: dict):
    """answers: question key -> form values."""
    a = services.start_attempt(quiz, user)
    for key, values in answers.items():
        item = item_by_key(a, key)
        services.save_answer(a.pk, item.pk, {"choice" if item.snapshot["type"] in ("single", "multiple") else
                                             "text" if item.snapshot["type"] == "short" else "value": values})
    services.submit_attempt(a.pk)
    a.refresh_from_db()
    return a


@pytest.fixture
def students(course, make_user):
    from courseplatform.courses.models import Membership

    users = [make_user(f"stud{i}") for i in range(4)]
    for u in users:
        Membership.objects.create(course=course, user=u, role="student")
    return users


def test_statistics(course, quiz, students, ta, client_for):
    wrong_b = next(c["id"] for c in quiz.questions.get(key="single").spec["choices"] if c["text"] == "wrong one")
    take(quiz, students[0], {"single": ["a"], "num": ["64"]})
    take(quiz, students[1], {"single": [wrong_b], "num": ["12"]})
    take(quiz, students[2], {"single": [wrong_b], "num": ["64"]})
    services.start_attempt(quiz, students[3])  # in progress: not counted
    page = client_for(ta).get(url("stats", course, quiz.slug)).content.decode()
    assert 'data-testid="n-attempts">3<' in page
    assert "1 in progress" in page
    assert "33%</strong> fully correct (1 of 3)" in page  # single
    assert "67%</strong> fully correct (2 of 3)" in page  # num
    assert "Most frequent wrong answer: <span>wrong one</span> (2×)" in page
    assert "Most frequent wrong answer: <span>12</span> (1×)" in page
    assert "Edit / fix" not in page  # TAs see statistics but do not change questions


def test_fix_question_and_regrade_all(course, quiz, students, instructor, client_for):
    a = take(quiz, students[0], {"num": ["60"]})
    assert item_by_key(a, "num").score == 0
    q = quiz.questions.get(key="num")
    c = client_for(instructor)
    form = c.get(url("edit_question", course, quiz.slug, q.pk)).content.decode()
    assert "[[question]]" in form and 'id = &quot;num&quot;' in form
    source = '[[question]]\nid = "num"\ntype = "numeric"\npoints = 2\ntext = "Head dimension?"\nanswer = 64\ntolerance = 5\nexplanation = "fixed"\n'
    bad = c.post(url("edit_question", course, quiz.slug, q.pk), {"source": source.replace('id = "num"', 'id = "other"')})
    assert "must stay" in bad.content.decode()
    broken = c.post(url("edit_question", course, quiz.slug, q.pk), {"source": "[[question]]\nid = "})
    assert "TOML syntax error" in broken.content.decode()
    resp = c.post(url("edit_question", course, quiz.slug, q.pk), {"source": source, "regrade": "on"}, follow=True)
    assert "now version 2" in resp.content.decode() and "1 attempt(s) regraded" in resp.content.decode()
    a.refresh_from_db()
    item = item_by_key(a, "num")
    assert item.version == 2 and item.score == 2 and a.score == 2 and a.regraded_at


def test_edit_without_regrade_keeps_what_attempts_saw(course, quiz, students, instructor, client_for):
    a = take(quiz, students[0], {"num": ["60"]})
    q = quiz.questions.get(key="num")
    source = '[[question]]\nid = "num"\ntype = "numeric"\npoints = 2\ntext = "New text"\nanswer = 60\nexplanation = "x"\n'
    client_for(instructor).post(url("edit_question", course, quiz.slug, q.pk), {"source": source})
    item = item_by_key(a, "num")
    assert item.version == 1 and item.score == 0 and "Head dimension" in item.snapshot["text_html"]
    stats = client_for(instructor).get(url("stats", course, quiz.slug)).content.decode()
    assert "1 on an older version" in stats
    client_for(instructor).post(url("regrade", course, quiz.slug))
    item.refresh_from_db()
    assert item.version == 2 and item.score == 2 and "New text" in item.snapshot["text_html"]


def test_regrade_keeps_drawn_parameters_and_choice_order(course, quiz, students):
    a = take(quiz, students[0], {})
    before = {i.question.key: i.snapshot for i in a.items.select_related("question")}
    q = quiz.questions.get(key="param")
    spec = dict(q.spec, rel_tolerance=0.05, answers=[dict(q.spec["answers"][0], rel_tolerance=0.05)])
    services.update_question(q, spec)
    m = quiz.questions.get(key="multi")
    services.update_question(m, dict(m.spec, text="Pick them (fixed typo)."))
    services.regrade_quiz(quiz)
    after = {i.question.key: i.snapshot for i in a.items.select_related("question")}
    assert after["param"]["params"] == before["param"]["params"]
    assert after["param"]["answers"][0]["rel_tolerance"] == 0.05
    assert [c["id"] for c in after["multi"]["choices"]] == [c["id"] for c in before["multi"]["choices"]]


def test_sync_is_idempotent_and_versions_changes(course, tmp_path, student):
    (tmp_path / "quizzes").mkdir()
    bank_file = tmp_path / "quizzes" / "sample.toml"
    bank_file.write_text(SAMPLE_BANK)
    out = io.StringIO()
    sync(course, tmp_path, out)
    quiz = Quiz.objects.get(course=course, slug="sample")
    assert quiz.questions.count() == 6 and "6 new" in out.getvalue()
    assert not quiz.published  # a new quiz is a draft until the instructor publishes it
    quiz.published = True
    quiz.save()
    out = io.StringIO()
    sync(course, tmp_path, out)
    assert "0 new, 0 changed, 0 removed, 6 unchanged" in out.getvalue()
    attempt = services.start_attempt(quiz, student)
    # Edit one question, remove another.
    text = SAMPLE_BANK.replace("BERT is bidirectional.", "BERT is bidirectional (it has no causal mask).")
    text = text[:text.index('[[question]]\nid = "short"')]
    bank_file.write_text(text)
    out = io.StringIO()
    sync(course, tmp_path, out)
    assert "0 new, 1 changed, 1 removed, 4 unchanged" in out.getvalue()
    tf = Question.objects.get(quiz=quiz, key="tf")
    assert tf.version == 2 and "causal" in tf.spec["text"]
    assert not Question.objects.get(quiz=quiz, key="short").active
    assert item_by_key(attempt, "tf").version == 1  # the open attempt keeps what it showed
    assert attempt.items.count() == 6


def test_sync_broken_file_changes_nothing_and_says_where(course, tmp_path):
    (tmp_path / "quizzes").mkdir()
    (tmp_path / "quizzes" / "good.toml").write_text(SAMPLE_BANK.replace('slug = "sample"', 'slug = "good"'))
    (tmp_path / "quizzes" / "bad.toml").write_text(SAMPLE_BANK.replace('slug = "sample"', 'slug = "bad"')
                                                   .replace('answer = true', 'answer = "yes"'))
    out = io.StringIO()
    with pytest.raises(PartsFailed) as failed:  # named once the good file is synced (sync_course exits 1)
        sync(course, tmp_path, out)
    summary = failed.value.result
    assert Quiz.objects.filter(slug="good").exists() and not Quiz.objects.filter(slug="bad").exists()
    assert "bad.toml [tf] line" in out.getvalue() and "answer must be true or false" in out.getvalue()
    assert len(summary["errors"]) == 1 and failed.value.problems[0].startswith("quiz bank bad.toml: BankError")


def test_sync_course_command_loads_the_real_banks(course):
    from django.core.management import call_command

    out = io.StringIO()
    call_command("sync_course", str(REPO / "assignments"), "--course", course.slug, stdout=out)
    assert Quiz.objects.filter(course=course).count() >= 5
    assert Question.objects.filter(quiz__course=course).count() >= 60
    assert "ERROR" not in out.getvalue()


def test_resync_button(course, instructor, client_for, settings, tmp_path):
    (tmp_path / "quizzes").mkdir()
    (tmp_path / "quizzes" / "sample.toml").write_text(SAMPLE_BANK)
    settings.ASSIGNMENTS_DIR = tmp_path
    resp = client_for(instructor).post(url("resync", course), follow=True)
    assert "Banks synchronised" in resp.content.decode() and Quiz.objects.filter(slug="sample").exists()
    # A broken file: the page says where, the good file is still synced, nothing else fails.
    (tmp_path / "quizzes" / "bad.toml").write_text(SAMPLE_BANK.replace('slug = "sample"', 'slug = "bad"')
                                                   .replace('answer = true', 'answer = "yes"'))
    resp = client_for(instructor).post(url("resync", course), follow=True)
    body = resp.content.decode()
    assert resp.status_code == 200 and "answer must be true or false" in body and "Banks synchronised" not in body


def test_settings_form(course, quiz, instructor, client_for):
    c = client_for(instructor)
    data = {"title": "Renamed", "description": "", "published": "on", "opens_at": "2026-11-06T10:00",
            "closes_at": "2026-11-06T09:00", "time_limit_minutes": 15, "max_attempts": 1, "review": "never",
            "grading": "last"}
    bad = c.post(url("settings", course, quiz.slug), data)
    assert "must close after it opens" in bad.content.decode()
    data["closes_at"] = "2026-11-06T11:00"
    assert c.post(url("settings", course, quiz.slug), data).status_code == 302
    quiz.refresh_from_db()
    assert quiz.title == "Renamed" and quiz.time_limit_minutes == 15 and quiz.grading == "last"


def test_attempts_page_lists_every_student(course, quiz, students, ta, client_for):
    take(quiz, students[0], {"num": ["64"]})
    page = client_for(ta).get(url("attempts", course, quiz.slug)).content.decode()
    assert all(s.username in page for s in students) and "#1: 2" in page


def test_gradebook_items_by_rule(course, quiz, students):
    from courseplatform.quizzes.gradebook import items

    take(quiz, students[0], {"num": ["64"]})           # 2
    take(quiz, students[0], {"num": ["64"], "tf": ["true"]})  # 3
    take(quiz, students[1], {"tf": ["true"]})          # 1
    (item,) = items(course)
    assert item.key == "quiz:sample" and item.category == "quizzes" and item.max_points == 8
    assert item.scores[students[0].pk] == 3 and item.scores[students[1].pk] == 1 and item.scores[students[2].pk] is None
    assert item.notes[students[0].pk] == "best of 2 attempts"
    quiz.grading = "mean"
    quiz.save()
    assert items(course)[0].scores[students[0].pk] == 2.5
    quiz.grading = "last"
    quiz.save()
    assert items(course)[0].scores[students[0].pk] == 3


def test_dashboard_panels(course, quiz, students, instructor, rf):
    from courseplatform.courses.models import Membership
    from courseplatform.quizzes.dashboard import panels

    a = services.start_attempt(quiz, students[0])
    req = rf.get("/")
    req.user = students[0]
    (p,) = panels(req, course, Membership.objects.get(user=students[0], course=course))
    assert p.template == "quizzes/panels/student.html"
    row = p.context["open_rows"][0]
    assert row["attempt"].pk == a.pk and 0 < row["seconds_left"] <= 600
    services.submit_attempt(a.pk)
    req.user = instructor
    (s,) = panels(req, course, Membership.objects.get(user=instructor, course=course))
    assert s.context["rows"][0]["finished"] == 1
    from django.template.loader import render_to_string

    html = render_to_string(s.template, {**s.context, "course": course})
    assert "Sample quiz" in html


def test_demo_loads_banks_and_is_idempotent(course, students, instructor, ta):
    from courseplatform.quizzes import demo

    people = {"instructor": instructor, "ta": ta, "students": students}
    demo.load(course, people, io.StringIO())
    state = (sorted(Quiz.objects.filter(course=course).values_list("slug", "opens_at", "closes_at")),
             Attempt.objects.count(), sorted(Attempt.objects.values_list("score", flat=True)))
    demo.load(course, people, io.StringIO())
    assert state == (sorted(Quiz.objects.filter(course=course).values_list("slug", "opens_at", "closes_at")),
                     Attempt.objects.count(), sorted(Attempt.objects.values_list("score", flat=True)))
    now = timezone.now()
    assert Quiz.objects.get(course=course, slug="attention").is_open(now)
    basics = Quiz.objects.get(course=course, slug="basics")
    assert basics.has_closed(now) and basics.attempts.filter(state="submitted").count() == 4
    assert len({a.score for a in basics.attempts.all()}) > 1


# --------------------------------------------------------------------------- code questions
CODE_BANK = '''
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
explanation = "Subtract the max."
'''
GOOD = b"import numpy as np\n\ndef softmax(x):\n    x = np.asarray(x, dtype=float)\n    e = np.exp(x - x.max(axis=-1, keepdims=True))\n    return e / e.sum(axis=-1, keepdims=True)\n"
NAIVE = b"import numpy as np\n\ndef softmax(x):\n    e = np.exp(np.asarray(x, dtype=float))\n    return e / e.sum(axis=-1, keepdims=True)\n"


@pytest.fixture
def code_quiz(make_quiz, settings):
    settings.ASSIGNMENTS_DIR = REPO / "assignments"
    return make_quiz(CODE_BANK)


def test_code_answer_queued_on_submit(course, code_quiz, student, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    from courseplatform.quizzes import tasks

    monkeypatch.setattr(tasks.grade_code_answer, "apply_async",
                        lambda args, queue: sent.append((args, queue)) or type("R", (), {"id": "tid"})())
    a = services.start_attempt(code_quiz, student)
    item = a.items.get()
    services.save_answer(a.pk, item.pk, {"code": [GOOD.decode()]})
    with django_capture_on_commit_callbacks(execute=True):
        services.submit_attempt(a.pk)
    a.refresh_from_db()
    job = GradingJob.objects.get(kind="quiz-answer", object_id=item.pk)
    assert sent == [([job.pk, 1], "cpu")] and a.pending == 1
    assert job.state == "queued" and job.task_id == "tid"
    item.refresh_from_db()
    assert item.grading_state == "pending" and item.score is None


@pytest.mark.parametrize("source, points, text", [(GOOD, 3, "3/3"), (NAIVE, 2, "nan or inf")])
def test_code_answer_graded_by_the_engine(course, code_quiz, student, client_for, source, points, text, grade_now):
    a = services.start_attempt(code_quiz, student)
    item = a.items.get()
    services.save_answer(a.pk, item.pk, {"code": [source.decode()]})
    services.submit_attempt(a.pk)
    assert grade_now("quiz-answer", item.pk) == "saved"
    a.refresh_from_db()
    item.refresh_from_db()
    assert item.grading_state == "graded" and item.score == points and a.score == points and a.pending == 0
    assert text in item.feedback
    page = client_for(student).get(url("result", course, a.pk)).content.decode()
    assert text in page


def test_code_answer_engine_failure_is_reported_not_lost(course, code_quiz, student, monkeypatch, grade_now):
    """An infrastructure fault (the engine's GraderError) ends, after the retries, as an error the
    student can read; the answer is kept and the attempt no longer waits for it."""
    from courseplatform.grading import engine
    from grader.errors import GraderError

    def unavailable(*args, **kwargs):
        raise GraderError("sandbox unavailable")

    monkeypatch.setattr(engine, "grade_function", lambda: unavailable)
    a = services.start_attempt(code_quiz, student)
    item = a.items.get()
    services.save_answer(a.pk, item.pk, {"code": ["x = 1"]})
    services.submit_attempt(a.pk)
    assert grade_now("quiz-answer", item.pk) == "infrastructure-error"
    item.refresh_from_db()
    a.refresh_from_db()
    assert item.grading_state == "error" and item.response == {"code": "x = 1"} and a.pending == 0
    assert "could not grade this answer" in item.feedback and "sandbox unavailable" in item.feedback
    assert GradingJob.objects.get(kind="quiz-answer", object_id=item.pk).state == "error"


def test_questions_with_attempts_cannot_be_deleted_alone_but_quizzes_and_courses_can(course, quiz, students):
    from django.db.models import RestrictedError

    take(quiz, students[0], {"num": ["64"]})
    with pytest.raises(RestrictedError):
        quiz.questions.get(key="num").delete()
    quiz.delete()
    assert not AttemptQuestion.objects.exists()
    course.delete()


def test_admin_pages(course, quiz, students, django_user_model, client_for):
    admin = django_user_model.objects.create_superuser("root", "root@example.edu", "pw-root-123")
    a = take(quiz, students[0], {"num": ["64"]})
    c = client_for(admin)
    for path in ("/admin/quizzes/quiz/", f"/admin/quizzes/quiz/{quiz.pk}/change/", "/admin/quizzes/attempt/",
                 f"/admin/quizzes/attempt/{a.pk}/change/", "/admin/quizzes/question/", "/admin/quizzes/extension/"):
        assert c.get(path).status_code == 200, path


def test_student_text_is_escaped_on_staff_pages(course, quiz, students, ta, client_for):
    a = take(quiz, students[0], {"short": ["<script>alert(1)</script>"]})
    for path in (url("stats", course, quiz.slug), url("result", course, a.pk)):
        page = client_for(ta).get(path).content.decode()
        assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_code_answer_through_the_celery_task(course, code_quiz, student, django_capture_on_commit_callbacks):
    from courseplatform.celery import app

    app.conf.task_always_eager = True
    try:
        a = services.start_attempt(code_quiz, student)
        item = a.items.get()
        services.save_answer(a.pk, item.pk, {"code": [GOOD.decode()]})
        with django_capture_on_commit_callbacks(execute=True):
            services.submit_attempt(a.pk)
    finally:
        app.conf.task_always_eager = False
    a.refresh_from_db()
    assert a.pending == 0 and a.score == 3


def test_a_bank_sync_does_not_overwrite_a_question_edited_on_the_web(course, quiz, instructor, client_for):
    """Issue 11: one source of truth. A web edit stays until the bank file holds the same question,
    and the sync says which questions it did not overwrite."""
    from courseplatform.quizzes import bank
    from courseplatform.quizzes import sync as qsync
    from courseplatform.quizzes.tomlwrite import question_to_toml

    q = quiz.questions.order_by("position").first()
    original_text = q.spec["text"]
    services.update_question(q, dict(q.spec, text="Fixed on the web."))
    q.refresh_from_db()
    assert q.edited_on_web and q.spec["text"] == "Fixed on the web."
    r = client_for(instructor).get(reverse("quizzes:edit_question", args=[course.slug, quiz.slug, q.pk]))
    assert b'data-testid="web-edit-kept"' in r.content

    root = Path(__import__("tempfile").mkdtemp())
    (root / "quizzes").mkdir()
    (root / "quizzes" / "test.toml").write_text(SAMPLE_BANK)
    out = io.StringIO()
    summary = qsync.sync(course, root, out)
    q.refresh_from_db()
    assert q.spec["text"] == "Fixed on the web." and q.edited_on_web, "the old bank text came back"
    assert f"NOT overwritten, edited on the web since the last sync: {q.key}" in out.getvalue()
    assert summary["kept"] == [f"test.toml:{q.key}"]
    assert original_text in SAMPLE_BANK

    # The instructor copies the web version into the file: the next sync agrees and clears the mark.
    parsed = bank.parse_bank(SAMPLE_BANK, where="test.toml")
    entries = SAMPLE_BANK.split("[[question]]")
    index = [s["id"] for s in parsed["questions"]].index(q.key)
    entries[index + 1] = "\n" + question_to_toml(q.spec).split("[[question]]", 1)[1] + "\n"
    (root / "quizzes" / "test.toml").write_text("[[question]]".join(entries))
    out = io.StringIO()
    qsync.sync(course, root, out)
    q.refresh_from_db()
    assert not q.edited_on_web and q.spec["text"] == "Fixed on the web."
    assert "NOT overwritten" not in out.getvalue()


def test_check_runs_visible_tests_only_is_not_an_attempt_and_is_rate_limited(
        course, code_quiz, student, client_for, monkeypatch, django_capture_on_commit_callbacks, grade_now):
    """Issue 11: "Check" on a code question grades the visible tests only, stores no score, does not
    submit, and is limited (one at a time, CHECKS_PER_WINDOW per window)."""
    from django.contrib.auth import get_user_model

    from courseplatform.grading import checks
    from courseplatform.quizzes import tasks
    from courseplatform.quizzes.models import CodeCheck
    from grader.authoring.pack import load_pack

    sent = []
    monkeypatch.setattr(tasks.run_code_check, "apply_async",
                        lambda args, queue: sent.append((args, queue)) or type("R", (), {"id": "tid"})())
    a = services.start_attempt(code_quiz, student)
    item = a.items.get()
    c = client_for(student)
    url = reverse("quizzes:check", args=[course.slug, a.pk, item.pk])
    with django_capture_on_commit_callbacks(execute=True):
        r = c.post(url, {f"q{item.pk}": NAIVE.decode()}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and b"Checking on the visible tests" in r.content
    check = CodeCheck.objects.get()
    job = GradingJob.objects.get(kind="quiz-check", object_id=check.pk)
    assert sent == [([job.pk, 1], "cpu")]
    # One at a time.
    r = c.post(url, {f"q{item.pk}": NAIVE.decode()}, HTTP_HX_REQUEST="true")
    assert b"still running" in r.content and CodeCheck.objects.count() == 1

    assert grade_now("quiz-check", check.pk) == "saved"  # the task, with the real engine
    check.refresh_from_db()
    visible = [t for t in load_pack(codepacks.trusted_dir("code/stable_softmax")).cases() if t.visible]
    assert check.state == "done" and check.total == len(visible) and check.passed < check.total
    assert "hidden test" not in check.feedback
    page = c.get(reverse("quizzes:check_status", args=[course.slug, a.pk, check.pk])).content.decode()
    assert f"{check.passed} of {check.total} visible test" in page and "Not an attempt" in page
    a.refresh_from_db()
    item.refresh_from_db()
    assert a.state == "open" and a.score is None and item.score is None and item.response is None

    for _ in range(checks.limit() - 1):
        CodeCheck.objects.filter(state="pending").update(state="done")
        assert c.post(url, {f"q{item.pk}": GOOD.decode()}).status_code == 200
    CodeCheck.objects.filter(state="pending").update(state="done")
    r = c.post(url, {f"q{item.pk}": GOOD.decode()})
    assert r.status_code == 409 and b"is the limit" in r.content
    assert CodeCheck.objects.count() == checks.limit()
    # Someone else's attempt cannot be checked.
    other = client_for(get_user_model().objects.create_user("mallory", password="pw-mallory-123"))
    assert other.post(url, {f"q{item.pk}": GOOD.decode()}).status_code == 404
