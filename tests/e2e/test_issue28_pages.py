"""Issue 28 (items 4 and 9), in Debian's chromium at 1280 px: the assignment Check's card is laid out
like the attempts' feedback (not in the sidebar), a jump to #submission-N keeps the card's header
below the sticky bar, and a new API token stays inside its box and survives no reload twice."""
from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "assignments" / "attention"

LONG_MESSAGE = ("The output has shape (2, 4, 8) but the reference has shape (2, 4, 16): check that the "
                "weights are multiplied with V and not with K, and that the softmax runs over the last axis. ") * 3


class _Sent:
    id = ""


@pytest.fixture
def assignment_world(live_server, settings, make_user, monkeypatch):
    from courseplatform.courses.models import Course, Membership
    from courseplatform.submissions import dispatch
    from courseplatform.submissions.sync import sync_pack

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    course = Course.objects.create(slug="llms", title="Deep Dive into LLMs")
    student = make_user("alice")
    Membership.objects.create(course=course, user=student, role="student")
    assignment, _ = sync_pack(course, PACK)
    sent = []
    # No worker: the test writes the result itself, as a worker would.
    monkeypatch.setattr(dispatch, "send", lambda name, args, queue: sent.append(args) or _Sent())
    return live_server, course, assignment, student, sent


def _graded(sub_id: int):
    from courseplatform.submissions.models import Submission

    Submission.objects.filter(pk=sub_id).update(
        state="graded", score=2, raw_score=2, max_score=4, message="Graded on the visible tests.",
        result={"status": "graded", "score": 2, "max_score": 4, "tests": [
            {"name": "shapes_and_weights_sum_to_one", "score": 2, "max_score": 2, "status": "passed", "message": "Passed."},
            {"name": "matches_reference_on_random_inputs", "score": 0, "max_score": 2, "status": "failed",
             "message": LONG_MESSAGE}]})


def test_check_result_is_shown_with_the_attempts_at_full_width(assignment_world, page, login, tmp_path):
    from courseplatform.submissions.models import Submission

    server, course, assignment, student, sent = assignment_world
    login(page, "alice", "pw-alice")
    page.goto(f"{server.url}/courses/llms/assignments/{assignment.slug}/")
    source = tmp_path / "attention.py"
    source.write_bytes((PACK / "reference.py").read_bytes())
    page.set_input_files("#id_file", str(source))
    page.click("#check-btn")
    card = page.locator("#check-result article.submission")
    card.wait_for()
    sub = Submission.objects.get(via="check")
    _graded(sub.pk)
    page.locator("#check-result article[data-state=graded]").wait_for()

    assert card.evaluate("(el) => !el.closest('.side') && !!el.closest('section.attempts')")
    attempts = page.locator("section.attempts").bounding_box()
    box = card.bounding_box()
    side = page.locator("aside.side").bounding_box()
    # As wide as the attempts' column (the page's full width), far wider than the 340 px sidebar.
    assert box["width"] >= 0.95 * attempts["width"] and box["width"] > side["width"] + 300, (box, attempts, side)
    message = card.locator(".test-message").first.bounding_box()
    assert message["width"] > 500 and message["height"] < 200, message  # readable lines, not a word per line

    # A real attempt's card has the same layout and width.
    page.set_input_files("#id_file", str(source))
    page.click("#submit-btn")
    page.wait_for_load_state()
    attempt = Submission.objects.exclude(via="check").get()
    _graded(attempt.pk)
    page.goto(f"{server.url}/courses/llms/assignments/{assignment.slug}/#submission-{attempt.pk}")
    target = page.locator(f"#submission-{attempt.pk}[data-state=graded]")
    target.wait_for()
    width = target.evaluate("(el) => el.getBoundingClientRect().width")
    assert abs(width - box["width"]) < 2, (width, box)


def test_jump_to_a_submission_keeps_its_header_below_the_sticky_bar(assignment_world, page, login):
    from courseplatform.submissions.models import Submission

    server, course, assignment, student, sent = assignment_world
    subs = []
    for n in range(1, 11):
        subs.append(Submission.objects.create(assignment=assignment, student=student, attempt=n, sha256="0" * 64,
                                              blob="x", original_name="attention.py", kind="py", size=10))
        _graded(subs[-1].pk)
    login(page, "alice", "pw-alice")
    # The third card from the top (newest first): enough page below it for the jump to bring it to the top.
    target = subs[-3]
    page.goto(f"{server.url}/courses/llms/assignments/{assignment.slug}/#submission-{target.pk}")
    header = page.locator(f"#submission-{target.pk} .submission-head")
    header.wait_for()
    bar = page.locator(".topbar").bounding_box()
    head = header.bounding_box()
    assert page.evaluate("() => window.scrollY") > 0
    card = page.locator(f"#submission-{target.pk}").bounding_box()
    assert card["y"] < 200, card  # the jump brought the card up to the top of the window
    assert head["y"] >= bar["y"] + bar["height"] - 1, (head, bar)


def test_new_api_token_fits_its_box_and_a_reload_creates_no_second(live_server, page, login, make_user, settings):
    from courseplatform.submissions.models import ApiToken

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = make_user("alice")
    login(page, "alice", "pw-alice")
    page.goto(f"{live_server.url}/api/profile/")
    page.get_by_role("button", name="Create a token").click()
    page.wait_for_load_state()
    field = page.locator("#new-token")
    field.wait_for()
    key = field.input_value()
    assert key.startswith("cp_") and len(key) >= 50
    assert ApiToken.authenticate(key) == user
    card = page.locator("#new-token").locator("xpath=ancestor::section[1]").bounding_box()
    box = field.bounding_box()
    assert box["x"] >= card["x"] and box["x"] + box["width"] <= card["x"] + card["width"] + 0.5, (box, card)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    # The browser's reload repeats the GET it was redirected to, never the POST.
    page.reload()
    page.wait_for_load_state()
    assert ApiToken.objects.filter(user=user).count() == 1
    assert page.locator("#new-token").count() == 0  # shown once only
