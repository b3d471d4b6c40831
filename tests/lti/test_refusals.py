"""Every refused launch: a clear page, one WARNING log line on "courseplatform.lti", nobody signed in.
One test per refusal (referenced from tests/security/README.md)."""
from __future__ import annotations

import logging
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from lti_platform import INSTRUCTOR, new_key

pytestmark = pytest.mark.django_db
MMEMBER = "http://purl.imsglobal.org/vocab/lis/v2/membership#"


def assert_refused(response, code, caplog, client):
    assert response.status_code in (400, 403), response.status_code
    assert f'data-refusal="{code}"'.encode() in response.content, response.content[:1500]
    assert b"Nobody was signed in" in response.content
    lines = [r for r in caplog.records if r.name == "courseplatform.lti" and r.levelno == logging.WARNING]
    assert any(f"LTI launch refused: {code}" in r.getMessage() for r in lines), [r.getMessage() for r in lines]
    assert "_auth_user_id" not in client.session


@pytest.fixture
def student_params(platform):
    return platform.login_params(platform.user("stu-9"))


def test_unknown_issuer(platform, caplog):
    c = Client()
    params = platform.login_params(platform.user("stu-9"))
    params["iss"] = "https://lms.unknown.example"
    assert_refused(c.post("/lti/login/", params), "unknown-platform", caplog, c)


def test_unknown_client_id(platform, caplog):
    c = Client()
    params = platform.login_params(platform.user("stu-9"))
    params["client_id"] = "someone-else"
    assert_refused(c.post("/lti/login/", params), "unknown-platform", caplog, c)


def test_unknown_deployment(platform, do_launch, caplog):
    from lti_tool.models import LtiDeployment

    c = Client()
    r = do_launch(c, platform, platform.login_params(platform.user("stu-9"), deployment_id="dep-unknown"))
    assert_refused(r, "unknown-deployment", caplog, c)
    assert not LtiDeployment.objects.filter(deployment_id="dep-unknown").exists()  # no row made for it


def test_bad_signature(platform, do_launch, student_params, caplog):
    other = new_key()
    platform.tamper = lambda claims, header: (claims, header, other)  # same kid, another key
    c = Client()
    assert_refused(do_launch(c, platform, student_params), "bad-signature", caplog, c)


def test_key_not_in_the_jwks(platform, do_launch, student_params, caplog):
    other = new_key()
    platform.tamper = lambda claims, header: (claims, {"kid": "not-published"}, other)
    c = Client()
    assert_refused(do_launch(c, platform, student_params), "unknown-key", caplog, c)


def test_expired_token(platform, do_launch, student_params, caplog):
    def old(claims, header):
        claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
        return claims, header, platform.key
    platform.tamper = old
    c = Client()
    assert_refused(do_launch(c, platform, student_params), "expired", caplog, c)


def test_token_from_the_future(platform, do_launch, student_params, caplog):
    def future(claims, header):
        claims.update(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200)
        return claims, header, platform.key
    platform.tamper = future
    c = Client()
    assert_refused(do_launch(c, platform, student_params), "expired", caplog, c)


def test_replayed_nonce(platform, do_oidc, caplog):
    prof = Client()
    fields = do_oidc(prof, platform, platform.login_params(platform.user("prof-9", roles=(INSTRUCTOR,))))
    assert prof.post("/lti/launch/", fields).status_code == 302
    thief = Client()
    thief.cookies = prof.cookies  # even with the victim's state cookie
    assert_refused(thief.post("/lti/launch/", fields), "replayed", caplog, thief)


def test_state_mismatch(platform, do_oidc, student_params, caplog):
    c = Client()
    fields = do_oidc(c, platform, student_params)
    fields["state"] = "state-forged"
    assert_refused(c.post("/lti/launch/", fields), "state", caplog, c)


def test_state_from_another_browser(platform, do_oidc, student_params, caplog):
    fields = do_oidc(Client(), platform, student_params)
    other = Client()  # no state cookie: the login started elsewhere
    assert_refused(other.post("/lti/launch/", fields), "state", caplog, other)


def test_missing_roles(platform, do_launch, caplog):
    c = Client()
    r = do_launch(c, platform, platform.login_params(platform.user("stu-9", roles=())))
    assert_refused(r, "roles", caplog, c)


def test_unknown_roles(platform, do_launch, caplog):
    c = Client()
    r = do_launch(c, platform, platform.login_params(platform.user("stu-9", roles=(MMEMBER + "Mentor",
                                                                                   "http://example.org/role#Boss"))))
    assert_refused(r, "roles", caplog, c)


def test_unlinked_course_tells_students_to_ask_their_instructor(platform, do_launch, caplog):
    c = Client()
    r = do_launch(c, platform, platform.login_params(platform.user("stu-9")))
    assert_refused(r, "not-linked", caplog, c)
    assert b"ask your instructor" in r.content


def test_a_refused_launch_signs_out_whoever_was_signed_in(platform, do_launch, make_user, caplog):
    c = Client()
    c.force_login(make_user("someone"))
    r = do_launch(c, platform, platform.login_params(platform.user("stu-9", roles=())))
    assert_refused(r, "roles", caplog, c)


def test_lms_rejecting_a_score_is_shown_retried_with_backoff_and_keeps_the_grade(
        platform, do_launch, settings, caplog, django_user_model):
    from courseplatform.courses.models import Course
    from courseplatform.lti import tasks
    from courseplatform.lti.models import CourseLink, Passback
    from courseplatform.lti.passback import schedule
    from courseplatform.submissions.models import Assignment, Submission

    from courseplatform.celery import app

    settings.LTI_PASSBACK_MAX_RETRIES = 2
    prof = Client()
    do_launch(prof, platform, platform.login_params(platform.user("prof-1", roles=(INSTRUCTOR,))))
    prof.post("/lti/link/", {"choice": "new", "title": "LLMs", "slug": "llm-r"})
    course = Course.objects.get(slug="llm-r")
    a = Assignment.objects.create(course=course, slug="hw", title="HW", points=10)
    do_launch(Client(), platform, platform.login_params(platform.user("stu-1")))
    ada = get_user_model().objects.get(lti_users__sub="stu-1")
    sub = Submission.objects.create(assignment=a, student=ada, sha256="0" * 64, blob="x", original_name="a.py",
                                    kind="py", size=1, state="graded", raw_score=8, score=8, max_score=10)
    platform.reject_scores = (422, "Score rejected: the gradebook column is locked")
    old = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    try:
        from django.db import transaction
        from unittest import mock

        with mock.patch.object(transaction, "on_commit", lambda fn, using=None, robust=False: fn()):
            schedule(CourseLink.objects.get(), "assignment:hw", ada)
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = old
    pb = Passback.objects.get()
    assert pb.state == "failed" and pb.tries == 3  # the first try and 2 retries
    assert "422" in pb.reason and "gradebook column is locked" in pb.reason
    posts = [p for p in platform.received if p[0] == "POST" and p[1].endswith("/scores")]
    assert len(posts) == 3
    assert tasks.backoff(0) < tasks.backoff(1) < tasks.backoff(2)
    sub.refresh_from_db()
    assert sub.score == 8 and sub.state == "graded"  # the grade here is untouched
    page = prof.get(f"/courses/{course.slug}/lti/")
    assert b"gradebook column is locked" in page.content and b'data-state="failed"' in page.content
    assert any("LTI passback failed" in r.getMessage() for r in caplog.records)
    # The LMS accepts again: staff send it from the page.
    platform.reject_scores = None
    app.conf.task_always_eager = True
    try:
        from django.db import transaction
        from unittest import mock

        with mock.patch.object(transaction, "on_commit", lambda fn, using=None, robust=False: fn()):
            prof.post(f"/courses/{course.slug}/lti/resend/")
    finally:
        app.conf.task_always_eager = old[0]
    assert Passback.objects.get().state == "sent" and platform.scores[-1]["scoreGiven"] == 8


def test_lti_admin_pages_refuse_others(client_for, instructor):
    """Registrations and key rotation: superusers only; an LTI page with no launch in the session: 404."""
    c = client_for(instructor)
    assert c.get("/lti/registrations/").status_code == 302
    assert c.post("/lti/registrations/rotate-key/").status_code == 302
    assert c.get("/lti/link/").status_code == 404
    assert c.get("/lti/deep-link/").status_code == 404
    assert Client().get("/lti/link/").status_code == 404
