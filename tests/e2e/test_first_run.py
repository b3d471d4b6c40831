"""Issue 11, first run and logs, in Chromium: /favicon.ico is the site's icon (no 404 on every page),
and the API docs (django-ninja's Swagger page at /api/docs) work under the site's
Content-Security-Policy: no CSP violation, and the operations are listed."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CSP_VIOLATIONS = """(() => { window.__csp = [];
  document.addEventListener("securitypolicyviolation",
    (e) => window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || ""))); })();"""


def test_favicon_ico_is_the_sites_icon(live_server, page):
    response = page.request.get(live_server.url + "/favicon.ico")  # follows the redirect
    assert response.status == 200
    assert response.url.endswith(".svg") and b"<svg" in response.body()
    failed = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto(live_server.url + "/accounts/login/")
    page.wait_for_load_state("networkidle")
    assert failed == []


def test_api_docs_work_under_the_content_security_policy(live_server, page):
    violations, errors = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(CSP_VIOLATIONS)
    response = page.goto(live_server.url + "/api/docs")
    assert response.status == 200 and "default-src 'self'" in response.headers["content-security-policy"]
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() >= 5
    assert "/api/courses/{course}/assignments" in page.inner_text("#swagger-ui")
    page.locator(".opblock-summary").first.click()  # expanding an operation works (scripted, styled)
    page.locator(".opblock-body").first.wait_for()
    violations = page.evaluate("() => window.__csp")
    assert violations == [], violations
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def test_fresh_demo_has_the_flagship_open_and_a_leaderboard(live_server, page, login, settings):
    """As a new user after `make run` on any day: the attention assignment takes a submission (not past
    its cut-off) and is due within the week; the bert_finetune leaderboard has a row."""
    import io
    import re
    from datetime import datetime, timedelta

    from django.core.management import call_command
    from django.utils import timezone

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("load_demo", stdout=io.StringIO())
    login(page, "student8", "student8-demo")
    page.goto(live_server.url + "/courses/llms/assignments/attention/")
    assert page.locator("#upload-form").is_visible()
    assert page.locator(".submit-closed").count() == 0
    deadline = page.locator("dd.deadline").inner_text()
    shown = datetime.strptime(re.match(r"\w{3} (\d\d\.\d\d\.\d{4} \d\d:\d\d)", deadline).group(1), "%d.%m.%Y %H:%M")
    now = timezone.localtime(timezone.now()).replace(tzinfo=None)
    assert now < shown < now + timedelta(days=7), deadline
    page.goto(live_server.url + "/courses/llms/assignments/bert_finetune/leaderboard/")
    rows = page.locator("table.leaderboard tbody tr")
    assert rows.count() >= 1 and "No graded submission" not in rows.first.inner_text()
