"""CSV enrolment (all or nothing, line-numbered errors), roles, removal, set-password links."""
import pytest
from django.http import HttpRequest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from courseplatform.courses.models import Membership

pytestmark = pytest.mark.django_db
User = get_user_model()


def upload(c, content, name="roster.csv", **extra):
    data = content.encode() if isinstance(content, str) else content
    return c.post(reverse("courses:enrol", args=["llms"]),
                  {"file": SimpleUploadedFile(name, data, content_type="text/csv"), "role": "student", **extra})


GOOD = "username,name,email\nada,Ada Lovelace,ada@example.edu\nalan,Alan M. Turing,alan@example.edu\n"


def test_good_file_creates_accounts_with_set_password_links(client_for, instructor):
    r = upload(client_for(instructor), GOOD)
    assert r.status_code == 200
    text = r.content.decode()
    assert "Enrolled 2 people (2 new accounts)" in text
    ada = User.objects.get(username="ada")
    assert (ada.first_name, ada.last_name, ada.email) == ("Ada", "Lovelace", "ada@example.edu")
    assert User.objects.get(username="alan").last_name == "M. Turing"
    assert not ada.has_usable_password()
    assert Membership.objects.get(user=ada).role == "student"
    assert "/accounts/reset/" in text
    # the one-time link works: set a password, then log in with it
    link = next(line for line in text.split('value="')[1:] if "/accounts/reset/" in line).split('"')[0]
    from django.test import Client

    c = Client()
    r = c.get(link, follow=True)
    assert r.status_code == 200 and b"Set your password" in r.content
    r = c.post(r.redirect_chain[-1][0], {"new_password1": "tr4nsformer-ada", "new_password2": "tr4nsformer-ada"})
    assert r.status_code == 302
    assert c.login(request=HttpRequest(), username="ada", password="tr4nsformer-ada")  # django-axes needs a request
    # the links can be downloaded once as CSV by the instructor who enrolled
    ic = client_for(instructor)
    assert ic.get(reverse("courses:enrol_links_csv", args=["llms"])).status_code == 302  # other session: none


def test_links_csv_download_in_same_session(client_for, instructor):
    c = client_for(instructor)
    upload(c, GOOD)
    r = c.get(reverse("courses:enrol_links_csv", args=["llms"]))
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    lines = r.content.decode().splitlines()
    assert lines[0] == "username,name,email,set_password_link" and len(lines) == 3


def test_invites_emailed_when_asked(client_for, instructor):
    upload(client_for(instructor), GOOD, send_invites="on")
    assert len(mail.outbox) == 2
    assert "ada@example.edu" in mail.outbox[0].to and "/accounts/reset/" in mail.outbox[0].body


def test_bad_rows_reported_by_line_and_nothing_imported(client_for, instructor):
    content = (
        "username,name,email\n"
        "ada,Ada Lovelace,ada@example.edu\n"
        "bad name,Bob,bob@example.edu\n"
        "carol,,carol@example.edu\n"
        "dave,Dave,not-an-email\n"
        "ada,Ada Again,ada2@example.edu\n"
        "erin,Erin\n"
    )
    r = upload(client_for(instructor), content)
    assert r.status_code == 400
    text = r.content.decode()
    assert "Nothing was imported" in text
    assert "Line 3: username &#x27;bad name&#x27; may contain only" in text
    assert "Line 4: name is empty" in text
    assert "Line 5: email &#x27;not-an-email&#x27; is not a valid address" in text
    assert "Line 6: username &#x27;ada&#x27; already appears on line 2" in text
    assert "Line 7: Expected 3 fields, found 2" in text
    assert not User.objects.filter(username__in=["ada", "carol", "dave", "erin"]).exists()
    assert Membership.objects.filter(role="student").count() == 0


def test_duplicate_usernames_differing_in_case(client_for, instructor):
    r = upload(client_for(instructor), "username,name,email\nAda,Ada L,a1@example.edu\nada,Ada M,a2@example.edu\n")
    assert r.status_code == 400 and "Line 3: username &#x27;ada&#x27; already appears on line 2" in r.content.decode()
    assert not User.objects.filter(username__iexact="ada").exists()


def test_wrong_columns(client_for, instructor):
    r = upload(client_for(instructor), "user,full name,mail\nada,Ada,ada@example.edu\n")
    assert r.status_code == 400
    assert "Missing column(s): username, name, email" in r.content.decode()
    assert not User.objects.filter(username="ada").exists()


def test_non_utf8_file(client_for, instructor):
    r = upload(client_for(instructor), "username,name,email\nj\u00fcrgen,J\u00fcrgen M\u00fcller,j@example.edu\n".encode("latin-1"))
    assert r.status_code == 400
    assert "The file is not UTF-8 text" in r.content.decode()
    assert not User.objects.filter(email="j@example.edu").exists()


def test_binary_and_empty_files(client_for, instructor):
    c = client_for(instructor)
    r = upload(c, "")
    assert r.status_code == 200 and b"The submitted file is empty." in r.content  # Django's own form check
    r = upload(c, b"\x00\x01\x02username")
    assert r.status_code == 400 and b"NUL bytes" in r.content
    r = upload(c, "username,name,email\n")
    assert r.status_code == 400 and b"no rows" in r.content


def test_semicolon_bom_and_utf8_names(client_for, instructor):
    content = "\ufeffUsername;Name;Email;Group\njuergen;J\u00fcrgen M\u00fcller;j@example.edu;A\n"
    r = upload(client_for(instructor), content.encode("utf-8"))
    assert r.status_code == 200, r.content.decode()[:2000]
    u = User.objects.get(username="juergen")
    assert u.last_name == "M\u00fcller"
    assert "Ignored column: group" in r.content.decode()


def test_existing_accounts_and_members(client_for, instructor, student, make_user):
    make_user("carl", email="carl@example.edu")
    r = upload(client_for(instructor),
               "username,name,email\nalice,Alice Adams,alice@example.edu\ncarl,Carl,carl@example.edu\n")
    assert r.status_code == 200
    text = r.content.decode()
    assert "already enrolled as Student; unchanged" in text
    assert "existing account enrolled" in text
    carl = User.objects.get(username="carl")
    assert carl.has_usable_password()  # an existing password is never touched
    assert Membership.objects.filter(user=carl, role="student").exists()


def test_existing_username_with_other_email_is_refused(client_for, instructor, student):
    r = upload(client_for(instructor), "username,name,email\nnew1,New One,n1@example.edu\nalice,Alice,evil@example.org\n")
    assert r.status_code == 400
    assert "Line 3: username &#x27;alice&#x27; belongs to an existing account with a different e-mail" in r.content.decode()
    assert not User.objects.filter(username="new1").exists()
    assert User.objects.get(username="alice").email == "alice@example.edu"


def test_template_download(client_for, instructor):
    r = client_for(instructor).get(reverse("courses:enrol_template", args=["llms"]))
    assert r.status_code == 200 and r.content.decode().startswith("username,name,email\r\n")  # RFC 4180 line ends (core/csvexport.py)


def test_roster_lists_members_with_roles(client_for, instructor, ta, student, other_student):
    r = client_for(ta).get(reverse("courses:roster", args=["llms"]))
    text = r.content.decode()
    assert r.status_code == 200
    for name in ["alice", "bob", "tara", "prof"]:
        assert name in text
    assert "Teaching assistant" in text and "Enrol from CSV" not in text  # TAs read, do not manage


def test_change_role_and_remove(client_for, instructor, student):
    c = client_for(instructor)
    m = Membership.objects.get(user=student)
    r = c.post(reverse("courses:member_role", args=["llms", m.id]), {"role": "ta"})
    assert r.status_code == 302
    m.refresh_from_db()
    assert m.role == "ta"
    r = c.post(reverse("courses:member_role", args=["llms", m.id]), {"role": "dean"}, follow=True)
    assert b"Choose a valid role." in r.content
    m.refresh_from_db()
    assert m.role == "ta"
    assert c.get(reverse("courses:member_remove", args=["llms", m.id])).status_code == 200
    r = c.post(reverse("courses:member_remove", args=["llms", m.id]))
    assert r.status_code == 302 and not Membership.objects.filter(pk=m.pk).exists()
    assert User.objects.filter(pk=student.pk).exists()  # the account stays
    assert client_for(student).get(reverse("courses:dashboard", args=["llms"])).status_code == 404


def test_last_instructor_cannot_be_demoted_or_removed(client_for, instructor):
    c = client_for(instructor)
    m = Membership.objects.get(user=instructor)
    r = c.post(reverse("courses:member_role", args=["llms", m.id]), {"role": "student"}, follow=True)
    assert b"only instructor" in r.content
    r = c.post(reverse("courses:member_remove", args=["llms", m.id]), follow=True)
    assert b"only instructor" in r.content
    m.refresh_from_db()
    assert m.role == "instructor"


def test_fresh_set_password_link(client_for, instructor, student):
    m = Membership.objects.get(user=student)
    c = client_for(instructor)
    r = c.post(reverse("courses:member_invite", args=["llms", m.id]), follow=True)
    assert b"/accounts/reset/" not in r.content and b"already uses this account" in r.content
    student.set_unusable_password()  # an account from CSV enrolment nobody has used yet
    student.save()
    r = c.post(reverse("courses:member_invite", args=["llms", m.id]))
    assert r.status_code == 200 and b"/accounts/reset/" in r.content
    r = c.post(reverse("courses:member_invite", args=["llms", m.id]), {"email": "1"})
    assert r.status_code == 302 and mail.outbox[-1].to == ["alice@example.edu"]


def test_hostile_names_are_escaped_and_not_run_as_formulas(client_for, instructor):
    c = client_for(instructor)
    r = upload(c, 'username,name,email\nmallory,"<script>alert(1)</script> =HYPERLINK(""x"")",m@example.edu\n')
    assert r.status_code == 200
    page = c.get(reverse("courses:roster", args=["llms"])).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    User.objects.filter(username="mallory").update(first_name="=cmd|' /C calc'!A0")
    csv_text = c.get(reverse("courses:attendance", args=["llms"]) + "?format=csv").content.decode()
    import csv as csvmod
    import io

    rows = list(csvmod.reader(io.StringIO(csv_text)))
    assert rows[1][1].startswith("'=cmd|")  # defused: a spreadsheet shows it as text
    links = c.get(reverse("courses:enrol_links_csv", args=["llms"])).content.decode()
    assert "mallory" in links


def test_membership_role_sets_and_queryset(course, other_course, instructor, ta, student, make_user):
    from courseplatform.courses.models import (
        ANY_ROLE, STAFF_ROLES, Membership, Role, is_student, students_of,
    )

    outsider = make_user("elsewhere")
    Membership.objects.create(course=other_course, user=outsider, role=Role.STUDENT)
    Membership.objects.create(course=other_course, user=ta, role=Role.STUDENT)  # staff here, student there
    members = Membership.objects.filter(course=course)
    assert {m.user for m in members.students()} == {student}
    assert {m.user for m in members.staff()} == {instructor, ta}
    assert set(students_of(course)) == {student} and set(students_of(other_course)) == {outsider, ta}
    assert is_student(course, student) and not is_student(course, ta) and is_student(other_course, ta)
    assert STAFF_ROLES == (Role.TA, Role.INSTRUCTOR) and set(ANY_ROLE) == set(Role)
    assert {m.user: m.is_staff_role for m in members} == {instructor: True, ta: True, student: False}
