from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from courseplatform.projects import services
from courseplatform.projects.models import Group, GroupEvent, GroupMember, ProjectSettings
from courseplatform.projects.services import ProjectError

pytestmark = pytest.mark.django_db


def url(name, course, *args):
    return reverse(f"projects:{name}", args=[course.slug, *args])


def msgs(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_student_creates_group_and_gets_code(course, student, client_for):
    c = client_for(student)
    r = c.post(url("group_create", course), {"name": "  Attention   Seekers "}, follow=True)
    g = Group.objects.get(course=course)
    assert g.name == "Attention Seekers"
    assert len(g.join_code) == 10 and g.join_code.isalnum()
    assert g.has_member(student)
    assert g.join_code in r.content.decode()
    actions = list(GroupEvent.objects.filter(course=course).values_list("action", flat=True))
    assert set(actions) == {"created", "joined"}


def test_join_codes_are_unique_and_unguessable(course, student, other_student):
    a = services.create_group(course, student, "A")
    b = services.create_group(course, other_student, "B")
    assert a.join_code != b.join_code
    assert set(a.join_code) <= set("23456789ABCDEFGHJKMNPQRSTUVWXYZ")


def test_join_by_code_case_and_spaces_forgiven(course, student, other_student, client_for):
    g = services.create_group(course, student, "A")
    code = g.join_code.lower()
    r = client_for(other_student).post(url("group_join", course), {"code": f" {code[:5]} {code[5:]} "}, follow=True)
    assert g.has_member(other_student)
    assert "You joined “A”." in msgs(r)
    assert GroupEvent.objects.filter(action="joined", subject=other_student).exists()


def test_join_full_group_refused(course, student, student_member, client_for):
    cfg = ProjectSettings.for_course(course)
    cfg.max_group_size = 2
    cfg.save()
    g = services.create_group(course, student, "Duo")
    services.join_group(course, student_member("s2"), g.join_code)
    late = student_member("s3")
    r = client_for(late).post(url("group_join", course), {"code": g.join_code}, follow=True)
    assert "Group “Duo” is full (2 of 2 members)." in msgs(r)
    assert not g.has_member(late)


def test_join_locked_group_refused_by_flag_and_by_date(course, student, other_student, client_for):
    g = services.create_group(course, student, "A")
    cfg = ProjectSettings.for_course(course)
    cfg.locked = True
    cfg.save()
    r = client_for(other_student).post(url("group_join", course), {"code": g.join_code}, follow=True)
    assert any("Groups are locked" in m for m in msgs(r))
    assert not g.has_member(other_student)
    cfg.locked = False
    cfg.lock_at = timezone.now() - timedelta(minutes=1)
    cfg.save()
    with pytest.raises(ProjectError, match="locked"):
        services.join_group(course, other_student, g.join_code)
    with pytest.raises(ProjectError, match="locked"):
        services.leave_group(course, student)
    cfg.lock_at = timezone.now() + timedelta(days=1)
    cfg.save()
    assert services.join_group(course, other_student, g.join_code) == g


def test_join_code_of_another_course_refused(course, other_course, student, outsider):
    foreign = services.create_group(other_course, outsider, "Elsewhere")
    with pytest.raises(ProjectError, match="No group in this course has that join code"):
        services.join_group(course, student, foreign.join_code)
    assert not GroupMember.objects.filter(course=course).exists()


def test_join_while_in_a_group_refused(course, student, other_student):
    services.create_group(course, student, "A")
    b = services.create_group(course, other_student, "B")
    with pytest.raises(ProjectError, match="already in group “A”; leave it"):
        services.join_group(course, student, b.join_code)
    with pytest.raises(ProjectError, match="already in group “A”"):
        services.create_group(course, student, "C")


def test_duplicate_and_empty_names_refused(course, student, other_student):
    services.create_group(course, student, "Alpha")
    with pytest.raises(ProjectError, match="already exists"):
        services.create_group(course, other_student, "ALPHA")
    with pytest.raises(ProjectError, match="Give the group a name"):
        services.create_group(course, other_student, "   ")


def test_leave_and_empty_group_is_removed(course, student, other_student, client_for):
    g = services.create_group(course, student, "A")
    services.join_group(course, other_student, g.join_code)
    client_for(student).post(url("group_leave", course))
    assert Group.objects.filter(pk=g.pk).exists()
    client_for(other_student).post(url("group_leave", course))
    assert not Group.objects.filter(pk=g.pk).exists()
    assert GroupEvent.objects.filter(action="deleted", group_name="A").exists()


def test_instructors_form_groups_setting(course, student):
    cfg = ProjectSettings.for_course(course)
    cfg.students_form_groups = False
    cfg.save()
    with pytest.raises(ProjectError, match="instructors form the groups"):
        services.create_group(course, student, "Mine")


def test_staff_moves_students_even_when_locked(course, instructor, student, other_student, client_for):
    a = services.create_group(course, student, "A")
    b = services.create_group(course, other_student, "B")
    services.set_locked(course, instructor, True)
    c = client_for(instructor)
    r = c.post(url("groups_action", course), {"action": "move", "student": student.pk, "group": b.pk}, follow=True)
    assert b.has_member(student) and not a.has_member(student)
    assert "alice moved to “B”." in msgs(r)
    ev = GroupEvent.objects.filter(action="moved").first()
    assert ev.actor == instructor and ev.subject == student and "from “A”" in ev.detail
    # out of any group: the student appears under "without a group"
    c.post(url("groups_action", course), {"action": "move", "student": other_student.pk, "group": ""})
    page = c.get(url("groups", course)).content.decode()
    assert "bob" in page.split('id="without-group"')[1].split("</ul>")[0]
    assert list(services.students_without_group(course)) == [other_student]


def test_staff_move_into_full_group_and_non_student_refused(course, instructor, ta, student, other_student,
                                                           student_member):
    cfg = ProjectSettings.for_course(course)
    cfg.max_group_size = 1
    cfg.save()
    g = services.create_group(course, student, "Solo")
    with pytest.raises(ProjectError, match="full"):
        services.move_student(course, instructor, other_student, g)
    with pytest.raises(ProjectError, match="Only students"):
        services.move_student(course, instructor, ta, None)


def test_staff_move_to_group_of_other_course_refused(course, other_course, instructor, student, outsider,
                                                     client_for):
    foreign = services.create_group(other_course, outsider, "Elsewhere")
    r = client_for(instructor).post(url("groups_action", course),
                                    {"action": "move", "student": student.pk, "group": foreign.pk}, follow=True)
    assert any("Pick a student of this course" in m for m in msgs(r))
    assert not foreign.has_member(student)


def test_history_shown_to_staff_only(course, instructor, ta, student, client_for):
    services.create_group(course, student, "Historians")
    services.set_locked(course, instructor, True)
    page = client_for(ta).get(url("groups", course))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Historians" in body and "locked groups" in body and "created the group" in body
    assert client_for(student).get(url("groups", course)).status_code == 403


def test_group_pages_refuse_outsiders_and_wrong_roles(course, instructor, student, outsider, client_for):
    assert client_for(outsider).get(url("index", course)).status_code == 404
    assert client_for(outsider).post(url("group_create", course), {"name": "x"}).status_code == 404
    assert client_for(student).post(url("groups_action", course), {"action": "lock"}).status_code == 403
    assert client_for(instructor).post(url("group_create", course), {"name": "x"}).status_code == 403
    assert not Group.objects.exists()
    assert not ProjectSettings.for_course(course).locked


def test_only_instructor_changes_settings(course, instructor, ta, client_for):
    r = client_for(ta).post(url("groups", course), {"max_group_size": 5, "students_form_groups": "on"})
    assert r.status_code == 403
    r = client_for(instructor).post(url("groups", course), {"max_group_size": 5, "students_form_groups": "on"})
    assert r.status_code == 302
    assert ProjectSettings.for_course(course).max_group_size == 5
    assert GroupEvent.objects.filter(action="settings").exists()
    r = client_for(instructor).post(url("groups", course), {"max_group_size": 0})
    assert r.status_code == 200 and ProjectSettings.for_course(course).max_group_size == 5


def test_rename_new_code_delete(course, instructor, student, client_for):
    g = services.create_group(course, student, "A")
    old = g.join_code
    c = client_for(instructor)
    c.post(url("groups_action", course), {"action": "new_code", "group": g.pk})
    g.refresh_from_db()
    assert g.join_code != old
    c.post(url("groups_action", course), {"action": "rename", "group": g.pk, "name": "Renamed"})
    g.refresh_from_db()
    assert g.name == "Renamed"
    c.post(url("groups_action", course), {"action": "delete", "group": g.pk})
    assert not Group.objects.filter(pk=g.pk).exists()
    assert set(GroupEvent.objects.values_list("action", flat=True)) >= {"new_code", "renamed", "deleted"}
