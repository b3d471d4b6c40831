import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from courseplatform.core.hooks import GradeItem
from courseplatform.gradebook import compute
from courseplatform.gradebook.models import CategoryWeights
from courseplatform.projects import services
from courseplatform.projects.models import Group, GroupMember, Milestone, MilestoneGrade, RubricCriterion

pytestmark = pytest.mark.django_db


def gurl(course, name="index"):
    return reverse(f"gradebook:{name}", args=[course.slug])


@pytest.fixture
def graded(course, instructor, student, other_student, make_user, tmp_path, settings):
    """Real models: two groups, a milestone with a rubric graded for one group, an override."""
    settings.MEDIA_ROOT = tmp_path
    from courseplatform.courses.models import Membership

    carol = make_user("carol", first_name="Carol", last_name="Cole")
    Membership.objects.create(course=course, user=carol, role="student")
    a = Group.objects.create(course=course, name="Alpha")
    b = Group.objects.create(course=course, name="Beta")
    GroupMember.objects.create(course=course, group=a, user=student)
    GroupMember.objects.create(course=course, group=a, user=carol)
    GroupMember.objects.create(course=course, group=b, user=other_student)
    m = Milestone.objects.create(course=course, slug="lr1", title="Literature review I", deliverable="file",
                                 due=timezone.now() - timedelta(days=1), allow_late=True)
    RubricCriterion.objects.create(milestone=m, title="Sources", points=4, order=0)
    RubricCriterion.objects.create(milestone=m, title="Analysis", points=6, order=1)
    g = MilestoneGrade.objects.create(milestone=m, group=a, score=8, graded_by=instructor)
    g.overrides.create(user=carol, score=3, reason="absent from the work")
    from django.core.files.uploadedfile import SimpleUploadedFile

    services.deliver(m, b, other_student, upload=SimpleUploadedFile("r.pdf", b"%PDF-1.4 x"))
    Milestone.objects.create(course=course, slug="later", title="Experiments", deliverable="url", points=10,
                             due=timezone.now() + timedelta(days=10))
    return m, carol


def test_staff_page_and_csv_from_real_models(course, instructor, student, other_student, graded, client_for):
    m, carol = graded
    c = client_for(instructor)
    page = c.get(gurl(course)).content.decode()
    for name in ("alice", "bob", "carol", "Literature review I", "individual score", "late"):
        assert name in page
    r = c.get(gurl(course, "export"))
    assert r["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="gradebook-llms-' in r["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    header = rows[0]
    assert header[:4] == ["Username", "First name", "Last name", "Email"]
    assert "Literature review I [10]" in header and "Experiments [10]" in header
    col = header.index("Literature review I [10]")
    by_user = {row[0]: row for row in rows[1:]}
    assert set(by_user) == {"alice", "bob", "carol"}
    assert by_user["alice"][col] == "8" and by_user["carol"][col] == "3" and by_user["bob"][col] == ""
    # only milestones have items here (plus whatever the other apps contribute): check the milestone percent
    mcol = header.index("Milestones %")
    # Bob's group delivered (late) and waits for its grade: pending, not a 0 (issue 11).
    assert by_user["alice"][mcol] == "80" and by_user["carol"][mcol] == "30" and by_user["bob"][mcol] == ""
    assert by_user["alice"][3] == "alice@example.edu" and by_user["alice"][1:3] == ["Alice", "Adams"]
    # the future milestone is not counted yet
    assert by_user["alice"][header.index("Experiments [10]")] == ""


def test_student_sees_own_row_only(course, student, other_student, graded, client_for):
    r = client_for(student).get(gurl(course))
    body = r.content.decode()
    assert r.status_code == 200 and 'id="my-grades"' in body
    assert "Literature review I" in body and "8 / 10" in body
    for other in ("bob", "Bob", "carol", "Carol", "absent from the work", 'id="gradebook"'):
        assert other not in body
    assert client_for(student).get(gurl(course, "export")).status_code == 403


def test_access_refusals(course, ta, student, outsider, client_for):
    assert client_for(outsider).get(gurl(course)).status_code == 404
    assert client_for(outsider).get(gurl(course, "export")).status_code == 404
    assert client_for(ta).get(gurl(course, "export")).status_code == 200
    assert client_for(ta).post(gurl(course, "weights"), {"assignments": 1, "quizzes": 1, "milestones": 1,
                                                          "attendance": 1}).status_code == 403
    assert client_for(student).post(gurl(course, "weights"), {}).status_code == 403
    assert client_for(ta).get(gurl(course)).status_code == 200


def test_instructor_sets_weights(course, instructor, client_for):
    c = client_for(instructor)
    r = c.post(gurl(course, "weights"), {"assignments": "50", "quizzes": "0", "milestones": "50",
                                         "attendance": "0"}, follow=True)
    assert "Category weights saved." in r.content.decode()
    assert CategoryWeights.for_course(course).as_dict() == {"assignments": 50, "quizzes": 0, "milestones": 50,
                                                            "attendance": 0}
    r = c.post(gurl(course, "weights"), {"assignments": "0", "quizzes": "0", "milestones": "0", "attendance": "0"},
               follow=True)
    assert "At least one category needs a weight above 0." in r.content.decode()
    r = c.post(gurl(course, "weights"), {"assignments": "-5", "quizzes": "0", "milestones": "1", "attendance": "0"},
               follow=True)
    assert "Weights not saved" in r.content.decode()
    assert CategoryWeights.for_course(course).as_dict()["assignments"] == 50


def test_weights_drive_the_total(course, instructor, student, graded, monkeypatch):
    """Total from the page's own computation, with items built by hand for the other categories."""
    real = compute.collect_items

    def with_quiz(c):
        its, errors = real(c)
        return its + [GradeItem("quiz:x", "Quiz X", "quizzes", 20, {student.id: 10})], errors

    monkeypatch.setattr(compute, "collect_items", with_quiz)
    w = CategoryWeights.for_course(course)
    w.quizzes, w.milestones = 1, 3
    w.save()
    book = compute.build(course)
    row = book.row_for(student.id)
    assert row.percents["milestones"] == pytest.approx(80.0) and row.percents["quizzes"] == pytest.approx(50.0)
    expected = {"quizzes": 1, "milestones": 3}
    present = [c for c in ("assignments", "quizzes", "milestones", "attendance") if row.percents[c] is not None]
    wsum = sum(book.weights[c] for c in present)
    assert row.total == pytest.approx(sum(book.weights[c] * row.percents[c] for c in present) / wsum)
    if set(present) == set(expected):
        assert row.total == pytest.approx((1 * 50 + 3 * 80) / 4)


def test_absence_flag_from_attendance(course, instructor, student, client_for, monkeypatch):
    monkeypatch.setattr(compute, "attendance_flags",
                        lambda c, users, errors=None: {student.id: "3 absences (more than 2 allowed)"})
    body = client_for(instructor).get(gurl(course)).content.decode()
    assert "3 absences (more than 2 allowed)" in body
    assert "3 absences" in client_for(student).get(gurl(course)).content.decode()


def test_a_failing_attendance_summary_is_loud_in_tests_and_logged_and_shown_in_production(
        course, instructor, student, client_for, monkeypatch, settings, caplog):
    """Issue 23: the gradebook never drops an attendance error in silence."""
    def broken(course, users=None, with_sessions=False):
        raise RuntimeError("attendance table is gone")

    monkeypatch.setattr(compute, "summary", broken)
    settings.HOOKS_FAIL_LOUDLY = True  # tests and DEBUG
    with pytest.raises(RuntimeError, match="attendance table is gone"):
        compute.build(course)
    settings.HOOKS_FAIL_LOUDLY = False  # production: logged with its cause, listed, the rest shown
    with caplog.at_level("ERROR", logger="courseplatform.gradebook.compute"):
        book = compute.build(course)
    assert book.errors == ["attendance: RuntimeError: attendance table is gone (absence flags left out)"]
    assert [r.exc_info[1] for r in caplog.records if r.exc_info][0].args == ("attendance table is gone",)
    assert book.row_for(student.id) is not None
    body = client_for(instructor).get(gurl(course)).content.decode()
    assert "attendance table is gone" in body


def test_dashboard_panels(course, instructor, student, graded, monkeypatch):
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    from courseplatform.courses.models import Membership
    from courseplatform.gradebook import dashboard

    monkeypatch.setattr(compute, "attendance_flags", lambda c, users, errors=None: {u.id: "3 absences" for u in users
                                                                      if u.username == "bob"})
    request = RequestFactory().get("/")
    request.user = student
    [p] = dashboard.panels(request, course, Membership.objects.get(course=course, user=student))
    html = render_to_string(p.template, {**p.context, "course": course})
    assert "Total so far" in html and "bob" not in html
    request.user = instructor
    [s] = dashboard.panels(request, course, Membership.objects.get(course=course, user=instructor))
    html = render_to_string(s.template, {**s.context, "course": course})
    assert "3 students" in html and "Bob Brown: 3 absences" in html


def test_delivered_ungraded_is_pending_and_attendance_counts_sessions_since_enrolment(
        course, instructor, student, other_student, graded, client_for, make_user):
    """Issue 11: a delivered-but-ungraded milestone is "pending", not 0; a student enrolled after the
    sessions were taken has no attendance percentage instead of 0 out of every session."""
    from courseplatform.courses.models import AttendanceStatus, LectureSession, Membership
    from courseplatform.gradebook import compute

    session = LectureSession.objects.create(course=course, title="Lecture 1", date=timezone.now().date()
                                            - timedelta(days=7))
    session.attendance.create(user=student, status=AttendanceStatus.PRESENT)
    session.attendance.create(user=other_student, status=AttendanceStatus.ABSENT)
    newcomer = make_user("newcomer")
    Membership.objects.create(course=course, user=newcomer, role="student")
    book = compute.build(course)
    bob = book.row_for(other_student.id)
    assert "milestone:lr1" not in bob.counted
    assert bob.notes["milestone:lr1"].startswith("pending")
    new = book.row_for(newcomer.id)
    assert new.percents["attendance"] is None and "attendance" not in new.counted
    assert new.notes["attendance"] == "no session since enrolment"
    assert book.row_for(student.id).percents["attendance"] == 100.0
    page = client_for(instructor).get(gurl(course)).content.decode()
    assert "pending: delivered, not graded yet" in page
