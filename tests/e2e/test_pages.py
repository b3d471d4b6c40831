"""A scripted walk of every page of the demo course, as each role (student, TA, instructor), on a
390 px phone and a 1280 px laptop (issue 28).

The pages come from the URL resolver (every course route a role can GET, with the demo's objects:
every assignment, every quiz, an open attempt with a code question, a result, a milestone, a
delivery, a session...), plus the site's own pages (home, API token page, /api/docs). On each page:

- overflow by element: every visible element's right edge must lie inside the viewport, unless the
  element sits in a box that scrolls horizontally (code and tables may scroll inside their own box;
  text, buttons and the page never do); the page's own width is reported too;
- important controls (primary buttons, `.must-see` cells such as a quiz's Start or the gradebook's
  points) must be visible without scrolling any box;
- no text clipped by an overflow:hidden box or an ellipsis;
- no console error, no uncaught exception, no Content-Security-Policy violation, and a CSP header;
- no serious or critical axe-core violation (axe-core comes from frontend/node_modules, installed
  from the npm registry by `npm ci --prefix frontend`; never a CDN) on the student's phone walk and
  the instructor's laptop walk.

The widths found are written to var/screenshots/widths-<role>.txt; with E2E_SCREENSHOTS=<folder>
set, they go there, with a full-page screenshot of each page under <folder>/<width>/ for review.
"""
from __future__ import annotations

import io
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from courseplatform.courses import demo_data

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 900}

# Every element's box against the viewport and against the boxes that scroll it.
LAYOUT_JS = """
() => {
  const vw = document.documentElement.clientWidth;
  const name = el => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    else if (el.className && typeof el.className === "string") s += "." + el.className.trim().split(/\\s+/).slice(0, 2).join(".");
    const text = (el.innerText || el.value || "").trim().replace(/\\s+/g, " ").slice(0, 40);
    return text ? s + " \\"" + text + "\\"" : s;
  };
  const scrollBoxes = el => {
    const out = [];
    for (let p = el.parentElement; p && p !== document.body && p !== document.documentElement; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === "auto" || o === "scroll") out.push(p);
    }
    return out;
  };
  const overflow = [], hidden = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest("script, style, template, .sr-only, [aria-hidden=true], [hidden]")) continue;
    const cs = getComputedStyle(el);
    if (cs.display === "none" || cs.visibility === "hidden" || cs.position === "fixed") continue;
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    const boxes = scrollBoxes(el);
    if ((r.right > vw + 1 || r.left < -1) && !boxes.length) {
      overflow.push(name(el) + ": right edge " + Math.round(r.right) + " px");
    }
    if (el.matches(".btn-primary, .must-see, button[type=submit].btn-primary")) {
      for (const b of boxes) {
        const br = b.getBoundingClientRect();
        if (r.right > Math.min(br.right, vw) + 1 || r.left < Math.max(br.left, 0) - 1) {
          hidden.push(name(el) + " (inside " + name(b).slice(0, 40) + ", right edge " + Math.round(r.right) + " px)");
          break;
        }
      }
    }
  }
  // Keep the report short: an element whose parent already sticks out says nothing new.
  return {width: document.documentElement.scrollWidth, overflow: overflow.slice(0, 12), hidden: hidden.slice(0, 12),
          n_overflow: overflow.length};
}
"""

# Elements that hide overflowing text (overflow hidden/clip, or an ellipsis) while their content
# is wider than their box: the reader loses information. Scroll containers are fine.
CLIPPED_JS = """
() => {
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const cs = getComputedStyle(el);
    if (cs.display === "none" || cs.visibility === "hidden") continue;
    if (el.closest(".katex, .sr-only, [aria-hidden=true]")) continue;
    const hides = ["hidden", "clip"].includes(cs.overflowX) || cs.textOverflow === "ellipsis";
    if (hides && el.scrollWidth > el.clientWidth + 1 && (el.innerText || "").trim()) {
      out.push(el.tagName.toLowerCase() + (el.className ? "." + String(el.className).replace(/ +/g, ".") : "")
               + ": " + el.innerText.trim().slice(0, 60));
    }
  }
  return out;
}
"""

# CodeMirror's scroller holds the editor's contenteditable content, which Tab reaches and whose
# arrow keys scroll it; axe does not count contenteditable as focusable and flags the scroller.
AXE_JS = """async () => {
  const options = {resultTypes: ["violations"]};
  if (document.querySelector(".cm-editor")) options.rules = {"scrollable-region-focusable": {enabled: false}};
  const r = await axe.run(document, options);
  return r.violations.filter(v => ["serious", "critical"].includes(v.impact))
           .map(v => v.id + " (" + v.impact + "): " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
}"""


def report_dir() -> Path:
    folder = Path(os.environ.get("E2E_SCREENSHOTS") or ROOT / "var" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_page(page, url: str, name: str, width: int, axe: bool = True, widths: dict | None = None) -> list[str]:
    """Problems found on one page (empty when it is fine)."""
    errors: list[str] = []

    def on_console(msg):
        if msg.type == "error" or "Content Security Policy" in msg.text:
            errors.append(("CSP refused: " if "Content Security Policy" in msg.text else "console error: ") + msg.text[:200])

    def on_pageerror(exc):
        errors.append(f"uncaught exception: {str(exc)[:200]}")

    page.on("console", on_console)
    page.on("pageerror", on_pageerror)
    try:
        response = page.goto(url)
        page.wait_for_load_state("load")
        if response is None or response.status >= 400:
            return [f"{name}: HTTP {response.status if response else '?'} for {url}"]
        problems = []
        if os.environ.get("E2E_SCREENSHOTS"):  # for review; full-page screenshots are slow on a busy machine
            folder = report_dir() / str(width)
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
        layout = page.evaluate(LAYOUT_JS)
        if widths is not None:
            widths[name] = layout["width"]
        if layout["width"] > width + 1:
            problems.append(f"{name}: the page is {layout['width']} px wide on a {width} px screen")
        if layout["overflow"]:
            problems.append(f"{name}: {layout['n_overflow']} element(s) past the {width} px screen's right edge, "
                            f"outside any scroll box: " + "; ".join(layout["overflow"]))
        problems += [f"{name}: hidden inside a scroll box: {h}" for h in layout["hidden"]]
        problems += [f"{name}: clipped text in {c}" for c in page.evaluate(CLIPPED_JS)]
        if axe:
            # Through the DevTools protocol (page.evaluate), which the page's CSP does not govern: an
            # injected <script> tag would be refused, as it should be.
            page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
            problems += [f"{name}: axe {v}" for v in page.evaluate(AXE_JS)]
        if response.headers.get("content-security-policy", "").find("script-src 'self'") < 0:
            problems.append(f"{name}: no Content-Security-Policy with script-src 'self'")
        problems += [f"{name}: {e}" for e in errors]
        return problems
    finally:
        page.remove_listener("console", on_console)
        page.remove_listener("pageerror", on_pageerror)


@pytest.fixture
def demo(live_server, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("load_demo", stdout=io.StringIO())
    return live_server


# Downloads, fragments and frame documents: not pages (each has its own tests). A frame document
# served under a CSP `sandbox` without scripts (a notebook, a delivered file) has no script context
# for the walk's checks to run in; the page that frames it is walked.
NOT_PAGES = {
    "submissions:file", "submissions:artifact", "submissions:artifact_image", "submissions:notebook_frame",
    "projects:version_inline", "similarity:status",
    "submissions:starter", "submissions:export", "submissions:status", "gradebook:export", "courses:enrol_links_csv",
    "courses:enrol_template", "projects:download", "projects:review_template", "quizzes:check_status",
}


def _open_code_attempt(course, student):
    """A quiz with a code question, opened now, and the student's attempt at it (the attempt page)."""
    from courseplatform.quizzes import services
    from courseplatform.quizzes.models import Quiz

    quiz = Quiz.objects.filter(course=course, questions__kind="code").distinct().order_by("pk").first()
    if quiz is None:
        return None
    now = timezone.now()
    quiz.published = True
    quiz.opens_at, quiz.closes_at = now - timedelta(hours=1), now + timedelta(days=2)
    quiz.max_attempts = 0
    quiz.time_limit_minutes = None  # open for the whole walk, however slow the machine
    quiz.save()
    return services.start_attempt(quiz, student)


def walk_urls(role: str) -> list[tuple[str, str]]:
    """(name, url) of every page this role can open, filled with the demo's objects."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from security.routes import course_routes, post_only

    from courseplatform.courses.models import Course, LectureSession, Membership
    from courseplatform.projects.models import DeliveryVersion, Group, GroupMember, Milestone
    from courseplatform.quizzes.models import Attempt, Quiz
    from courseplatform.submissions.models import Assignment, Submission

    course = Course.objects.get(slug=demo_data.COURSE["slug"])
    student = Membership.objects.filter(course=course, role="student").order_by("user__username").first().user
    assignments = list(Assignment.objects.filter(course=course).order_by("pk"))
    quizzes = list(Quiz.objects.filter(course=course).order_by("pk"))
    attempt = _open_code_attempt(course, student)
    closed = Attempt.objects.filter(quiz__course=course, student=student).exclude(pk=getattr(attempt, "pk", None)).first()
    sub = Submission.objects.filter(assignment__course=course, student=student).order_by("-pk").first()
    member = GroupMember.objects.filter(course=course, user=student).select_related("group").first()
    group = member.group if member else Group.objects.filter(course=course).first()
    milestone = Milestone.objects.filter(course=course).order_by("due").first()
    version = DeliveryVersion.objects.filter(delivery__group=group).first()
    values = {
        "course_slug": [course.slug], "slug": [a.slug for a in assignments], "quiz_slug": [q.slug for q in quizzes],
        "pk": {"submissions": [sub.pk] if sub else [], "projects": [milestone.pk]},
        "attempt_id": [a.pk for a in (attempt, closed) if a], "group_id": [group.pk] if group else [],
        "user_id": [student.pk], "member_id": [Membership.objects.get(course=course, user=student).pk],
        "session_id": [LectureSession.objects.filter(course=course).order_by("date").first().pk],
        "question_id": [quizzes[0].questions.order_by("pk").first().pk] if quizzes else [],
        "version_id": [version.pk] if version else [], "index": [0], "kind": ["py"],
    }
    urls: list[tuple[str, str]] = []
    for route in course_routes():
        if post_only(route.callback) or str(route) in NOT_PAGES:
            continue
        combos = [{}]
        for arg in route.args:
            options = values.get(arg, [])
            if isinstance(options, dict):
                options = options.get(route.namespace, [])
            # Every assignment's and every quiz's own page; one of each for the rest.
            many = (arg == "slug" and str(route) == "submissions:detail") or (
                arg == "quiz_slug" and str(route) == "quizzes:detail") or arg == "attempt_id"
            options = options if many else options[:1]
            combos = [{**c, arg: v} for c in combos for v in options]
        for kw in combos:
            label = str(route).replace(":", "-") + "".join(f"-{v}" for k, v in kw.items() if k != "course_slug")
            urls.append((label, reverse(str(route), kwargs=kw)))
    urls += [("home", "/"), ("api-token", "/api/profile/"), ("api-docs", "/api/docs"),
             ("password-change", "/accounts/password_change/")]
    return urls


USERS = {"student": demo_data.STUDENTS[0], "ta": demo_data.TA, "instructor": demo_data.INSTRUCTOR}


def walk(demo, browser, login, role: str) -> list[str]:
    """Every page of one role at both widths: the problems found (widths written to the report)."""
    urls = walk_urls(role)
    problems, visited, widths = [], {}, {}
    if len(urls) < (20 if role == "student" else 40):
        problems.append(f"{role}: only {len(urls)} URLs found")
    for viewport in (PHONE, LAPTOP):
        context = browser.new_context(viewport=viewport, **({"is_mobile": True, "has_touch": True}
                                                            if viewport is PHONE else {}))
        context.set_default_timeout(30_000)
        page = context.new_page()
        login(page, USERS[role][0], USERS[role][1])
        w = viewport["width"]
        axe = (role, w) in (("student", 390), ("instructor", 1280))  # not on /api/docs: ninja's Swagger UI, not our markup
        seen = widths.setdefault(w, {})
        for name, path in urls:
            response = page.request.get(demo.url + path, max_redirects=0)
            if response.status >= 500:
                problems.append(f"{role}-{name}: HTTP {response.status} for {path}")
            if response.status != 200 or "text/html" not in response.headers.get("content-type", ""):
                continue  # not a page of this role, or not a page (the route suite checks the refusals)
            csp = response.headers.get("content-security-policy", "")
            if re.search(r"(^|;)\s*sandbox\b", csp) and "allow-scripts" not in csp:
                continue  # a frame document without scripts: no context to check in (its page is walked)
            try:
                problems += check_page(page, demo.url + path, f"{role}-{name}", w, axe=axe and name != "api-docs",
                                       widths=seen)
            except Exception as exc:  # noqa: BLE001 - one page's failure is reported with the others
                problems.append(f"{role}-{name}: {type(exc).__name__}: {str(exc)[:300]}")
        visited[w] = len(seen)
        context.close()
    report = report_dir() / f"widths-{role}.txt"
    report.write_text("".join(f"{w}\t{name}\t{px}\n" for w, pages in widths.items() for name, px in pages.items()))
    if visited[390] < (15 if role == "student" else 30) or visited[390] != visited[1280]:
        problems.append(f"{role}: pages walked per width: {visited}")
    return problems


@pytest.mark.timeout(3600)  # one demo course for the three walks: about 200 page loads
def test_walk_every_page_as_each_role_at_390_and_1280_px(demo, browser, login):
    assert AXE.is_file(), "run `npm ci --prefix frontend` (axe-core from the npm registry)"
    roles = [r for r in ("student", "ta", "instructor") if r in os.environ.get("E2E_WALK_ROLES", "student,ta,instructor")]
    problems = []
    for role in roles:
        problems += walk(demo, browser, login, role)
    assert not problems, "\n".join(problems)


def test_login_page_passes_at_both_widths(live_server, browser):
    problems = []
    for viewport in (PHONE, LAPTOP):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        problems += check_page(page, live_server.url + "/accounts/login/", "login", viewport["width"])
        context.close()
    assert not problems, "\n".join(problems)
