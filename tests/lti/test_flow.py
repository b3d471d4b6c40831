"""The whole LTI 1.3 flow against the loopback platform: instructor launch (course linked, deep link
returned), student launch (account created, lands on the assignment, submits, is graded), the score at
the AGS endpoint once and again after a regrade, NRPS roster sync."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from lti_platform import INSTRUCTOR, LEARNER, TA

from courseplatform.courses.models import Course, Membership
from courseplatform.lti.models import CourseLink, LineItem, Passback

pytestmark = pytest.mark.django_db


def link_course(platform, do_launch, course=None):
    prof = Client()
    r = do_launch(prof, platform, platform.login_params(platform.user("prof-1", "Grace", "Hopper", roles=(INSTRUCTOR,))))
    assert r.status_code == 302 and r["Location"] == "/lti/link/"
    page = prof.get("/lti/link/")
    assert page.status_code == 200 and b"Large Language Models" in page.content
    if course is None:
        r = prof.post("/lti/link/", {"choice": "new", "title": "LLMs (LMS)", "slug": "llm-lms"})
    else:
        # An instructor of `course` (here by a local enrolment of the LTI account) picks it.
        Membership.objects.get_or_create(course=course, user=get_user_model().objects.get(lti_users__sub="prof-1"),
                                         defaults={"role": "instructor"})
        r = prof.post("/lti/link/", {"choice": str(course.pk)})
    assert r.status_code == 302, r.content[:800]
    return prof, r


def test_first_instructor_launch_creates_and_links_a_course(platform, do_launch):
    prof, r = link_course(platform, do_launch)
    course = Course.objects.get(slug="llm-lms")
    assert r["Location"] == f"/courses/{course.slug}/"
    link = CourseLink.objects.get()
    assert link.course == course and link.context.id_on_platform == platform.context_id
    user = get_user_model().objects.get(lti_users__sub="prof-1")
    assert user.first_name == "Grace" and not user.has_usable_password()
    assert Membership.objects.get(course=course, user=user).role == "instructor"
    assert int(prof.session["_auth_user_id"]) == user.pk


def test_instructor_may_pick_a_course_they_teach(platform, do_launch, course):
    # The LTI account becomes instructor of `course` only by picking it after a first launch; a fresh
    # account teaches nothing, so it is offered "create" only.
    prof = Client()
    do_launch(prof, platform, platform.login_params(platform.user("prof-2", roles=(INSTRUCTOR,))))
    user = get_user_model().objects.get(lti_users__sub="prof-2")
    page = prof.get("/lti/link/")
    assert course.title.encode() not in page.content
    Membership.objects.create(course=course, user=user, role="instructor")
    r = prof.post("/lti/link/", {"choice": str(course.pk)})
    assert r.status_code == 302 and CourseLink.objects.get().course == course


def test_student_launch_creates_account_by_subject_not_email(platform, do_launch, make_user, assignment):
    link_course(platform, do_launch, assignment.course)
    local = make_user("ada_local", email="ada@lms.example")  # same e-mail, a different person here
    ada = Client()
    r = do_launch(ada, platform, platform.login_params(
        platform.user("stu-1", email="ada@lms.example"), custom={"activity": f"assignment:{assignment.slug}"}))
    assert r.status_code == 302 and r["Location"] == f"/courses/{assignment.course.slug}/assignments/{assignment.slug}/"
    user = get_user_model().objects.get(lti_users__sub="stu-1")
    assert user != local and user.email == "ada@lms.example"
    assert Membership.objects.get(course=assignment.course, user=user).role == "student"
    assert ada.get(r["Location"]).status_code == 200
    # A second launch: the same account, no second one.
    do_launch(Client(), platform, platform.login_params(platform.user("stu-1")))
    assert get_user_model().objects.filter(lti_users__sub="stu-1").count() == 1


def test_teaching_assistant_role(platform, do_launch, course):
    link_course(platform, do_launch, None)
    r = do_launch(Client(), platform, platform.login_params(platform.user("ta-1", roles=(TA, INSTRUCTOR))))
    assert r.status_code == 302
    user = get_user_model().objects.get(lti_users__sub="ta-1")
    assert Membership.objects.get(user=user).role == "ta"


def test_deep_linking_returns_a_resource_link_with_a_line_item(platform, do_launch, assignment):
    import requests

    prof, _ = link_course(platform, do_launch, assignment.course)
    r = do_launch(prof, platform, platform.login_params(platform.user("prof-1", roles=(INSTRUCTOR,)),
                                                        message_type="LtiDeepLinkingRequest"))
    assert r.status_code == 302 and r["Location"] == "/lti/deep-link/"
    page = prof.get("/lti/deep-link/")
    assert assignment.title.encode() in page.content
    r = prof.post("/lti/deep-link/", {"activity": f"assignment:{assignment.slug}"})
    assert r.status_code == 200
    assert platform.url.encode() in r["Content-Security-Policy"].encode()  # the form may post to the LMS
    import re
    jwt_value = re.search(rb'name="JWT" value="([^"]+)"', r.content).group(1).decode()
    answer = requests.post(platform.url + "/deep_link_return", data={"JWT": jwt_value}, timeout=10)
    assert answer.status_code == 200
    claims = platform.deep_link_answers[-1]
    items = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert len(items) == 1 and items[0]["type"] == "ltiResourceLink"
    assert items[0]["custom"] == {"activity": f"assignment:{assignment.slug}"}
    assert items[0]["lineItem"]["scoreMaximum"] == assignment.points
    assert items[0]["lineItem"]["resourceId"] == f"assignment:{assignment.slug}"
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "dl-data-1"


def _submit(client, assignment, text):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(f"/courses/{assignment.course.slug}/assignments/{assignment.slug}/submit/",
                       {"file": SimpleUploadedFile("tiny.py", text.encode(), content_type="text/x-python")})


def test_score_reaches_the_lms_once_and_again_after_a_regrade(platform, do_launch, assignment, eager, on_commit_now):
    from courseplatform.submissions.models import Submission
    from courseplatform.submissions.services import regrade

    link_course(platform, do_launch, assignment.course)
    ada = Client()
    do_launch(ada, platform, platform.login_params(platform.user("stu-1"),
                                                   custom={"activity": f"assignment:{assignment.slug}"}))
    r = _submit(ada, assignment, "def double(x):\n    return 2 * x\n# SCORE=7\n")
    assert r.status_code in (200, 302), r.content[:500]
    sub = Submission.objects.get()
    assert sub.state == "graded" and sub.score == 7
    assert len(platform.scores) == 1
    score = platform.scores[0]
    assert score["scoreGiven"] == 7 and score["scoreMaximum"] == 10 and score["userId"] == "stu-1"
    assert score["gradingProgress"] == "FullyGraded"
    assert len(platform.line_items) == 1
    assert Passback.objects.get().state == "sent"
    # A relaunch and a reconcile pass send nothing new, and make no second line item.
    do_launch(ada, platform, platform.login_params(platform.user("stu-1"),
                                                   custom={"activity": f"assignment:{assignment.slug}"}))
    from courseplatform.lti.passback import reconcile

    reconcile()
    assert len(platform.scores) == 1 and len(platform.line_items) == 1 and LineItem.objects.count() == 1
    # A regrade sends the score again, to the same line item.
    regrade(Submission.objects.filter(pk=sub.pk))
    assert len(platform.scores) == 2 and platform.scores[1]["lineitem"] == platform.scores[0]["lineitem"]
    assert len(platform.line_items) == 1


def test_late_penalty_and_best_rule_are_what_is_sent(platform, do_launch, assignment, eager, on_commit_now):
    from datetime import timedelta

    from django.utils import timezone

    link_course(platform, do_launch, assignment.course)
    ada = Client()
    do_launch(ada, platform, platform.login_params(platform.user("stu-1")))
    _submit(ada, assignment, "# SCORE=8\n")
    _submit(ada, assignment, "# SCORE=5\n")  # best rule: 8 still counts, nothing new to send
    assert [s["scoreGiven"] for s in platform.scores] == [8]
    assignment.due_at = timezone.now() - timedelta(hours=2)  # one day late: −10 %
    assignment.late_penalty_percent = 10
    assignment.score_rule = "latest"
    assignment.save()
    _submit(ada, assignment, "# SCORE=10\n")
    assert platform.scores[-1]["scoreGiven"] == pytest.approx(9.0)


def test_scores_wait_until_the_assignment_is_released(platform, do_launch, assignment, on_commit_now, eager):
    """Unreleased: nothing is sent; the periodic reconcile sends it once it is released."""
    from courseplatform.lti.passback import reconcile
    from courseplatform.submissions.models import Submission

    link_course(platform, do_launch, assignment.course)
    do_launch(Client(), platform, platform.login_params(platform.user("stu-1")))
    assignment.released = False
    assignment.save()
    Submission.objects.create(assignment=assignment, student=get_user_model().objects.get(lti_users__sub="stu-1"),
                              sha256="0" * 64, blob="x", original_name="a.py", kind="py", size=1, state="graded",
                              raw_score=6, score=6, max_score=10)
    assert reconcile() == 0 and platform.scores == []
    assignment.released = True
    assignment.save()
    assert reconcile() == 1
    assert [s["scoreGiven"] for s in platform.scores] == [6]
    assert reconcile() == 0 and len(platform.scores) == 1


def test_nrps_sync_enrols_new_students_and_marks_dropped_ones_inactive(platform, do_launch, course, client_for):
    prof, _ = link_course(platform, do_launch, None)
    course = Course.objects.get(slug="llm-lms")
    ada = Client()
    do_launch(ada, platform, platform.login_params(platform.user("stu-1")))
    ada_user = get_user_model().objects.get(lti_users__sub="stu-1")
    platform.members = [
        {"user_id": "prof-1", "roles": [INSTRUCTOR], "status": "Active", "name": "Grace Hopper"},
        {"user_id": "stu-2", "roles": [LEARNER], "status": "Active", "given_name": "Alan", "family_name": "Turing",
         "email": "alan@lms.example"},
        {"user_id": "stu-1", "roles": [LEARNER], "status": "Inactive"},
    ]
    r = prof.post(f"/courses/{course.slug}/lti/sync-roster/")
    assert r.status_code == 302
    alan = get_user_model().objects.get(lti_users__sub="stu-2")
    assert alan.first_name == "Alan"
    assert Membership.objects.get(course=course, user=alan).role == "student"
    m = Membership.objects.get(course=course, user=ada_user)
    assert m.is_active is False  # kept, not deleted
    assert ada.get(f"/courses/{course.slug}/").status_code == 403
    assert "1 newly enrolled, 1 marked inactive" in CourseLink.objects.get().roster_message
    # Not listed any more: inactive too.
    platform.members = [platform.members[0]]
    prof.post(f"/courses/{course.slug}/lti/sync-roster/")
    assert Membership.objects.get(course=course, user=alan).is_active is False
    assert get_user_model().objects.filter(pk=alan.pk).exists()


def test_staff_page_shows_tool_values_and_passback_states(platform, do_launch):
    prof, _ = link_course(platform, do_launch, None)
    page = prof.get("/courses/llm-lms/lti/")
    assert page.status_code == 200
    for value in (b"http://testserver/lti/login/", b"http://testserver/lti/launch/", b"http://testserver/lti/jwks.json"):
        assert value in page.content


def test_jwks_serves_the_tool_key_and_rotation_keeps_the_old_one(platform, django_user_model):
    from courseplatform.lti.keys import rotate

    c = Client()
    before = c.get("/lti/jwks.json").json()["keys"]
    assert len(before) == 1 and before[0]["kty"] == "RSA" and "d" not in before[0]
    key, dropped = rotate()
    after = c.get("/lti/jwks.json").json()["keys"]
    assert {k["kid"] for k in after} == {before[0]["kid"], str(key)} and dropped == 0
    admin = django_user_model.objects.create_superuser("root", "root@x.org", "pw-unused-123")
    c.force_login(admin)
    assert c.get("/lti/registrations/").status_code == 200
    assert c.post("/lti/registrations/rotate-key/").status_code == 302
    assert len(c.get("/lti/jwks.json").json()["keys"]) == 3
