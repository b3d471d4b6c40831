"""Issue 11, first run: the demo's dates follow today. load_demo moves the real plan (lectures,
deadlines, milestones) by whole weeks so that today falls inside it: the flagship attention
assignment is open and due within a week, earlier lectures/milestones are past (marked, graded),
later ones to come; weekdays and times of day stay as planned. The real plan itself is unchanged."""
from __future__ import annotations

import io
import shutil
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from courseplatform.courses import demo_data
from courseplatform.courses.models import Attendance, Course, LectureSession

ROOT = Path(__file__).resolve().parents[2]
BERLIN = demo_data.PLAN_ZONE


@pytest.mark.parametrize("now", [
    datetime(2026, 12, 2, 7, 34, tzinfo=dt_timezone.utc),    # a Wednesday after the attention deadline
    datetime(2026, 11, 13, 22, 58, tzinfo=dt_timezone.utc),  # 23:58 in Berlin on the due day
    datetime(2026, 11, 13, 23, 0, tzinfo=dt_timezone.utc),   # a minute after it
    datetime(2027, 3, 28, 12, 0, tzinfo=dt_timezone.utc),    # a daylight-saving change day
    datetime(2026, 8, 1, 0, 0, tzinfo=dt_timezone.utc),      # before the plan starts
    datetime(2031, 6, 15, 9, 0, tzinfo=dt_timezone.utc),
])
def test_the_flagship_deadline_lands_in_the_coming_week_on_its_weekday_and_time(now):
    weeks = demo_data.shift_weeks(now)
    due = demo_data.shifted(demo_data.ANCHOR_DUE, weeks)
    assert now <= due < now + timedelta(days=7)
    local = due.astimezone(BERLIN)
    assert (local.strftime("%A"), local.hour, local.minute) == ("Friday", 23, 59)
    first = demo_data.shifted(demo_data.SESSIONS[0][0], weeks)
    assert first.strftime("%A") == "Friday" and (first - demo_data.SESSIONS[0][0]).days == 7 * weeks


def _only(monkeypatch, apps):
    from courseplatform.core import hooks

    monkeypatch.setitem(hooks._registry, "demo", [h for h in hooks._registry.get("demo", []) if h.app in apps])


@pytest.fixture
def demo_content(settings, tmp_path):
    """The real attention pack (graded by the real engine: one pack, to stay fast) and course plan."""
    content = tmp_path / "content"
    shutil.copytree(ROOT / "assignments" / "attention", content / "attention")
    shutil.copy(ROOT / "assignments" / "milestones.toml", content / "milestones.toml")
    settings.ASSIGNMENTS_DIR = content
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return content


@pytest.mark.django_db
@pytest.mark.parametrize("today", [
    datetime(2027, 3, 10, 9, 0, tzinfo=dt_timezone.utc),   # long after the real course: a Wednesday
    datetime(2026, 12, 12, 0, 30, tzinfo=dt_timezone.utc),  # half an hour after a Friday deadline
])
def test_load_demo_on_any_day_has_open_due_soon_and_past_work(demo_content, monkeypatch, today):
    from courseplatform.projects.models import DeliveryVersion, Milestone, MilestoneGrade, ProjectSettings
    from courseplatform.submissions import services
    from courseplatform.submissions.models import Assignment, Submission

    _only(monkeypatch, {"courses", "submissions", "projects"})
    monkeypatch.setattr(timezone, "now", lambda: today)
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    course = Course.objects.get(slug="llms")

    # The flagship assignment: open, due within the week (Friday 23:59 course time), graded work in it.
    attention = Assignment.objects.get(course=course, slug="attention")
    assert today < attention.due_at < today + timedelta(days=7)
    assert timezone.localtime(attention.due_at, BERLIN).strftime("%a %H:%M") == "Fri 23:59"
    from django.contrib.auth import get_user_model

    newcomer = get_user_model().objects.get(username="student8")  # no demo submission of attention
    standing = services.standing(attention, newcomer, False)
    assert standing.can_submit, standing.reason
    graded = Submission.objects.filter(assignment=attention, state="graded")
    assert graded.count() == 5 and all(s.created_at < today for s in graded)

    # Lectures: the marked ones are past, later ones to come; the plan keeps its Fridays.
    sessions = list(LectureSession.objects.filter(course=course).order_by("date"))
    assert len(sessions) == len(demo_data.SESSIONS)
    assert all(s.date.strftime("%A") == "Friday" for s in sessions)
    marked = {a.session_id for a in Attendance.objects.filter(session__course=course)}
    assert marked and all(s.date <= today.date() for s in sessions if s.pk in marked)
    assert any(s.date > today.date() for s in sessions)

    # Milestones: past ones delivered and graded, later ones open; group lock moved with the plan.
    milestones = list(Milestone.objects.filter(course=course))
    assert any(m.due < today for m in milestones) and any(m.due > today for m in milestones)
    assert MilestoneGrade.objects.filter(milestone__course=course).exists()
    assert DeliveryVersion.objects.filter(delivery__milestone__course=course, submitted_at__lt=today).exists()
    assert not DeliveryVersion.objects.filter(submitted_at__gt=today).exists()  # nothing from the future
    assert not MilestoneGrade.objects.filter(graded_at__gt=today).exists()
    form_groups = Milestone.objects.get(course=course, slug="form-groups")
    assert ProjectSettings.for_course(course).lock_at == form_groups.due
    assert "moved by" in out.getvalue()

    # A second run the same week changes no date; the real plan file is untouched.
    before = (attention.due_at, [s.date for s in sessions], sorted(m.due for m in milestones))
    call_command("load_demo", stdout=io.StringIO())
    attention.refresh_from_db()
    after = (attention.due_at, [s.date for s in LectureSession.objects.filter(course=course).order_by("date")],
             sorted(Milestone.objects.filter(course=course).values_list("due", flat=True)))
    assert after == before
    assert Submission.objects.filter(assignment=attention).count() == 5
    assert "2026-11-13T23:59:00+01:00" in (ROOT / "assignments" / "milestones.toml").read_text()


@pytest.mark.django_db
def test_load_demo_fills_the_leaderboard_and_prints_logins_only_on_request(settings, tmp_path, monkeypatch):
    from courseplatform.submissions.models import Submission

    content = tmp_path / "content"
    shutil.copytree(ROOT / "assignments" / "bert_finetune", content / "bert_finetune")
    settings.ASSIGNMENTS_DIR = content
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    _only(monkeypatch, {"courses", "submissions"})
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    from courseplatform.submissions.leaderboard import board
    from courseplatform.submissions.models import Assignment

    subs = Submission.objects.filter(assignment__slug="bert_finetune")
    assert sorted(subs.values_list("state", flat=True)) == ["graded", "queued", "queued"]
    assert all(s.created_at <= timezone.now() for s in subs)
    # The leaderboard has a row as soon as load_demo is done (graded by the real engine); the worker
    # that `make run` starts grades the queued ones.
    bert = Assignment.objects.get(slug="bert_finetune")
    rows, _ = board(bert, get_user_model().objects.get(username="instructor"), True)
    assert len(rows) == 1 and rows[0].value > 0 and rows[0].user.username == "student6"
    # `make run`'s launcher prints the logins; load_demo itself only when asked.
    assert "Demo logins" not in out.getvalue()
    out = io.StringIO()
    call_command("load_demo", "--logins", stdout=out)
    assert out.getvalue().count("Demo logins") == 1
    assert Submission.objects.filter(assignment__slug="bert_finetune").count() == 3


@pytest.mark.django_db
def test_a_later_run_of_the_quiz_demo_opens_the_lecture_quiz_again(course, instructor, ta, make_user, monkeypatch):
    from courseplatform.quizzes import demo
    from courseplatform.quizzes.models import Quiz

    people = {"instructor": instructor, "ta": ta, "students": [make_user(f"q{i}") for i in range(3)]}
    first = datetime(2026, 11, 10, 9, 0, tzinfo=dt_timezone.utc)
    monkeypatch.setattr(timezone, "now", lambda: first)
    demo.load(course, people, io.StringIO())
    assert Quiz.objects.get(course=course, slug=demo.OPEN_NOW).is_open(first)
    later = first + timedelta(days=40)  # make run again, weeks later
    monkeypatch.setattr(timezone, "now", lambda: later)
    demo.load(course, people, io.StringIO())
    quiz = Quiz.objects.get(course=course, slug=demo.OPEN_NOW)
    assert quiz.is_open(later) and quiz.closes_at > later + timedelta(days=5)
    assert Quiz.objects.get(course=course, slug=demo.CLOSED_WITH_ATTEMPTS).has_closed(later)
