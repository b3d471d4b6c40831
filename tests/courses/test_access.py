"""Login/logout, the home redirect, each role's dashboard and every refusal."""
import pytest
from django.urls import reverse

from courseplatform.courses.models import Attendance, LectureSession, Membership

pytestmark = pytest.mark.django_db


def test_login_page_and_login_logout(client, student):
    r = client.get(reverse("login"))
    assert r.status_code == 200 and b'name="username"' in r.content
    bad = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert bad.status_code == 200 and b"Please enter a correct username and password" in bad.content
    r = client.post(reverse("login"), {"username": "alice", "password": "pw-alice"})
    assert r.status_code == 302 and r["Location"] == reverse("courses:home")
    r = client.get(reverse("courses:home"))  # one course: straight to its dashboard
    assert r.status_code == 302 and r["Location"] == reverse("courses:dashboard", args=["llms"])
    r = client.post(reverse("logout"))
    assert r.status_code == 302 and r["Location"] == reverse("login")
    assert client.get(reverse("courses:dashboard", args=["llms"])).status_code == 302


def test_logout_by_get_is_refused(client_for, student):
    c = client_for(student)
    assert c.get(reverse("logout")).status_code == 405
    assert c.get(reverse("courses:dashboard", args=["llms"])).status_code == 200


def test_home_lists_several_courses_with_roles(client_for, course, other_course, student):
    Membership.objects.create(course=other_course, user=student, role="ta")
    r = client_for(student).get(reverse("courses:home"))
    assert r.status_code == 200
    text = r.content.decode()
    assert "Deep Dive into LLMs" in text and "Another Course" in text
    assert "Teaching assistant" in text and "Student" in text


def test_home_without_course(client_for, make_user):
    r = client_for(make_user("nobody")).get(reverse("courses:home"))
    assert r.status_code == 200 and b"not enrolled in any course" in r.content


def test_anonymous_is_sent_to_login(client, course):
    for name in ["courses:dashboard", "courses:roster", "courses:sessions", "courses:attendance", "courses:enrol"]:
        url = reverse(name, args=["llms"])
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith(reverse("login") + "?next="), name
    r = client.get(reverse("courses:home"))
    assert r.status_code == 302 and r["Location"].startswith(reverse("login"))


def test_each_role_sees_its_own_dashboard(client_for, instructor, ta, student):
    url = reverse("courses:dashboard", args=["llms"])
    r = client_for(instructor).get(url)
    assert r.status_code == 200
    assert "Instructor dashboard" in r.content.decode() and "Enrol students" in r.content.decode()
    assert "Roster" in r.content.decode()
    r = client_for(ta).get(url)
    assert "Teaching assistant dashboard" in r.content.decode() and "Enrol students" not in r.content.decode()
    r = client_for(student).get(url)
    text = r.content.decode()
    assert "My attendance" in text and "Instructor dashboard" not in text
    assert reverse("courses:roster", args=["llms"]) not in text  # no staff links for students


def test_nav_shows_staff_links_only_to_staff(client_for, instructor, student):
    url = reverse("courses:dashboard", args=["llms"])
    assert b">Roster</a>" in client_for(instructor).get(url).content
    assert b">Roster</a>" not in client_for(student).get(url).content
    assert b">Sessions</a>" not in client_for(student).get(url).content


def test_student_cannot_open_another_course(client_for, student, other_course):
    r = client_for(student).get(reverse("courses:dashboard", args=["other"]))
    assert r.status_code == 404
    assert client_for(student).get(reverse("courses:dashboard", args=["nonexistent"])).status_code == 404


def test_outsider_gets_404_everywhere(client_for, course, outsider):
    c = client_for(outsider)
    for name in ["courses:dashboard", "courses:roster", "courses:sessions", "courses:attendance"]:
        assert c.get(reverse(name, args=["llms"])).status_code == 404, name


@pytest.mark.parametrize(
    "name,args",
    [
        ("courses:roster", []),
        ("courses:enrol", []),
        ("courses:enrol_template", []),
        ("courses:sessions", []),
        ("courses:session_new", []),
        ("courses:sessions_weekly", []),
        ("courses:settings", []),
    ],
)
def test_student_refused_staff_pages(client_for, student, name, args):
    r = client_for(student).get(reverse(name, args=["llms", *args]))
    assert r.status_code == 403
    assert b"Your role in this course does not allow this page." in r.content


def test_student_refused_session_and_member_actions(client_for, course, instructor, student, other_student):
    s = LectureSession.objects.create(course=course, date="2026-11-06", title="L3")
    c = client_for(student)
    m = Membership.objects.get(user=other_student)
    assert c.get(reverse("courses:session_attendance", args=["llms", s.id])).status_code == 403
    assert c.post(reverse("courses:session_attendance", args=["llms", s.id]),
                  {f"status-{student.id}": "present"}).status_code == 403
    assert not Attendance.objects.exists()
    assert c.post(reverse("courses:member_role", args=["llms", m.id]), {"role": "instructor"}).status_code == 403
    assert c.post(reverse("courses:member_remove", args=["llms", m.id])).status_code == 403
    m.refresh_from_db()
    assert m.role == "student"


def test_ta_refused_instructor_actions(client_for, course, instructor, ta, student):
    c = client_for(ta)
    m = Membership.objects.get(user=student)
    assert c.get(reverse("courses:roster", args=["llms"])).status_code == 200
    assert c.get(reverse("courses:enrol", args=["llms"])).status_code == 403
    assert c.post(reverse("courses:member_role", args=["llms", m.id]), {"role": "ta"}).status_code == 403
    assert c.post(reverse("courses:member_remove", args=["llms", m.id])).status_code == 403
    assert Membership.objects.get(pk=m.pk).role == "student"


def test_student_sees_own_attendance_but_not_another(client_for, course, student, other_student):
    c = client_for(student)
    r = c.get(reverse("courses:attendance", args=["llms"]))
    assert r.status_code == 302 and r["Location"] == reverse("courses:student_attendance", args=["llms", student.id])
    assert c.get(r["Location"]).status_code == 200
    assert c.get(reverse("courses:student_attendance", args=["llms", other_student.id])).status_code == 404


def test_member_ids_of_another_course_are_not_reachable(client_for, course, instructor, other_course, outsider):
    m = Membership.objects.get(user=outsider)
    c = client_for(instructor)
    assert c.post(reverse("courses:member_remove", args=["llms", m.id])).status_code == 404
    assert c.get(reverse("courses:student_attendance", args=["llms", outsider.id])).status_code == 404
    assert Membership.objects.filter(pk=m.pk).exists()


def test_superuser_acts_as_instructor(client_for, course, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.edu", "pw-root-123")
    r = client_for(root).get(reverse("courses:dashboard", args=["llms"]))
    assert r.status_code == 200 and b"Instructor dashboard" in r.content
    assert client_for(root).get("/admin/courses/lecturesession/").status_code == 200


def _add_panels(monkeypatch, panels):
    from courseplatform.core import hooks

    broken = hooks.Hook("fake", "dashboard", "courseplatform.fake.dashboard", panels)
    monkeypatch.setitem(hooks._registry, "dashboard", [*hooks._registry["dashboard"], broken])


def _boom(request, course, membership):
    raise RuntimeError("boom")


def test_broken_panel_fails_loudly_under_tests(client_for, instructor, monkeypatch):
    _add_panels(monkeypatch, _boom)
    with pytest.raises(RuntimeError, match="boom"):
        client_for(instructor).get(reverse("courses:dashboard", args=["llms"]))


def test_panel_that_is_not_a_panel_fails_loudly(client_for, instructor, monkeypatch):
    _add_panels(monkeypatch, lambda request, course, membership: [{"title": "old style", "template": "x.html"}])
    with pytest.raises(TypeError, match="returned dict, not hooks.Panel"):
        client_for(instructor).get(reverse("courses:dashboard", args=["llms"]))


def test_broken_panel_in_production_is_logged_and_the_rest_shown(client_for, instructor, monkeypatch, settings, caplog):
    settings.HOOKS_FAIL_LOUDLY = False
    _add_panels(monkeypatch, _boom)
    r = client_for(instructor).get(reverse("courses:dashboard", args=["llms"]))
    assert r.status_code == 200 and b"This panel could not be loaded (fake)" in r.content
    assert b"Roster" in r.content  # the other panels are there
    assert "dashboard hook of fake failed" in caplog.text


def test_system_check_refuses_a_hook_without_its_function_or_with_other_parameters(monkeypatch):
    from courseplatform.core import hooks

    monkeypatch.setitem(hooks._registry, "gradebook", [
        hooks.Hook("a", "gradebook", "courseplatform.a.gradebook", None),
        hooks.Hook("b", "gradebook", "courseplatform.b.gradebook", lambda course, extra: []),
    ])
    errors = hooks.check_hooks()
    assert [e.id for e in errors] == ["courseplatform.E001", "courseplatform.E002"]
    assert "courseplatform.a.gradebook defines no function items()" in errors[0].msg


def test_registry_is_discovered_once_per_app():
    from courseplatform.core import hooks

    assert [h.app for h in hooks.hooks("dashboard")] == ["courses", "submissions", "quizzes", "projects", "gradebook", "lti"]
    assert [h.app for h in hooks.hooks("sync")] == ["submissions", "quizzes", "projects"]
    assert hooks.check_hooks() == []
