"""Browser (Playwright, Debian chromium): the LMS page of the loopback platform launches the tool in
its iframe. The instructor links the course and returns a deep link; a student is created, lands on the
assignment inside the iframe, submits and is graded; the score reaches the platform's AGS endpoint
once, and again after a regrade; the instructor's roster sync enrols a new student."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from lti_platform import INSTRUCTOR, LEARNER
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def test_lms_iframe_launches_deep_link_grade_passback_and_roster(live_server, browser, platform, eager, assignment,
                                                                 tmp_path):
    from courseplatform.courses.models import Membership
    from courseplatform.lti.models import Passback
    from courseplatform.submissions.models import Submission
    from courseplatform.submissions.services import regrade

    # The tool on 127.0.0.1 (the same site as the platform, as an LMS and a tool on one university
    # domain; over plain HTTP a cross-site frame could not keep the Lax session cookie).
    tool = live_server.url.replace("localhost", "127.0.0.1")

    def lms_page(context, params):
        page = context.new_page()
        page.goto(f"{platform.url}/lms?" + urlencode({"src": f"{tool}/lti/login/?" + urlencode(params)}))
        return page, page.frame_locator("#tool")

    # 1. The instructor's first launch, inside the LMS's iframe: link a new course, then a deep link.
    prof_ctx = browser.new_context()
    prof = platform.user("prof-1", "Grace", "Hopper", roles=(INSTRUCTOR,))
    page, frame = lms_page(prof_ctx, platform.login_params(prof))
    expect(frame.locator("[data-testid=lti-link-form]")).to_be_visible()
    frame.locator("input[name=choice][value=new]").check()
    frame.locator("input[name=title]").fill("LLMs from the LMS")
    frame.locator("input[name=slug]").fill("llm-lms")
    frame.locator("[data-testid=lti-link-submit]").click()
    expect(frame.locator("h1")).to_contain_text("LLMs from the LMS")
    # The linked course has the assignment: move the fixture's assignment there.
    from courseplatform.courses.models import Course

    course = Course.objects.get(slug="llm-lms")
    assignment.course = course
    assignment.save()

    page, frame = lms_page(prof_ctx, platform.login_params(prof, message_type="LtiDeepLinkingRequest"))
    expect(frame.locator("[data-testid=lti-deep-link-form]")).to_be_visible()
    frame.locator(f"[data-testid='lti-pick-assignment:{assignment.slug}']").check()
    frame.locator("[data-testid=lti-deep-link-submit]").click()
    expect(frame.locator("#dl-done")).to_be_visible()
    items = platform.deep_link_answers[-1]["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert items[0]["custom"] == {"activity": f"assignment:{assignment.slug}"} and items[0]["lineItem"]["scoreMaximum"] == assignment.points

    # 2. A student launches the linked activity: account created, lands on the assignment, submits.
    stu_ctx = browser.new_context()
    ada = platform.user("stu-1", "Ada", "Lovelace")
    page, frame = lms_page(stu_ctx, platform.login_params(ada, custom={"activity": f"assignment:{assignment.slug}"}))
    expect(frame.locator("#id_file")).to_be_attached()
    user = get_user_model().objects.get(lti_users__sub="stu-1")
    assert Membership.objects.get(course=course, user=user).role == "student"
    solution = tmp_path / "tiny.py"
    solution.write_text("def double(x):\n    return 2 * x\n# SCORE=9\n")
    frame.locator("#id_file").set_input_files(str(solution))
    frame.locator("#submit-btn").click()
    sub_card = frame.locator("[data-state=graded]").first
    expect(sub_card).to_be_visible(timeout=60_000)
    assert Submission.objects.get().score == 9
    assert len(platform.scores) == 1 and platform.scores[0]["scoreGiven"] == 9
    assert platform.scores[0]["userId"] == "stu-1"
    assert len(platform.line_items) == 1  # the deep-linked activity's column, made once

    # 3. A regrade sends it again, once.
    regrade(Submission.objects.all())
    assert len(platform.scores) == 2 and Passback.objects.get().state == "sent"

    # 4. The instructor syncs the roster from the LTI page (in the LMS's frame): a new student.
    platform.members = [
        {"user_id": "prof-1", "roles": [INSTRUCTOR], "status": "Active"},
        {"user_id": "stu-1", "roles": [LEARNER], "status": "Active"},
        {"user_id": "stu-2", "roles": [LEARNER], "status": "Active", "given_name": "Alan", "family_name": "Turing"},
    ]
    page, frame = lms_page(prof_ctx, platform.login_params(prof, custom={"activity": "nothing"}))
    expect(frame.locator("h1")).to_contain_text("LLMs from the LMS")
    page2 = prof_ctx.new_page()  # the same session at top level (the iframe's cookies are first-party here)
    page2.goto(f"{tool}/courses/llm-lms/lti/")
    expect(page2.locator("[data-testid=lti-passbacks] tr[data-state=sent]")).to_have_count(1)
    page2.locator("[data-testid=lti-sync-roster]").click()
    expect(page2.locator(".messages")).to_contain_text("1 newly enrolled")
    alan = get_user_model().objects.get(lti_users__sub="stu-2")
    assert Membership.objects.get(course=course, user=alan).role == "student"
    prof_ctx.close()
    stu_ctx.close()
