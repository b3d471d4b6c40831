"""Browser: a student uploads a correct and a wrong solution of `attention` and watches each
reach its score without reloading; then an instructor regrades. Real pieces throughout:
Debian chromium, the live server, a real Celery worker process on the Redis broker using the
live server's (test) database, and the real grading engine with the real attention pack."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect

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


def _hostile_notebook_submission(tmp_path, make_user):
    import base64

    import nbformat

    from courseplatform.courses.models import Course, Membership
    from courseplatform.submissions.models import Assignment, Submission

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/plain": "x", "text/html": (
            "<b id='ok'>cosine 0.42</b><script>window.top.__pwned = 1; parent.document.title = 'pwned';</script>"
            "<img src=x onerror=\"window.top.__pwned = 2; parent.document.title = 'pwned'\">")}),
        nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(png).decode(), "text/plain": "fig"}),
    ]
    nb.cells = [cell]
    course = Course.objects.create(slug="llms", title="Deep Dive into LLMs")
    alice = make_user("alice")
    Membership.objects.create(course=course, user=alice, role="student")
    a = Assignment.objects.create(course=course, slug="embeddings_notebook", title="Homework notebook", points=10)
    art = lambda n, t, d: {"name": n, "content_type": t, "data_b64": base64.b64encode(d).decode()}  # noqa: E731
    return Submission.objects.create(
        assignment=a, student=alice, sha256="0" * 64, blob="x", original_name="embeddings.ipynb", kind="ipynb", size=1,
        state="graded", score=10, max_score=10, result={"status": "graded", "score": 10, "max_score": 10, "tests": [],
        "message": "10/10", "artifacts": [art("executed.ipynb", "application/x-ipynb+json", nbformat.writes(nb).encode()),
                                          art("bank_projection.png", "image/png", png)]})


@pytest.mark.timeout(120)
def test_notebook_feedback_runs_no_script(live_server, page, login, tmp_path, make_user, monkeypatch):
    """The executed notebook shows its outputs and plot; a <script> and an onerror handler in an
    output never run: stripped by the sanitizer, and even when the sanitizer is switched off the
    frame's CSP and sandbox stop them."""
    from courseplatform.submissions import artifacts, notebooks

    sub = _hostile_notebook_submission(tmp_path, make_user)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, "alice", "pw-alice")
    page.goto(f"{live_server.url}/courses/llms/assignments/embeddings_notebook/")
    plot = page.locator(".artifact-image img")
    expect(plot).to_have_js_property("complete", True)  # loaded or failed; polled without eval under the CSP
    expect(plot).to_have_js_property("naturalWidth", 1)  # the plot loads
    page.click(".notebook-link")
    page.wait_for_load_state()
    title = page.title()
    frame = page.frame_locator("iframe.notebook-frame")
    assert frame.locator("#ok").inner_text() == "cosine 0.42"
    assert frame.locator("img[src^='data:image/png']").count() == 1
    page.wait_for_timeout(300)
    assert page.title() == title and page.evaluate("window.__pwned") is None and not dialogs

    monkeypatch.setattr(notebooks, "sanitize", lambda html: html)  # the second and third walls alone
    # the rendered HTML is kept per RENDER_VERSION: a sanitizer that changes gets a new version
    monkeypatch.setattr(artifacts, "RENDER_VERSION", "unsanitized")
    page.reload()
    frame = page.frame_locator("iframe.notebook-frame")
    assert frame.locator("#ok").inner_text() == "cosine 0.42"
    assert "<script>" in frame.locator("body").inner_html()  # the script is there ...
    page.wait_for_timeout(300)
    assert page.title() == title and page.evaluate("window.__pwned") is None and not dialogs  # ... and did not run
    assert sub.pk


@pytest.mark.timeout(240)
def test_instructor_uploads_a_pack_and_watches_the_check(live_server, page, login, tmp_path, make_user, settings):
    """A real worker with the real engine checks an uploaded pack while the page polls; then the
    new assignment is there for students."""
    settings.PACK_UPLOADS = "instructors"  # the site default is "superusers"
    import zipfile

    from courseplatform.courses.models import Course, Membership
    from courseplatform.submissions.models import Assignment, PackUpload

    if not django_settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("needs the Redis broker (CELERY_BROKER_URL=redis://...)")
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PACK_STORE = tmp_path / "packs"
    course = Course.objects.create(slug="llms", title="Deep Dive into LLMs")
    Membership.objects.create(course=course, user=make_user("prof"), role="instructor")
    zpath = tmp_path / "doubling.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for name, text in {
            "assignment.toml": 'title = "Doubling"\npoints = 4\nmodule = "doubling"\nrequired = ["double"]\n',
            "handout.md": "# Doubling\n\nWrite `double(x)`.\n",
            "starter.py": "def double(x):\n    raise NotImplementedError\n",
            "reference.py": "def double(x):\n    return 2 * x\n",
            "tests.py": ("from grader.authoring import Fail, case\n\n\n@case(points=4)\ndef twice(ctx):\n    \"\"\"double(3) is 6\"\"\"\n"
                         "    if ctx.sub.call('double', 3) != 6:\n        raise Fail('double(3) should be 6')\n"),
            "mutants/expected.toml": '[same]\nscore = 0\nmessage = "double(3) should be 6"\n',
            "mutants/same.py": "def double(x):\n    return x\n",
        }.items():
            z.writestr(f"doubling/{name}", text)
    purge()
    worker = start_worker("e2e-packs", tmp_path / "worker.log", GRADER_POOL_SIZE=1)
    try:
        login(page, "prof", "pw-prof")
        page.goto(f"{live_server.url}/courses/llms/assignments/")
        page.click("#upload-pack")
        page.set_input_files("#id_file", str(zpath))
        page.click("#pack-form button[type=submit]")
        page.wait_for_load_state()
        assert "/packs/upload/" in page.url
        page.evaluate("window.__sameDocument = true")
        page.wait_for_selector("#pack-check[data-status=installed]", timeout=150_000)
        assert page.evaluate("window.__sameDocument === true")  # updated in place, no reload
        text = page.inner_text("#pack-check")
        assert "mutants/same.py" in text and "Installed as a new assignment" in text
        assert PackUpload.objects.get().status == "installed"
        assert Assignment.objects.get(course=course, slug="doubling").points == 4
        page.click("text=Student view")
        assert "Doubling" in page.inner_text("h1")
    finally:
        stop_worker(worker)
        print((tmp_path / "worker.log").read_text(errors="replace")[-3000:])
