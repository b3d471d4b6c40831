"""Issue 11: each defect a new user met, checked in Debian's chromium (each failed on the old code)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BANK = r"""
[quiz]
title = "Long quiz"
slug = "long-quiz"
time_limit_minutes = 10
max_attempts = 1
review = "immediately"

[[question]]
id = "temp"
type = "numeric"
text = '''
The logits are $z = {{z:bmatrix}}$. With temperature $T = 2$, what is the first entry of $z/T$?
'''
answer = "z[0] / 2"
tolerance = 0.01
explanation = 'Divide the logits by $T$ first: $z/T = {{zt:bmatrix}}$, then take the softmax.'
[question.params]
z = { uniform = [1.0, 3.0], size = 3, round = 1 }
[question.let]
zt = "z / 2"
"""

FILLER = "\n".join(f"""
[[question]]
id = "tf{i}"
type = "truefalse"
text = "Statement number {i}: attention weights sum to one over the keys."
answer = true
""" for i in range(8))

CONTRAST_JS = """
(sel) => {
  const el = document.querySelector(sel);
  function rgb(s) { const m = s.match(/[\\d.]+/g).map(Number); return m.slice(0, 3); }
  function lum(c) { const v = c.map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
                    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; }
  let bg = null, node = el;
  while (node && !bg) { const b = getComputedStyle(node).backgroundColor;
    if (b && !b.startsWith("rgba(0, 0, 0, 0)") && b !== "transparent") bg = b; node = node.parentElement; }
  const a = lum(rgb(getComputedStyle(el).color)), b = lum(rgb(bg || "rgb(255,255,255)"));
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}
"""


@pytest.fixture
def quiz_world(live_server, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.contrib.auth import get_user_model

    from courseplatform.courses.models import Course, Membership
    from courseplatform.quizzes import bank
    from courseplatform.quizzes.sync import apply_bank

    course = Course.objects.create(slug="llms", title="Deep Dive into Large Language Models and Their Training")
    user = get_user_model().objects.create_user("stud", password="pw-stud-123", first_name="Stu")
    Membership.objects.create(course=course, user=user, role="student")
    quiz = apply_bank(course, bank.parse_bank(BANK + FILLER))["quiz_obj"]
    quiz.opens_at = timezone.now() - timedelta(minutes=5)
    quiz.closes_at = timezone.now() + timedelta(days=1)
    quiz.published = True
    quiz.save()
    return live_server, course, quiz, user


def test_timer_stays_visible_below_the_top_bar_and_explanation_math_is_typeset(quiz_world, page, login):
    server, course, quiz, user = quiz_world
    login(page, "stud", "pw-stud-123")
    page.goto(f"{server.url}/courses/llms/quizzes/{quiz.slug}/")
    page.get_by_test_id("start-quiz").click()
    page.wait_for_url(re.compile(r"/quizzes/attempt/\d+/$"))
    page.mouse.wheel(0, 1500)
    page.wait_for_timeout(300)
    timer = page.get_by_test_id("countdown").bounding_box()
    bar = page.locator(".topbar").bounding_box()
    # In the viewport, and not covered by the (sticky) top bar.
    assert timer["y"] >= 0
    assert timer["y"] >= bar["y"] + bar["height"] - 1, (timer, bar)
    top = page.evaluate("""() => { const r = document.querySelector("[data-testid=countdown]").getBoundingClientRect();
                                   const el = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                                   return !!el.closest("[data-testid=countdown]"); }""")
    assert top, "the countdown is covered by another element"

    page.once("dialog", lambda d: d.accept())
    page.get_by_test_id("submit-quiz").click()
    page.wait_for_url(re.compile(r"/result/$"))
    explanation = page.locator(".explanation").first
    explanation.locator(".katex").first.wait_for()
    assert "\\begin" not in explanation.inner_text() and "bmatrix" not in explanation.inner_text()
    assert explanation.locator(".katex").count() >= 2

    # A code answer on this page is a pre.code: its text must be readable (WCAG AA 4.5:1).
    page.evaluate("""() => { const p = document.createElement("pre"); p.className = "code"; p.id = "probe";
                             p.textContent = "def f(): return 1"; document.querySelector("#result-body").append(p); }""")
    assert page.evaluate(CONTRAST_JS, "#probe") >= 4.5


def test_course_title_is_shown_in_full_and_favicon_is_served(quiz_world, page, login, browser):
    server, course, quiz, user = quiz_world
    login(page, "stud", "pw-stud-123")
    for viewport in ({"width": 1280, "height": 900}, {"width": 390, "height": 844}):
        page.set_viewport_size(viewport)
        page.goto(f"{server.url}/courses/llms/")
        title = page.locator(".course-nav .course-title")
        assert title.inner_text().strip() == course.title
        assert page.evaluate("(el) => el.scrollWidth <= el.clientWidth + 1", title.element_handle())
        icon = page.evaluate("() => document.querySelector('link[rel~=icon]').href")
        assert page.request.get(icon).status == 200


def test_milestone_math_and_literature_review_message_are_rendered(live_server, page, login, make_user, settings,
                                                                  tmp_path):
    from courseplatform.courses.models import Course, Membership
    from courseplatform.projects.models import Group, GroupMember, Milestone

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path
    course = Course.objects.create(slug="llms", title="Deep Dive into LLMs")
    ada = make_user("ada")
    Membership.objects.create(course=course, user=ada, role="student")
    group = Group.objects.create(course=course, name="Team A")
    GroupMember.objects.create(course=course, group=group, user=ada)
    m = Milestone.objects.create(course=course, slug="lit", title="Literature review", due=timezone.now()
                                 + timedelta(days=2), deliverable="file", file_types="md", min_sources=2,
                                 instructions="Explain why attention costs $O(n^2)$ in the sequence length.")
    login(page, "ada", "pw-ada")
    page.goto(f"{live_server.url}/courses/llms/projects/milestones/{m.pk}/groups/{group.pk}/")
    instructions = page.locator(".instructions")
    instructions.locator(".katex").first.wait_for()
    assert "$O(n^2)$" not in instructions.inner_text()

    page.fill("textarea[name=text]", "## Source: Attention\n**Objective:** something short\n")
    page.locator("#submit-delivery").click()
    page.wait_for_load_state()
    error = page.locator("#delivery-error")
    assert "not complete yet" in error.inner_text()
    assert "`" not in error.inner_text(), error.inner_text()
    assert error.locator("code").count() >= 1
    for item in page.locator(".check-missing li").all():
        assert "`" not in item.inner_text()


@pytest.fixture
def demo(live_server, settings):
    import io

    from django.core.management import call_command

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("load_demo", stdout=io.StringIO())
    return live_server


def test_staff_gradebook_histogram_and_quiz_statistics(demo, page, login):
    from courseplatform.courses import demo_data
    from courseplatform.quizzes.models import Quiz
    from courseplatform.submissions.models import Assignment

    login(page, *demo_data.INSTRUCTOR[:2])
    base = f"{demo.url}/courses/llms"

    # Gradebook: the total is on screen, header and first column stay put, sort and search work.
    page.goto(f"{base}/gradebook/")
    total = page.locator("#gradebook thead th.total")
    assert total.bounding_box()["x"] + total.bounding_box()["width"] <= 1280
    wrap = page.locator(".gradebook-wrap")
    head_before = page.locator("#gradebook thead th").first.bounding_box()
    name_before = page.locator("#gradebook tbody th").first.bounding_box()
    wrap.evaluate("(el) => { el.scrollTop = 400; el.scrollLeft = 600; }")
    page.wait_for_timeout(100)
    head_after = page.locator("#gradebook thead th").nth(2).bounding_box()
    assert abs(head_after["y"] - head_before["y"]) < 2, "the header scrolled away"
    first_visible = page.evaluate("""() => { const w = document.querySelector('.gradebook-wrap').getBoundingClientRect();
        const el = document.elementFromPoint(w.left + 20, w.top + w.height / 2); return !!el.closest('tbody th'); }""")
    assert first_visible and name_before["x"] >= 0, "the student column scrolled away"
    wrap.evaluate("(el) => { el.scrollTop = 0; el.scrollLeft = 0; }")
    total.click()
    values = [t.strip() for t in page.locator("#gradebook tbody td.total").all_inner_texts()]
    numbers = [float(v) for v in values if v not in ("–", "")]
    assert numbers == sorted(numbers) and all(v in ("–", "") for v in values[len(numbers):])
    total.click()
    numbers = [float(v) for v in page.locator("#gradebook tbody td.total").all_inner_texts() if v.strip() not in ("–", "")]
    assert numbers == sorted(numbers, reverse=True)
    student = demo_data.STUDENTS[2]
    page.fill("#gradebook-search", student[0])
    visible = page.locator("#gradebook tbody tr:not([hidden])")
    assert visible.count() == 1 and student[2].lower() in visible.inner_text().lower()

    # Histogram: ranges on the x axis, full marks in their own bar, whole-number y ticks at one step.
    assignment = Assignment.objects.order_by("pk").first()
    page.goto(f"{base}/assignments/{assignment.slug}/staff/")
    labels = page.locator("svg.histogram text.x-label").all_text_contents()
    assert labels[0].startswith("0–") and labels[-1] == f"{assignment.points:g}", labels
    assert all("–" in label for label in labels[:-1])
    ticks = [int(t) for t in page.locator("svg.histogram text.y-tick").all_text_contents()]
    steps = {b - a for a, b in zip(ticks, ticks[1:])}
    assert ticks[0] == 0 and len(steps) == 1, ticks
    bars = page.locator("svg.histogram rect.bar")
    assert max(int(b.get_attribute("data-count")) for b in bars.all()) <= ticks[-1]

    # Quiz statistics: parameterised questions show an example, never their template.
    for quiz in Quiz.objects.all():
        page.goto(f"{base}/quizzes/{quiz.slug}/stats/")
        text = page.locator("main").inner_text()
        assert "{{" not in text and "}}" not in text and "bmatrix" not in text, quiz.slug
        assert not re.search(r"\b(\w+)\s*=\s*\1\b", text.replace("\n", " ")), "a template like k=k was shown"


CODE_BANK = r"""
[quiz]
title = "Code quiz"
slug = "code-quiz"
time_limit_minutes = 10
max_attempts = 1
review = "immediately"

[[question]]
id = "softmax"
type = "code"
points = 3
pack = "code/stable_softmax"
filename = "softmax.py"
text = "Write a stable softmax."
"""


def test_code_question_has_a_python_editor_that_autosaves(live_server, page, login, settings, monkeypatch):
    from django.contrib.auth import get_user_model

    from courseplatform.courses.models import Course, Membership
    from courseplatform.quizzes import bank
    from courseplatform.quizzes.models import AttemptQuestion
    from courseplatform.quizzes.sync import apply_bank

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    course = Course.objects.create(slug="llms", title="Deep Dive into LLMs")
    user = get_user_model().objects.create_user("coder", password="pw-coder-123")
    Membership.objects.create(course=course, user=user, role="student")
    quiz = apply_bank(course, bank.parse_bank(CODE_BANK))["quiz_obj"]
    quiz.opens_at, quiz.closes_at, quiz.published = timezone.now() - timedelta(minutes=5), None, True
    quiz.save()
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    login(page, "coder", "pw-coder-123")
    page.goto(f"{live_server.url}/courses/llms/quizzes/{quiz.slug}/")
    page.get_by_test_id("start-quiz").click()
    page.wait_for_url(re.compile(r"/quizzes/attempt/\d+/$"))
    editor = page.locator(".cm-editor .cm-content")
    editor.wait_for()
    assert editor.get_attribute("aria-label").startswith("Your code for question 1")
    assert page.locator("textarea.code").is_hidden()
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.type("import numpy as np\ndef softmax(x):\nreturn np.exp(x) / np.exp(x).sum()\n")
    assert not refused, refused
    # Python mode: the keyword "def" is highlighted (a styled token), and Enter indented the body.
    keyword = page.locator(".cm-line span", has_text="def").first
    assert keyword.evaluate("(el) => getComputedStyle(el).color") != editor.evaluate(
        "(el) => getComputedStyle(el).color")
    item = AttemptQuestion.objects.get(attempt__student=user)
    page.locator(f"#status-{item.pk}").get_by_text("Saved").wait_for()
    item.refresh_from_db()
    assert "def softmax(x):\n    return np.exp(x)" in item.response["code"]

    # "Check": the visible tests run on the code in the editor; the attempt stays open, nothing is scored.
    from courseplatform.quizzes import tasks

    monkeypatch.setattr(tasks.run_code_check, "apply_async", lambda args, queue: tasks.run_code_check.apply(args=args))
    page.get_by_test_id("check-code").click()
    summary = page.get_by_test_id("check-summary")
    summary.wait_for(timeout=60_000)
    assert re.search(r"Check: \d+ of \d+ visible tests? passed", summary.inner_text())
    item.refresh_from_db()
    assert item.attempt.state == "open" and item.score is None
    assert not refused, refused
