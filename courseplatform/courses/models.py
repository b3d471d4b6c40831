"""Courses and the people in them. Every other app hangs off Course and Membership."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models

from courseplatform.core.timezones import validate_zone


class Course(models.Model):
    slug = models.SlugField(unique=True, max_length=64)
    title = models.CharField(max_length=200)
    term = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True, help_text="Markdown")
    max_absences = models.PositiveSmallIntegerField(
        default=2, help_text="A student who misses more sessions than this is flagged."
    )
    time_zone = models.CharField(
        max_length=64, default=settings.TIME_ZONE, validators=[validate_zone],
        help_text="Every date of the course is shown in this zone, on the web, in the API and the CLI.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "slug"]

    def __str__(self) -> str:
        return self.title


class Role(models.TextChoices):
    STUDENT = "student", "Student"
    TA = "ta", "Teaching assistant"
    INSTRUCTOR = "instructor", "Instructor"


# The role sets, once: views pass them to course_role_required, queries use Membership's queryset.
STAFF_ROLES = (Role.TA, Role.INSTRUCTOR)
ANY_ROLE = (Role.STUDENT, Role.TA, Role.INSTRUCTOR)


class MembershipQuerySet(models.QuerySet):
    def students(self):
        return self.filter(role=Role.STUDENT)

    def staff(self):
        return self.filter(role__in=STAFF_ROLES)


def is_student(course, user) -> bool:
    """Whether ``user`` is enrolled as a student of ``course``."""
    return Membership.objects.filter(course=course, user=user).students().exists()


def students_of(course):
    """The users enrolled as students of ``course`` (a User queryset)."""
    return get_user_model().objects.filter(memberships__in=Membership.objects.filter(course=course).students())


class Membership(models.Model):
    """A user's role in one course. A user has at most one role per course."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT)
    # False: dropped in the LMS (an LTI roster sync): kept with all their work, but no longer let in.
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "user"], name="one_role_per_course")]
        ordering = ["course", "role", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) in {self.course.slug}"

    @property
    def is_staff_role(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_instructor(self) -> bool:
        return self.role == Role.INSTRUCTOR


class AttendanceStatus(models.TextChoices):
    PRESENT = "present", "Present"
    ABSENT = "absent", "Absent"
    EXCUSED = "excused", "Excused"


class LectureSession(models.Model):
    """One meeting of the course (lecture, lab, presentation day) whose attendance is taken."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="sessions")
    date = models.DateField()
    title = models.CharField(max_length=200)
    starts_at = models.TimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course", "date", "starts_at", "id"]
        constraints = [models.UniqueConstraint(fields=["course", "date", "title"], name="one_session_per_title_and_day")]

    def __str__(self) -> str:
        return f"{self.date:%d.%m.%Y} {self.title}"


class Attendance(models.Model):
    """Whether a student attended a session. No row: not marked yet (never counted as an absence)."""

    session = models.ForeignKey(LectureSession, on_delete=models.CASCADE, related_name="attendance")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attendance")
    status = models.CharField(max_length=16, choices=AttendanceStatus.choices, default=AttendanceStatus.PRESENT)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    marked_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["session", "user__username"]
        constraints = [models.UniqueConstraint(fields=["session", "user"], name="one_attendance_per_session")]

    def __str__(self) -> str:
        return f"{self.user} {self.get_status_display()} at {self.session}"
