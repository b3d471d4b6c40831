"""Browser: a student uploads a correct and a wrong solution of `attention` and watches each
reach its score without reloading; then an instructor regrades. Real pieces throughout:
Debian chromium, the live server, a real Celery worker process on the Redis broker using the
live server's (test) database, and the real grading engine with the real attention pack."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "submissions"))
from cp_workers import purge, start_worker, stop_worker  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "assignments" / "attention"

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def test_student_watches_grades_arrive_live_and_instructor_regrades(live_server, page, browser, login, settings, tmp_path, make_user):
    from courseplatform.courses.models import Course, Membership
    from courseplatform.submissions.models import Submission
    from courseplatform.submissions.sync import sync_pack

    if not django_settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("needs the Redis broker (CELERY_BROKER_URL=redis://...)")
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PACK_STORE = tmp_path / "packs"
    course = Course.objects.create(slug="llms", title="Deep Dive into LLMs")
    alice = make_user("alice")
    prof = make_user("prof")
    Membership.objects.create(course=course, user=alice, role="student")
    Membership.objects.create(course=course, user=prof, role="instructor")
    assignment, _ = sync_pack(course, PACK)

    purge()
    worker = start_worker("e2e", tmp_path / "worker.log", GRADER_POOL_SIZE=1)
    try:
        login(page, "alice", "pw-alice")
        page.goto(f"{live_server.url}/courses/llms/assignments/attention/")
        assert "Scaled dot-product attention" in page.inner_text("h1")

        def upload_and_watch(source: Path, expected: str) -> Submission:
            before = set(Submission.objects.values_list("pk", flat=True))
            good = tmp_path / "attention.py"
            good.write_bytes(source.read_bytes())
            page.set_input_files("#id_file", str(good))
            page.click("#submit-btn")
            page.wait_for_load_state()
            sub = Submission.objects.exclude(pk__in=before).get()
            card = f"#submission-{sub.pk}"
            assert page.get_attribute(card, "data-state") in ("queued", "running", "graded")
            page.evaluate("window.__sameDocument = true")  # lost if the page reloads
            page.wait_for_selector(f"{card}[data-state=graded]", timeout=120_000)
            assert page.evaluate("window.__sameDocument === true")
            assert expected in page.inner_text(f"{card} .score")
            return sub

        first = upload_and_watch(PACK / "solutions" / "einsum.py", "10 / 10")
        wrong = upload_and_watch(PACK / "mutants" / "no_scaling.py", "1.5 / 10")
        text = page.inner_text(f"#submission-{wrong.pk}")
        assert "sqrt(d_k)" in text and "hidden" in text.lower()
        assert page.locator(f"#submission-{first.pk}").count() == 1  # earlier attempts stay listed

        # The instructor regrades everything; the student's page is not reloaded.
        staff = browser.new_context()
        p2 = staff.new_page()
        login(p2, "prof", "pw-prof")
        p2.goto(f"{live_server.url}/courses/llms/assignments/attention/staff/")
        assert "alice" in p2.inner_text("table.students") and "<svg" in p2.content()
        p2.on("dialog", lambda d: d.accept())
        p2.click("#regrade-all")
        p2.wait_for_load_state()
        assert "queued for regrading" in p2.inner_text(".messages")
        staff.close()
        page.goto(f"{live_server.url}/courses/llms/assignments/attention/")
        page.wait_for_selector(f"#submission-{wrong.pk}[data-state=graded]", timeout=120_000)
        page.wait_for_selector(f"#submission-{first.pk}[data-state=graded]", timeout=120_000)
        assert set(Submission.objects.values_list("generation", flat=True)) == {2}
        assert "10 / 10" in page.inner_text(f"#submission-{first.pk} .score")
    finally:
        stop_worker(worker)
        log = (tmp_path / "worker.log").read_text(errors="replace")
        print(log[-4000:])
