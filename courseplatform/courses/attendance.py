"""Attendance arithmetic shared by the pages, the dashboard panels and the gradebook item."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Q

from .models import Attendance, AttendanceStatus, Course, LectureSession, Membership


@dataclass
class StudentAttendance:
    user: object
    present: int = 0
    absent: int = 0
    excused: int = 0
    allowance: int = 2
    by_session: dict[int, str] = field(default_factory=dict)  # session id -> status

    @property
    def marked(self) -> int:
        return self.present + self.absent + self.excused

    @property
    def flagged(self) -> bool:
        """More absences than the course allows (excused ones do not count)."""
        return self.absent > self.allowance

    @property
    def at_limit(self) -> bool:
        return self.absent == self.allowance and self.allowance > 0


def student_memberships(course: Course):
    return (
        Membership.objects.filter(course=course).students()
        .select_related("user")
        .order_by("user__last_name", "user__first_name", "user__username")
    )


def summary(course: Course, users=None, with_sessions: bool = False) -> list[StudentAttendance]:
    """One StudentAttendance per student of the course (or per given user), in roster order."""
    if users is None:
        users = [m.user for m in student_memberships(course)]
    rows = {u.id: StudentAttendance(user=u, allowance=course.max_absences) for u in users}
    if not rows:
        return []
    counts = (
        Attendance.objects.filter(session__course=course, user_id__in=rows.keys())
        .values("user_id")
        .annotate(
            present=Count("id", filter=Q(status=AttendanceStatus.PRESENT)),
            absent=Count("id", filter=Q(status=AttendanceStatus.ABSENT)),
            excused=Count("id", filter=Q(status=AttendanceStatus.EXCUSED)),
        )
    )
    for c in counts:
        row = rows[c["user_id"]]
        row.present, row.absent, row.excused = c["present"], c["absent"], c["excused"]
    if with_sessions:
        for user_id, session_id, status in Attendance.objects.filter(
            session__course=course, user_id__in=rows.keys()
        ).values_list("user_id", "session_id", "status"):
            rows[user_id].by_session[session_id] = status
    return list(rows.values())


def flagged_students(course: Course) -> list[StudentAttendance]:
    return [row for row in summary(course) if row.flagged]


def sessions_with_counts(course: Course):
    return LectureSession.objects.filter(course=course).annotate(
        n_present=Count("attendance", filter=Q(attendance__status=AttendanceStatus.PRESENT)),
        n_absent=Count("attendance", filter=Q(attendance__status=AttendanceStatus.ABSENT)),
        n_excused=Count("attendance", filter=Q(attendance__status=AttendanceStatus.EXCUSED)),
    )


def held_sessions(course: Course):
    """Sessions whose attendance has been taken (at least one row)."""
    return LectureSession.objects.filter(course=course, attendance__isnull=False).distinct()


def mark_session(session: LectureSession, students, marks: dict[int, str], marked_by) -> dict[str, int]:
    """Store one session's attendance: ``marks`` maps a student's id to a status (students without a
    mark are left as they were). Returns how many are present, absent and excused."""
    with transaction.atomic():
        for user in students:
            if user.id in marks:
                Attendance.objects.update_or_create(
                    session=session, user=user, defaults={"status": marks[user.id], "marked_by": marked_by})
    return {status: list(marks.values()).count(status) for status in AttendanceStatus.values}
