"""The browser harness itself: waiting never depends on evaluating strings inside the page, which
the site's CSP (no 'unsafe-eval') forbids; such a wait passes on a warm server and fails on a cold
one, the first run after a clone (issue 21)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_wait_for_function_is_refused_on_every_page(live_server, page, browser):
    page.goto(live_server.url + "/accounts/login/")
    with pytest.raises(AssertionError, match="new Function"):
        page.wait_for_function("document.readyState === 'complete'")
    own = browser.new_context()  # a test's own context is guarded too
    try:
        with pytest.raises(AssertionError, match="unsafe-eval"):
            own.new_page().wait_for_function("() => true")
    finally:
        own.close()


def test_locator_waits_work_under_the_sites_csp(live_server, page):
    """What the suite waits with instead: locator assertions poll without compiling strings in the page."""
    response = page.goto(live_server.url + "/accounts/login/")
    assert "unsafe-eval" not in response.headers.get("content-security-policy", "unsafe-eval-missing-header")
    username = page.locator("input[name=username]")
    expect(username).to_have_js_property("disabled", False)
    page.fill("input[name=username]", "someone")
    expect(username).to_have_js_property("value", "someone")
