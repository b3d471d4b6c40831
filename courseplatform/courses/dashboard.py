"""The foundation's own dashboard panels: roster and attendance."""
from __future__ import annotations

from django.utils import timezone

from . import attendance as att
from courseplatform.core.hooks import Panel
from .models import LectureSession, Membership, Role


def _sessions(course):
    today = timezone.localdate()
    all_sessions = list(att.sessions_with_counts(course))
    upcoming = [s for s in all_sessions if s.date >= today]
    marked = [s for s in all_sessions if s.n_present + s.n_absent + s.n_excused]
    unmarked_past = [s for s in all_sessions if s.date < today and s not in marked]
    today_session = next((s for s in all_sessions if s.date == today), None)
    return {
        "n_sessions": len(all_sessions),
        "n_held": len(marked),
        "next_session": upcoming[0] if upcoming else None,
        "today_session": today_session,
        "unmarked_past": unmarked_past[-1] if unmarked_past else None,
    }


def panels(request, course, membership) -> list[Panel]:
    if membership.is_staff_role:
        members = Membership.objects.filter(course=course)
        rows = att.summary(course)
        return [
            Panel(title="Attendance", template="courses/panels/attendance_staff.html", context={
                    "flagged": [r for r in rows if r.flagged],
                    "at_limit": [r for r in rows if r.at_limit],
                    **_sessions(course),
                }, order=10),
            Panel(title="Roster", template="courses/panels/roster_summary.html", context={
                    "n_students": members.students().count(),
                    "n_tas": members.filter(role=Role.TA).count(),
                    "n_instructors": members.filter(role=Role.INSTRUCTOR).count(),
                    "never_logged_in": members.students().filter(user__last_login__isnull=True).count(),
                }, order=90),
        ]
    row = att.summary(course, users=[request.user])[0]
    upcoming = LectureSession.objects.filter(course=course, date__gte=timezone.localdate()).first()
    return [
        Panel(title="My attendance", template="courses/panels/attendance_student.html", context={"row": row, "next_session": upcoming}, order=80)
    ]
