"""Demo hook of the foundation: the lecture sessions and some attendance (idempotent)."""
from __future__ import annotations

from . import demo_data
from .models import Attendance, AttendanceStatus, LectureSession


def load(course, people, stdout):
    created = 0
    sessions = []
    for date, title in demo_data.SESSIONS:
        session, new = LectureSession.objects.get_or_create(course=course, date=date, title=title)
        created += new
        sessions.append(session)
    marked = 0
    for i, student in enumerate(people["students"]):
        for j, session in enumerate(sessions[: demo_data.MARKED_SESSIONS]):
            if j in demo_data.ABSENT.get(i, []):
                status = AttendanceStatus.ABSENT
            elif j in demo_data.EXCUSED.get(i, []):
                status = AttendanceStatus.EXCUSED
            else:
                status = AttendanceStatus.PRESENT
            _, new = Attendance.objects.get_or_create(
                session=session, user=student, defaults={"status": status, "marked_by": people["instructor"]}
            )
            marked += new
    stdout.write(f"  courses: {len(sessions)} sessions ({created} new), {marked} new attendance marks")
