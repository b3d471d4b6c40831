"""Deadline reminders: e-mail every group that has not delivered, 48 hours before the deadline, once.

Sent by the Celery beat entry "projects-milestone-reminders" (every 15 minutes, see apps.py) or by
`manage.py send_milestone_reminders` from cron. Each (milestone, group) gets at most one reminder:
a ReminderSent row is written in the same transaction as the send, under a unique constraint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import Delivery, Group, Milestone, ReminderSent
from .services import local

WINDOW = timedelta(hours=48)


@dataclass
class ReminderRun:
    sent: list[tuple[Milestone, Group, list[str]]] = field(default_factory=list)
    skipped: int = 0


def site_url() -> str:
    return settings.SITE_URL.rstrip("/")


def due_soon(now=None, window=WINDOW, course=None):
    now = now or timezone.now()
    qs = Milestone.objects.filter(due__gt=now, due__lte=now + window).exclude(deliverable="none")
    if course is not None:
        qs = qs.filter(course=course)
    return qs.select_related("course")


def send_reminders(now=None, window=WINDOW, course=None, dry_run=False) -> ReminderRun:
    now = now or timezone.now()
    run = ReminderRun()
    for milestone in due_soon(now, window, course):
        delivered = Delivery.objects.filter(milestone=milestone).values("group_id")
        reminded = ReminderSent.objects.filter(milestone=milestone).values("group_id")
        groups = (Group.objects.filter(course=milestone.course).exclude(id__in=delivered).exclude(id__in=reminded)
                  .prefetch_related("members__user"))
        for group in groups:
            emails = sorted({m.user.email for m in group.members.all() if m.user.email})
            if not emails:
                run.skipped += 1
                continue
            if dry_run:
                run.sent.append((milestone, group, emails))
                continue
            url = site_url() + reverse("projects:delivery", args=[milestone.course.slug, milestone.pk, group.pk])
            body = render_to_string("projects/email/reminder.txt", {
                "group": group, "milestone": milestone, "course": milestone.course, "due": local(milestone.due),
                "url": url,
            })
            subject = f"[{milestone.course.title}] Reminder: “{milestone.title}” is due {local(milestone.due)}"
            try:
                with transaction.atomic():
                    ReminderSent.objects.create(milestone=milestone, group=group, sent_at=now,
                                                recipients=", ".join(emails))
                    send_mail(subject, body, None, emails, fail_silently=False)
            except IntegrityError:
                run.skipped += 1  # another process sent it at the same time
                continue
            run.sent.append((milestone, group, emails))
    return run
