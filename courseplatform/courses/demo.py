"""Demo hook of the foundation: the lecture sessions and some attendance (idempotent).

The sessions follow the real plan moved by people["shift_weeks"] (load_demo: today falls inside the
plan); a later run in another week moves the same sessions (matched by title) again."""
from __future__ import annotations

from . import demo_data
from .models import Attendance, AttendanceStatus, LectureSession


def load(course, people, stdout):
    weeks = people.get("shift_weeks", 0)
    created = 0
    sessions = []
    for date, title in demo_data.SESSIONS:
        date = demo_data.shifted(date, weeks)
        session = LectureSession.objects.filter(course=course, title=title).order_by("pk").first()
        if session is None:
            session = LectureSession.objects.create(course=course, date=date, title=title)
            created += 1
        elif session.date != date:
            session.date = date
            session.save(update_fields=["date"])
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
    stdout.write(f"  courses: {len(sessions)} lecture sessions ({created} new), {marked} new attendance marks")
