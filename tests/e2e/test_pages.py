"""Every main page of the demo course, as a student on a 390 px phone and as staff on a 1280 px
laptop: no horizontal page overflow, nothing that carries text clipped, no serious or critical
axe-core violation (axe-core comes from frontend/node_modules, installed from the npm registry by
`npm ci --prefix frontend`; never a CDN), and a screenshot of each page for review under
var/screenshots/<width>/ (or $E2E_SCREENSHOTS)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from courseplatform.courses import demo_data

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 900}

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
  // A card whose content sticks out of it (a wide table drawn across the card's border).
  for (const card of document.querySelectorAll(".card")) {
    const cs = getComputedStyle(card);
    if (cs.overflowX === "visible" && card.scrollWidth > card.clientWidth + 1) {
      out.push("content wider than its card: " + (card.querySelector("h1, h2, h3")?.innerText || card.className));
    }
  }
  return out;
}
"""


def screenshot_dir(width: int) -> Path:
    folder = Path(os.environ.get("E2E_SCREENSHOTS") or ROOT / "var" / "screenshots") / str(width)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_page(page, url: str, name: str, width: int) -> list[str]:
    """Problems found on one page (empty when it is fine)."""
    refused = []
    listener = lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None  # noqa: E731
    page.on("console", listener)
    response = page.goto(url)
    page.wait_for_load_state("load")
    problems = []
    if response is None or response.status >= 400:
        return [f"{name}: HTTP {response.status if response else '?'} for {url}"]
    page.screenshot(path=str(screenshot_dir(width) / f"{name}.png"), full_page=True)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 1:
        problems.append(f"{name}: the page is {overflow} px wider than the {width} px screen")
    for clipped in page.evaluate(CLIPPED_JS):
        problems.append(f"{name}: clipped text in {clipped}")
    # Through the DevTools protocol (page.evaluate), which the page's CSP does not govern: an injected
    # <script> tag would be refused, as it should be.
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    violations = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ["violations"]});
          return r.violations.filter(v => ["serious", "critical"].includes(v.impact))
                   .map(v => v.id + " (" + v.impact + "): " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
        }"""
    )
    problems += [f"{name}: axe {v}" for v in violations]
    page.remove_listener("console", listener)
    if response.headers.get("content-security-policy", "").find("script-src 'self'") < 0:
        problems.append(f"{name}: no Content-Security-Policy with script-src 'self'")
    problems += [f"{name}: CSP refused: {text[:160]}" for text in refused]
    return problems


@pytest.fixture
def demo(live_server, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("load_demo", stdout=io.StringIO())
    return live_server


def _urls(role: str) -> list[tuple[str, str]]:
    from courseplatform.courses.models import Course
    from courseplatform.projects.models import Milestone
    from courseplatform.quizzes.models import Quiz
    from courseplatform.submissions.models import Assignment

    course = Course.objects.get(slug=demo_data.COURSE["slug"])
    c = f"/courses/{course.slug}"
    urls = [("dashboard", f"{c}/"), ("assignments", f"{c}/assignments/"), ("quizzes", f"{c}/quizzes/"),
            ("projects", f"{c}/projects/"), ("gradebook", f"{c}/gradebook/"), ("api-token", "/api/profile/")]
    assignment = Assignment.objects.filter(course=course).order_by("pk").first()
    if assignment:
        urls.append(("assignment", f"{c}/assignments/{assignment.slug}/"))
    ranked = Assignment.objects.filter(course=course).exclude(leaderboard_metric="").order_by("pk").first()
    if ranked:
        urls.append(("leaderboard", f"{c}/assignments/{ranked.slug}/leaderboard/"))
    quiz = Quiz.objects.filter(course=course).order_by("pk").first()
    if quiz:
        urls.append(("quiz", f"{c}/quizzes/{quiz.slug}/"))
    milestone = Milestone.objects.filter(course=course).order_by("pk").first()
    if milestone:
        urls.append(("milestone", f"{c}/projects/milestones/{milestone.pk}/"))
    if role == "staff":
        urls += [("roster", f"{c}/roster/"), ("sessions", f"{c}/sessions/"), ("attendance", f"{c}/attendance/"),
                 ("project-groups", f"{c}/projects/groups/"), ("settings", f"{c}/settings/")]
        if assignment:
            urls.append(("assignment-staff", f"{c}/assignments/{assignment.slug}/staff/"))
        if quiz:
            urls += [("quiz-stats", f"{c}/quizzes/{quiz.slug}/stats/"),
                     ("quiz-attempts", f"{c}/quizzes/{quiz.slug}/attempts/")]
    return urls


def test_student_pages_work_on_a_phone(demo, browser, login):
    assert AXE.is_file(), "run `npm ci --prefix frontend` (axe-core from the npm registry)"
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    user, password = demo_data.STUDENTS[0][:2]
    login(page, user, password)
    problems = []
    for name, path in _urls("student"):
        problems += check_page(page, demo.url + path, f"student-{name}", PHONE["width"])
    context.close()
    assert not problems, "\n".join(problems)


def test_staff_pages_work_on_a_laptop(demo, browser, login):
    context = browser.new_context(viewport=LAPTOP)
    context.set_default_timeout(20_000)
    page = context.new_page()
    user, password = demo_data.INSTRUCTOR[:2]
    login(page, user, password)
    problems = []
    for name, path in _urls("staff"):
        problems += check_page(page, demo.url + path, f"staff-{name}", LAPTOP["width"])
    context.close()
    assert not problems, "\n".join(problems)


def test_login_page_passes_axe_at_both_widths(live_server, browser):
    problems = []
    for viewport in (PHONE, LAPTOP):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        problems += check_page(page, live_server.url + "/accounts/login/", "login", viewport["width"])
        context.close()
    assert not problems, "\n".join(problems)
