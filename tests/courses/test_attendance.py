"""Sessions, one-page attendance marking, absence counts and the flag, the gradebook item."""
import datetime as dt

import pytest
from django.urls import reverse

from courseplatform.courses import attendance as att
from courseplatform.courses.gradebook import items
from courseplatform.courses.models import Attendance, LectureSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def sessions(course):
    return [LectureSession.objects.create(course=course, date=dt.date(2026, 10, 23) + dt.timedelta(weeks=i), title=f"L{i + 1}")
            for i in range(4)]


def mark(session, user, status):
    Attendance.objects.update_or_create(session=session, user=user, defaults={"status": status})


def test_create_session_and_refuse_duplicate(client_for, instructor):
    c = client_for(instructor)
    url = reverse("courses:session_new", args=["llms"])
    r = c.post(url, {"date": "2026-10-23", "title": "Lecture 1"})
    assert r.status_code == 302 and LectureSession.objects.count() == 1
    r = c.post(url, {"date": "2026-10-23", "title": "Lecture 1"})
    assert r.status_code == 200 and "There is already a session" in r.content.decode()
    r = c.post(url, {"date": "not a date", "title": "X"})
    assert r.status_code == 200 and b"Enter a valid date" in r.content
    assert LectureSession.objects.count() == 1


def test_weekly_sessions(client_for, instructor):
    c = client_for(instructor)
    url = reverse("courses:sessions_weekly", args=["llms"])
    r = c.post(url, {"first": "2026-10-23", "last": "2027-01-15", "title": "Lecture",
                     "skip": "2026-12-25, 01.01.2027"})
    assert r.status_code == 302
    dates = list(LectureSession.objects.values_list("date", flat=True))
    assert len(dates) == 11 and dt.date(2026, 12, 25) not in dates and dates[-1] == dt.date(2027, 1, 15)
    assert LectureSession.objects.first().title == "Lecture 1"
    c.post(url, {"first": "2026-10-23", "last": "2027-01-15", "title": "Lecture"})  # again: nothing doubled
    assert LectureSession.objects.filter(date=dt.date(2026, 10, 23)).count() == 1
    r = c.post(url, {"first": "2027-01-15", "last": "2026-10-23", "title": "Lecture"})
    assert b"The last date is before the first." in r.content
    r = c.post(url, {"first": "2026-10-23", "last": "2027-01-15", "title": "Lecture", "skip": "someday"})
    assert b"is not a date" in r.content


def test_mark_attendance_on_one_page(client_for, instructor, student, other_student, sessions):
    c = client_for(instructor)
    url = reverse("courses:session_attendance", args=["llms", sessions[0].id])
    r = c.get(url)
    assert r.status_code == 200 and b"alice" in r.content and b"bob" in r.content
    r = c.post(url, {f"status-{student.id}": "present", f"status-{other_student.id}": "absent"})
    assert r.status_code == 302
    assert Attendance.objects.get(user=student).status == "present"
    assert Attendance.objects.get(user=other_student).status == "absent"
    assert Attendance.objects.get(user=student).marked_by == instructor
    # change one mark; a bogus value is refused and nothing changes
    r = c.post(url, {f"status-{student.id}": "asleep", f"status-{other_student.id}": "excused"})
    assert r.status_code == 400 and b"alice: choose present, absent or excused." in r.content
    assert Attendance.objects.get(user=other_student).status == "absent"
    c.post(url, {f"status-{student.id}": "present", f"status-{other_student.id}": "excused"})
    assert Attendance.objects.get(user=other_student).status == "excused"


def test_ta_may_take_attendance(client_for, ta, student, sessions):
    r = client_for(ta).post(reverse("courses:session_attendance", args=["llms", sessions[0].id]),
                            {f"status-{student.id}": "absent"})
    assert r.status_code == 302 and Attendance.objects.get(user=student).status == "absent"


def test_marking_ignores_non_students(client_for, instructor, ta, student, sessions):
    client_for(instructor).post(reverse("courses:session_attendance", args=["llms", sessions[0].id]),
                                {f"status-{student.id}": "present", f"status-{ta.id}": "absent"})
    assert list(Attendance.objects.values_list("user__username", flat=True)) == ["alice"]


def test_flag_only_above_allowance(client_for, course, instructor, student, other_student, sessions):
    for s in sessions[:2]:
        mark(s, student, "absent")  # == allowance (2): not flagged
    for s in sessions[:3]:
        mark(s, other_student, "absent")  # 3 > 2: flagged
    mark(sessions[3], student, "excused")  # excused never counts
    rows = {r.user.username: r for r in att.summary(course)}
    assert (rows["alice"].absent, rows["alice"].flagged, rows["alice"].at_limit) == (2, False, True)
    assert (rows["bob"].absent, rows["bob"].flagged) == (3, True)
    r = client_for(instructor).get(reverse("courses:dashboard", args=["llms"]))
    text = r.content.decode()
    flags = text.split('data-testid="absence-flags"')[1].split("</ul>")[0]
    assert "Bob Brown" in flags and "Alice Adams" not in flags
    assert "1 student over the absence allowance (2)" in text
    # the allowance is a course setting
    course.max_absences = 3
    course.save()
    r = client_for(instructor).get(reverse("courses:dashboard", args=["llms"]))
    assert "No student is over the absence allowance (3)." in r.content.decode()


def test_student_sees_own_absences(client_for, student, other_student, sessions):
    for s in sessions[:3]:
        mark(s, student, "absent")
    mark(sessions[0], other_student, "absent")
    r = client_for(student).get(reverse("courses:dashboard", args=["llms"]))
    text = r.content.decode()
    assert 'data-testid="my-absences">3 <span>absences so far · you may miss up to 2 sessions' in text
    assert "You have missed more sessions than the course allows" in text
    r = client_for(student).get(reverse("courses:student_attendance", args=["llms", student.id]))
    assert r.content.decode().count('badge bad">absent') == 3


def test_overview_and_csv(client_for, instructor, student, other_student, sessions):
    mark(sessions[0], student, "absent")
    c = client_for(instructor)
    r = c.get(reverse("courses:attendance", args=["llms"]))
    assert r.status_code == 200 and b"Alice Adams" in r.content
    r = c.get(reverse("courses:attendance", args=["llms"]) + "?format=csv")
    lines = r.content.decode().splitlines()
    assert lines[0].startswith("username,name,present,absent,excused,flagged,2026-10-23 L1")
    assert lines[1].startswith("alice,Alice Adams,0,1,0,,absent")


def test_delete_session_removes_its_marks(client_for, instructor, student, sessions):
    mark(sessions[0], student, "absent")
    c = client_for(instructor)
    assert c.get(reverse("courses:session_delete", args=["llms", sessions[0].id])).status_code == 200
    c.post(reverse("courses:session_delete", args=["llms", sessions[0].id]))
    assert not Attendance.objects.exists() and LectureSession.objects.count() == 3


def test_session_of_another_course_is_404(client_for, instructor, other_course):
    s = LectureSession.objects.create(course=other_course, date="2026-10-23", title="X")
    assert client_for(instructor).get(reverse("courses:session_attendance", args=["llms", s.id])).status_code == 404


def test_gradebook_item(course, student, other_student, make_user, sessions):
    assert items(course) == []  # nothing marked yet: no column
    mark(sessions[0], student, "present")
    mark(sessions[1], student, "excused")
    mark(sessions[2], student, "absent")
    mark(sessions[0], other_student, "absent")
    (item,) = items(course)
    assert (item.key, item.category, item.max_points) == ("attendance", "attendance", 3.0)
    assert item.scores[student.id] == 2.0 and item.scores[other_student.id] == 0.0
    assert item.notes[student.id] == "1 absence, 1 excused"
    assert item.url == reverse("courses:attendance", args=["llms"])


def test_course_settings_change_allowance(client_for, course, instructor, ta):
    url = reverse("courses:settings", args=["llms"])
    assert client_for(ta).get(url).status_code == 403
    c = client_for(instructor)
    r = c.post(url, {"title": "Deep Dive into LLMs", "term": "WS", "description": "", "max_absences": "-1"})
    assert r.status_code == 200 and b"Ensure this value is greater than or equal to 0" in r.content
    r = c.post(url, {"title": "Deep Dive into LLMs", "term": "WS", "description": "", "max_absences": "3",
                     "time_zone": "Europe/Berlin"})
    assert r.status_code == 302
    course.refresh_from_db()
    assert course.max_absences == 3 and course.time_zone == "Europe/Berlin"
