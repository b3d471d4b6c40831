"""The demo logins work in a real browser: instructor and student each see their dashboard."""
from __future__ import annotations

import io
import os

import pytest
from django.core.management import call_command

from courseplatform.courses import demo_data

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(live_server, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("load_demo", stdout=io.StringIO())
    return live_server


def shot(page, name):
    folder = os.environ.get("E2E_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def test_demo_instructor_and_student_log_in(demo, page, login):
    base = demo.url
    # a wrong password is refused with a message
    login(page, "instructor", "wrong-password")
    assert "/accounts/login/" in page.url
    assert page.get_by_text("Please enter a correct username and password").is_visible()

    # instructor: lands on the instructor dashboard, sees the flagged student
    user, password = demo_data.INSTRUCTOR[:2]
    login(page, user, password)
    assert page.url == f"{base}/courses/llms/"
    assert page.locator("h1").first.inner_text() == "Deep Dive into LLMs"
    assert page.get_by_text("Instructor dashboard").first.is_visible()
    flags = page.locator("[data-testid=absence-flags]")
    assert "1 student over the absence allowance" in flags.inner_text()
    assert "Edsger Dijkstra" in page.locator(".flag-list").inner_text()
    assert page.locator(".course-nav").get_by_role("link", name="Roster", exact=True).is_visible()
    shot(page, "dashboard-instructor")
    page.locator(".course-nav").get_by_role("link", name="Roster", exact=True).click()
    page.wait_for_load_state()
    assert page.locator("[data-testid=students] tbody tr").count() == len(demo_data.STUDENTS)
    shot(page, "roster")
    page.get_by_test_id("logout").click()
    page.wait_for_load_state()
    assert "/accounts/login/" in page.url

    # student: own dashboard, own absences, no staff links
    user, password = demo_data.STUDENTS[7][:2]
    login(page, user, password)
    assert page.url == f"{base}/courses/llms/"
    assert page.get_by_role("heading", name="My attendance").is_visible()
    assert page.get_by_test_id("my-absences").inner_text().startswith("3")
    assert page.locator(".course-nav").get_by_role("link", name="Roster", exact=True).count() == 0
    assert page.get_by_text("Instructor dashboard").count() == 0
    shot(page, "dashboard-student")
    # the instructor pages are refused
    page.goto(f"{base}/courses/llms/roster/")
    assert page.get_by_role("heading", name="Not allowed").is_visible()
    page.goto(f"{base}/courses/llms/")
    page.get_by_test_id("logout").click()
    page.wait_for_load_state()
    assert "/accounts/login/" in page.url
    page.goto(f"{base}/courses/llms/")
    assert "/accounts/login/" in page.url  # logged out for real
