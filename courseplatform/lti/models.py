"""What this site adds to django-lti's models (lti_tool: registrations, deployments, keys, LMS users,
contexts, memberships, resource links).

CourseLink   an LMS context (course) <-> a course here; made by the first instructor launch.
LineItem     one AGS line item per graded activity per linked context, never created twice.
Passback     the score of one student for one activity as sent to the LMS: pending, sent or failed
             with the LMS's reason. The grade here is never changed by it.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from lti_tool.models import LtiContext

from courseplatform.courses.models import Course


class CourseLink(models.Model):
    context = models.OneToOneField(LtiContext, on_delete=models.CASCADE, related_name="course_link")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="lti_links")
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    roster_synced_at = models.DateTimeField(null=True, blank=True)
    roster_message = models.CharField(max_length=500, blank=True, help_text="The last roster sync's outcome.")

    class Meta:
        ordering = ["course", "created_at"]

    def __str__(self) -> str:
        return f"{self.context} -> {self.course.slug}"


class LineItem(models.Model):
    """The LMS's gradebook column for one activity (``assignment:<slug>`` or ``quiz:<slug>``)."""

    link = models.ForeignKey(CourseLink, on_delete=models.CASCADE, related_name="line_items")
    activity = models.CharField(max_length=140)
    url = models.URLField(max_length=1000)
    label = models.CharField(max_length=255, blank=True)
    score_maximum = models.FloatField(default=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["link", "activity"], name="lti_one_line_item_per_activity")]

    def __str__(self) -> str:
        return f"{self.activity} ({self.link})"


class PassbackState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Passback(models.Model):
    link = models.ForeignKey(CourseLink, on_delete=models.CASCADE, related_name="passbacks")
    activity = models.CharField(max_length=140)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_passbacks")
    state = models.CharField(max_length=8, choices=PassbackState.choices, default=PassbackState.PENDING)
    score_given = models.FloatField(null=True, blank=True)
    score_maximum = models.FloatField(null=True, blank=True)
    # What was (or is being) sent: the counted submission/attempts and their grading generation; a new
    # fingerprint (a new attempt, a regrade) sends again, the same one never does.
    fingerprint = models.CharField(max_length=200, blank=True)
    sent_fingerprint = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True, help_text="The LMS's answer when it refused the score.")
    tries = models.PositiveIntegerField(default=0)
    next_try_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["activity", "user__username"]
        constraints = [models.UniqueConstraint(fields=["link", "activity", "user"], name="lti_one_passback_per_score")]

    def __str__(self) -> str:
        return f"{self.user} {self.activity}: {self.state}"
