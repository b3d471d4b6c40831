"""Browser test: two students form a group, one delivers a literature review (structure check shown),
the instructor grades it from the matrix with the rubric, the group sees the feedback."""
from __future__ import annotations

from datetime import timedelta

import pytest

REVIEW_INCOMPLETE = """## Source: Attention Is All You Need
**Objective:** Replace recurrence with attention for translation.
**Outcome:** Better BLEU at lower training cost than recurrent models.
"""

REVIEW = REVIEW_INCOMPLETE.replace(
    "**Outcome:**", "**Method:** Encoder-decoder transformer trained on WMT14 data.\n**Outcome:**"
) + """
## Source: BERT
**Objective:** Learn bidirectional representations for understanding tasks.
**Method:** Masked language modelling and next sentence prediction pretraining.
**Outcome:** New state of the art on GLUE and SQuAD after fine-tuning.
"""


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_group_delivers_review_and_instructor_grades(live_server, browser, page, login, make_user, settings,
                                                     tmp_path):
    from django.utils import timezone

    from courseplatform.courses.models import Course, Membership
    from courseplatform.projects.models import DeliveryVersion, Milestone, MilestoneGrade, RubricCriterion

    settings.MEDIA_ROOT = tmp_path
    course = Course.objects.create(slug="llms", title="Deep Dive into LLMs")
    prof, ada, alan = make_user("prof"), make_user("ada"), make_user("alan")
    for u, role in ((prof, "instructor"), (ada, "student"), (alan, "student")):
        Membership.objects.create(course=course, user=u, role=role)
    m = Milestone.objects.create(course=course, slug="literature-review-1", title="Literature review I",
                                 due=timezone.now() + timedelta(days=2), deliverable="file", file_types="md",
                                 min_sources=2, instructions="At least **two** sources.")
    RubricCriterion.objects.create(milestone=m, title="Choice of sources", points=4, order=0)
    RubricCriterion.objects.create(milestone=m, title="Summaries", points=6, order=1)
    base = live_server.url + "/courses/llms/projects/"

    # Ada creates the group and reads its join code.
    login(page, "ada", "pw-ada")
    page.goto(base)
    page.fill("#create-group input[name=name]", "Attention Seekers")
    page.click("#create-group button[type=submit]")
    code = page.locator(".join-code").inner_text().strip()
    assert len(code) == 10

    # Alan joins with the code.
    alan_ctx = browser.new_context()
    alan_page = alan_ctx.new_page()
    login(alan_page, "alan", "pw-alan")
    alan_page.goto(base)
    alan_page.fill("#join-group input[name=code]", code.lower())
    alan_page.click("#join-group button[type=submit]")
    assert "You joined “Attention Seekers”." in alan_page.content()
    assert alan_page.locator(".group-name").inner_text() == "Attention Seekers"

    # Ada checks an incomplete review, sees what is missing, completes it and submits.
    page.goto(base)
    page.click("text=Literature review I")
    page.fill("textarea[name=text]", REVIEW_INCOMPLETE)
    page.click("#check-button")
    missing = page.locator(".check-missing")
    missing.wait_for()
    assert "missing Method" in missing.inner_text()
    assert "1 complete source" not in missing.inner_text()  # the only source is incomplete
    page.fill("textarea[name=text]", REVIEW)
    page.click("#check-button")
    page.locator(".check-ok").wait_for()
    assert "2 sources" in page.locator(".check-ok").inner_text()
    page.click("#submit-delivery")
    page.wait_for_load_state()
    assert "Version 1 delivered." in page.content()
    assert DeliveryVersion.objects.count() == 1

    # The instructor opens the matrix, clicks the cell and grades with the rubric.
    prof_ctx = browser.new_context()
    prof_page = prof_ctx.new_page()
    login(prof_page, "prof", "pw-prof")
    prof_page.goto(base)
    cell = prof_page.locator('#matrix td[data-milestone="literature-review-1"] a')
    assert cell.inner_text() == "on time"
    cell.click()
    prof_page.fill('input[aria-label="Choice of sources"]', "5")  # over the maximum: refused
    prof_page.fill('input[aria-label="Summaries"]', "5")
    prof_page.evaluate("document.querySelector('#grade-form').noValidate = true")
    prof_page.click("#save-grade")
    assert "Choice of sources: 5 is more than the maximum of 4 points." in prof_page.locator("#grade-error").inner_text()
    assert not MilestoneGrade.objects.exists()
    prof_page.fill('input[aria-label="Choice of sources"]', "3.5")
    prof_page.fill("textarea[name=feedback]", "Clear summaries. **Add a recent paper** next time.")
    prof_page.click("#save-grade")
    assert "Graded “Attention Seekers”: 8.5/10." in prof_page.content()
    prof_page.goto(base)
    assert "graded 8.5/10" in prof_page.locator("#matrix").inner_text()

    # Both members see the grade and the feedback.
    alan_page.goto(base)
    alan_page.click("text=Literature review I")
    feedback = alan_page.locator("#feedback")
    assert "Grade: 8.5 / 10" in feedback.inner_text()
    assert feedback.locator("strong", has_text="Add a recent paper").count() == 1
    alan_ctx.close()
    prof_ctx.close()
