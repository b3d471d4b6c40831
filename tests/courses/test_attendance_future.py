"""Issue 28, item 9: marking attendance for a session that has not taken place yet warns, and saves
only when the marker confirms it; a past session is marked as before, without the warning."""
import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from courseplatform.courses.models import Attendance, LectureSession

pytestmark = pytest.mark.django_db


def test_future_session_warns_and_needs_a_confirmation(client_for, instructor, student, course):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    session = LectureSession.objects.create(course=course, date=tomorrow, title="Lecture next")
    c = client_for(instructor)
    url = reverse("courses:session_attendance", args=["llms", session.id])
    page = c.get(url).content.decode()
    assert 'data-testid="future-session"' in page and 'name="confirm_future"' in page
    r = c.post(url, {f"status-{student.id}": "absent"})
    assert r.status_code == 400 and "has not taken place yet" in r.content.decode()
    assert not Attendance.objects.exists()
    r = c.post(url, {f"status-{student.id}": "absent", "confirm_future": "1"})
    assert r.status_code == 302 and Attendance.objects.get(user=student).status == "absent"


def test_past_and_earlier_today_sessions_have_no_warning(client_for, instructor, student, course):
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    session = LectureSession.objects.create(course=course, date=yesterday, title="Lecture before")
    c = client_for(instructor)
    url = reverse("courses:session_attendance", args=["llms", session.id])
    assert 'data-testid="future-session"' not in c.get(url).content.decode()
    assert c.post(url, {f"status-{student.id}": "present"}).status_code == 302

    from courseplatform.courses.views import _session_in_future

    now = timezone.localtime()
    today = LectureSession(course=course, date=now.date(), title="x", starts_at=dt.time(0, 0))
    assert not _session_in_future(today, now) and not _session_in_future(
        LectureSession(course=course, date=now.date(), title="y"), now)
    later = LectureSession(course=course, date=now.date(), title="z", starts_at=dt.time(23, 59, 59))
    assert _session_in_future(later, now.replace(hour=12, minute=0))
