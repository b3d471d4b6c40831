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
