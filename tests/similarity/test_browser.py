"""Browser (Debian chromium, Playwright, the live server): staff watch a similarity check's progress
live (htmx polling), the report appears when it ends, and the side-by-side page highlights the
matching regions of the two files in the same colour, with line numbers; both pages pass axe-core
and fit a laptop screen."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.test_pages import AXE, LAPTOP, check_page
from tests.similarity.variants import disguise

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "assignments" / "attention"
KEEP = {"scaled_dot_product_attention"}


def test_progress_then_side_by_side_highlights_the_shared_regions(live_server, page, login, attention, enrol,
                                                                    submit, eager_celery):
    from courseplatform.similarity import services
    from courseplatform.similarity.models import SimilarityCheck

    assert AXE.is_file(), "link frontend/node_modules (axe-core from the npm registry)"
    enrol("prof", role="instructor")
    ref = (PACK / "reference.py").read_text()
    submit(attention, enrol("alice"), "attention.py", disguise(ref, 1, KEEP).encode())
    submit(attention, enrol("bob"), "attention.py", disguise(ref, 2, KEEP).encode())
    for i, name in enumerate(["einsum.py", "loops.py", "nanogpt_style.py", "additive_mask.py"]):
        submit(attention, enrol(f"s{i}"), name, (PACK / "solutions" / name).read_bytes())
    # a check waiting for a worker: the page polls its progress
    check = SimilarityCheck.objects.create(assignment=attention, params={"threshold": 0.6},
                                           stage="Waiting for a worker…")
    login(page, "prof", "pw-prof")
    base = f"{live_server.url}/courses/{attention.course.slug}/similarity/{attention.slug}/"
    page.goto(base)
    expect(page.locator("#sim-state")).to_have_text("Queued")
    expect(page.locator("#sim-status")).to_have_attribute("hx-trigger", "every 1s")
    # the worker runs it now; the card follows and the page shows the report when it ends
    def work():
        from django.db import connection

        try:
            services.run(check)
        finally:
            connection.close()  # this thread's own connection, or the test database cannot be dropped

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(120)
    expect(page.locator("#sim-state")).to_have_text("Done", timeout=30_000)
    first = page.locator("table.sim-pairs tbody tr[data-pair]").first
    expect(first).to_have_attribute("data-a", "alice")
    expect(first).to_have_attribute("data-b", "bob")

    first.get_by_role("link", name="Side by side").click()
    expect(page.locator("h1")).to_contain_text("Pair #1")
    left = page.locator("#side-a tr.hl.sim-m0")
    right = page.locator("#side-b tr.hl.sim-m0")
    expect(left.first).to_be_visible()
    expect(right.first).to_be_visible()
    # the same colour on both sides, and it is a colour (not the page's background)
    colour_a = left.first.evaluate("el => getComputedStyle(el).backgroundColor")
    colour_b = right.first.evaluate("el => getComputedStyle(el).backgroundColor")
    plain = page.locator("#side-a tr:not(.hl)").first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour_a == colour_b != plain
    assert "scaled_dot_product_attention" in " ".join(left.all_inner_texts())
    # line numbers: the legend's link jumps to the first highlighted line of each side
    legend = page.locator(".sim-regions li.sim-m0")
    expect(legend).to_contain_text("Shared")
    href_a = legend.locator("a").first.get_attribute("href")
    assert left.first.get_attribute("id") == href_a.lstrip("#")
    number = left.first.locator("td.ln").inner_text()
    assert href_a == f"#a-L{number}"
    pair_url = page.url

    problems = check_page(page, base, "similarity-report", LAPTOP["width"])
    problems += check_page(page, pair_url, "similarity-pair", LAPTOP["width"])
    assert not problems, "\n".join(problems)
