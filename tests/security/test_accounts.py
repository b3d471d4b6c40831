"""Accounts: one course's instructor must not gain power over people beyond their course."""
from __future__ import annotations

import re

import pytest
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def mallory(world, make_user):
    """The instructor of *another* course, who knows prof's (public) university e-mail."""
    from courseplatform.courses.models import Membership

    u = make_user("mallory")
    Membership.objects.create(course=world.other_course, user=u, role="instructor")
    return u


def _enrol_existing(course, user):
    from courseplatform.courses import enrolment

    rows = [enrolment.Row(line=2, username=user.username, name=user.get_full_name() or user.username,
                          email=user.email)]
    return enrolment.enrol(course, rows)


def test_enrolling_an_existing_account_gives_no_password_link(world, mallory):
    """CSV enrolment of an account that already has a password: enrolled, but no set-password link."""
    [entry] = _enrol_existing(world.other_course, world.instructor)
    assert entry.status == "enrolled" and entry.invite_url == ""


def test_instructor_cannot_take_over_a_member_who_has_a_password(client_for, world, mallory):
    from courseplatform.courses.models import Membership

    _enrol_existing(world.other_course, world.instructor)  # prof, instructor of llms, now a student of "other"
    member = Membership.objects.get(course=world.other_course, user=world.instructor)
    r = client_for(mallory).post(reverse("courses:member_invite", args=["other", member.pk]))
    links = re.findall(r"/accounts/reset/[^\s\"'<]+", r.content.decode())
    if links:  # try the link: it must not let mallory set prof's password
        c = Client()
        step = c.get(links[0], follow=True)
        form_url = step.redirect_chain[-1][0] if step.redirect_chain else links[0]
        c.post(form_url, {"new_password1": "Mallory-owns-you-42", "new_password2": "Mallory-owns-you-42"})
    assert not Client().login(request=HttpRequest(), username="prof", password="Mallory-owns-you-42"), \
        "the instructor of another course reset prof's password"
    assert Client().login(request=HttpRequest(), username="prof", password="pw-prof")


def test_token_revoke_with_garbage_id_is_a_message(world):
    c = Client(raise_request_exception=False)
    c.force_login(world.alice)
    r = c.post(reverse("api-profile"), {"revoke": "abc"})
    assert r.status_code in (302, 400, 404)


def test_student_cannot_revoke_someone_elses_token(client_for, world):
    from courseplatform.submissions.models import ApiToken

    token, key = ApiToken.issue(world.bob, "bob's cli")
    client_for(world.alice).post(reverse("api-profile"), {"revoke": token.pk})
    token.refresh_from_db()
    assert token.revoked_at is None
    r = client_for(world.alice).get(reverse("api-profile"))
    assert b"bob's cli" not in r.content and token.prefix.encode() not in r.content
