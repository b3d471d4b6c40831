"""Browser: the assignment page shows the client's install line, and its Check button (htmx) runs
the visible tests of the real attention pack on a real worker and shows the card live, in place,
without using an attempt. Debian chromium via Playwright, the live server, a real Celery worker."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "assignments" / "attention"

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def test_check_button_shows_visible_tests_live_and_keeps_the_attempts(live_server, page, login, settings, tmp_path,
                                                                     make_user):
    from cp_workers import purge, start_worker, stop_worker

    from courseplatform.courses.models import Course, Membership
    from courseplatform.submissions.models import Submission
    from courseplatform.submissions.sync import sync_pack

    if not django_settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("needs the Redis broker (CELERY_BROKER_URL=redis://...)")
    settings.SUBMISSION_MAX_BYTES = 10 * 1024 * 1024
    course = Course.objects.create(slug="llms", title="Deep Dive into LLMs")
    Membership.objects.create(course=course, user=make_user("alice"), role="student")
    assignment, _ = sync_pack(course, PACK)
    assignment.max_attempts = 3
    assignment.save()

    purge()
    worker = start_worker("check", tmp_path / "worker.log", GRADER_POOL_SIZE=1)
    try:
        login(page, "alice", "pw-alice")
        page.goto(f"{live_server.url}/courses/llms/assignments/attention/")
        install = page.inner_text("#client-install")
        assert install.startswith(f"%pip install -q {live_server.url}/client/courseplatform_client-")
        assert install.endswith("-py3-none-any.whl")
        assert 'cp.check("llms/attention")' in page.inner_text("#client-usage")
        attempts = page.inner_text(".attempts-left")

        good = tmp_path / "attention.py"
        good.write_bytes((PACK / "reference.py").read_bytes())
        page.set_input_files("#id_file", str(good))
        page.evaluate("window.__sameDocument = true")
        page.click("#check-btn")
        page.wait_for_selector("#check-result article[data-state=graded]", timeout=120_000)
        assert page.evaluate("window.__sameDocument === true")  # htmx swapped it in, no reload
        card = page.inner_text("#check-result article")
        assert "Check" in card and "visible tests only" in card and "Hidden test" not in card
        sub = Submission.objects.get()
        assert sub.via == "check" and sub.is_test_run and sub.state == "graded"
        assert sub.result["tests"] and all(t["visible"] for t in sub.result["tests"])
        assert sub.score == sub.max_score < assignment.points
        page.reload()
        assert page.inner_text(".attempts-left") == attempts  # not an attempt
    finally:
        stop_worker(worker)
        purge()
