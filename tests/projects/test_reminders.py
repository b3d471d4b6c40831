from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from courseplatform.projects import services
from courseplatform.projects.models import ReminderSent
from courseplatform.projects.reminders import send_reminders

from .conftest import pdf_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def groups(course, student, other_student, student_member, make_group):
    carol = student_member("carol")
    return (make_group("Alpha", [student, carol]), make_group("Beta", [other_student]), make_group("Empty"))


def test_reminds_groups_without_delivery_once(course, student, groups, make_milestone, settings):
    settings.SITE_URL = "https://courses.example.edu"
    alpha, beta, _ = groups
    soon = make_milestone("soon", due=timezone.now() + timedelta(hours=47))
    make_milestone("later", due=timezone.now() + timedelta(hours=49))
    make_milestone("past", due=timezone.now() - timedelta(hours=1))
    make_milestone("nothing", due=timezone.now() + timedelta(hours=10), deliverable="none")
    services.deliver(soon, beta, beta.member_users()[0], upload=pdf_upload())
    run = send_reminders()
    assert [(m.slug, g.name) for m, g, _ in run.sent] == [("soon", "Alpha")]
    assert len(mail.outbox) == 1
    msg = mail.outbox[0]
    assert sorted(msg.to) == ["alice@example.edu", "carol@example.edu"]
    assert "Soon" in msg.subject and f"/projects/milestones/{soon.pk}/groups/{alpha.pk}/" in msg.body
    assert "https://courses.example.edu/" in msg.body and "localhost" not in msg.body  # the site's address
    assert run.skipped == 1  # the group without members (no address)
    # never twice
    assert send_reminders().sent == []
    assert len(mail.outbox) == 1
    assert ReminderSent.objects.get().recipients == "alice@example.edu, carol@example.edu"


def test_window_edges(course, groups, make_milestone):
    now = timezone.now()
    make_milestone("edge", due=now + timedelta(hours=48))
    assert len(send_reminders(now=now).sent) == 2
    make_milestone("beyond", due=now + timedelta(hours=48, seconds=1))
    assert send_reminders(now=now).sent == []
    # an hour later the second milestone enters the window
    assert {g.name for _, g, _ in send_reminders(now=now + timedelta(hours=1)).sent} == {"Alpha", "Beta"}


def test_command_dry_run_and_send(course, groups, make_milestone):
    make_milestone("soon", due=timezone.now() + timedelta(hours=5))
    out = StringIO()
    call_command("send_milestone_reminders", "--dry-run", stdout=out)
    assert "would remind Alpha" in out.getvalue() and len(mail.outbox) == 0
    assert not ReminderSent.objects.exists()
    out = StringIO()
    call_command("send_milestone_reminders", "--course", course.slug, stdout=out)
    assert "2 reminder(s) sent" in out.getvalue() and len(mail.outbox) == 2
    out = StringIO()
    call_command("send_milestone_reminders", stdout=out)
    assert "0 reminder(s) sent" in out.getvalue() and len(mail.outbox) == 2


def test_command_unknown_course():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No course"):
        call_command("send_milestone_reminders", "--course", "nope")


def test_failed_send_is_not_recorded(course, groups, make_milestone, monkeypatch):
    make_milestone("soon", due=timezone.now() + timedelta(hours=5))

    def boom(*a, **k):
        raise OSError("smtp down")

    monkeypatch.setattr("courseplatform.projects.reminders.send_mail", boom)
    with pytest.raises(OSError):
        send_reminders()
    assert not ReminderSent.objects.exists()  # retried next time


def test_beat_schedule_and_task(course, groups, make_milestone):
    from courseplatform.celery import app
    from courseplatform.projects.tasks import REMINDER_TASK, send_milestone_reminders

    entry = app.conf.beat_schedule["projects-milestone-reminders"]
    assert entry["task"] == REMINDER_TASK
    make_milestone("soon", due=timezone.now() + timedelta(hours=5))
    assert send_milestone_reminders.apply().get() == 2
    assert len(mail.outbox) == 2
