"""The similarity check on the site: a check run by staff as a Celery task, the ranked report, the
side-by-side view, reviews kept across reruns, public sources, settings, the CSV export, the
automatic run after the deadline, and the fingerprint cache."""
from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from tests.similarity.variants import disguise

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "assignments" / "attention"
KEEP = {"scaled_dot_product_attention"}
INDEPENDENT = ["additive_mask.py", "einsum.py", "loops.py", "nanogpt_style.py", "float64_internal.py", "nan_to_num.py"]


@pytest.fixture
def klass(attention, enrol, submit, instructor, ta):
    """Alice and Bob hand in disguised copies of one solution, Carol the untouched starter, six
    others independent solutions; Alice's earlier attempt was something else."""
    ref = (PACK / "reference.py").read_text()
    users = {}
    users["alice"] = enrol("alice", first_name="=cmd|' /C calc'!A0", last_name="Adams")
    users["bob"] = enrol("bob", first_name="Bob", last_name="Brown")
    users["carol"] = enrol("carol")
    submit(attention, users["alice"], "first.py", (PACK / "solutions" / "where_exp_sum.py").read_bytes())
    subs = {
        "alice": submit(attention, users["alice"], "attention.py", disguise(ref, 1, KEEP).encode()),
        "bob": submit(attention, users["bob"], "attention.py", disguise(ref, 2, KEEP).encode()),
        "carol": submit(attention, users["carol"], "attention.py", (PACK / "starter.py").read_bytes()),
    }
    for i, name in enumerate(INDEPENDENT):
        u = enrol(f"s{i}")
        users[u.username] = u
        subs[u.username] = submit(attention, u, name, (PACK / "solutions" / name).read_bytes())
    # a staff test run is never compared
    submit(attention, instructor, "attention.py", ref.encode(), is_test_run=True)
    return users, subs


def start(client, assignment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(reverse("similarity:start", args=[assignment.course.slug, assignment.slug]))
    assert r.status_code == 302
    from courseplatform.similarity.models import SimilarityCheck

    return SimilarityCheck.objects.filter(assignment=assignment).first()


def test_staff_run_a_check_and_the_copy_ranks_first(client_for, instructor, ta, attention, klass, eager_celery,
                                                    django_capture_on_commit_callbacks):
    users, subs = klass
    check = start(client_for(ta), attention, django_capture_on_commit_callbacks)
    assert check.state == "done", check.message
    assert check.submissions == 9 and check.started_by == ta
    top = check.pairs.first()
    assert {top.sub_a_id, top.sub_b_id} == {subs["alice"].pk, subs["bob"].pk}  # the latest of Alice's two
    assert top.score >= check.threshold and top.share_a > 0.5 and top.share_b > 0.5
    flagged = [p for p in check.pairs.all() if p.score >= check.threshold]
    assert len(flagged) == 1
    assert not any(subs["carol"].pk in (p.sub_a_id, p.sub_b_id) and p.score >= check.threshold
                   for p in check.pairs.all())
    page = client_for(instructor).get(reverse("similarity:report", args=[attention.course.slug, attention.slug]))
    assert page.status_code == 200
    soup = BeautifulSoup(page.content, "html.parser")
    first = soup.select("table.sim-pairs tbody tr[data-pair]")[0]
    assert {first["data-a"], first["data-b"]} == {"alice", "bob"}
    assert "9 submissions compared; 1 pair(s) flagged" in soup.select_one("#sim-message").get_text()
    # the staff page of the assignment links to it
    staff = client_for(ta).get(reverse("submissions:staff", args=[attention.course.slug, attention.slug]))
    assert reverse("similarity:report", args=[attention.course.slug, attention.slug]).encode() in staff.content


def test_a_rerun_reuses_fingerprints_and_reads_only_new_files(client_for, ta, attention, klass, submit,
                                                              eager_celery, django_capture_on_commit_callbacks):
    users, subs = klass
    first = start(client_for(ta), attention, django_capture_on_commit_callbacks)
    assert first.reused == 0
    second = start(client_for(ta), attention, django_capture_on_commit_callbacks)
    assert second.pk != first.pk and second.reused == 9
    # Carol now copies Bob: one new file read, the others from the cache; the cluster appears
    submit(attention, users["carol"], "attention.py", disguise((PACK / "reference.py").read_text(), 5, KEEP).encode())
    third = start(client_for(ta), attention, django_capture_on_commit_callbacks)
    assert third.reused == 8
    members = {attention.submissions.get(pk=i).student.username for i in third.clusters[0]}
    assert members == {"alice", "bob", "carol"}


def test_the_pair_page_shows_both_files_with_the_same_colour_on_matching_lines(
        client_for, ta, attention, klass, eager_celery, django_capture_on_commit_callbacks):
    users, subs = klass
    check = start(client_for(ta), attention, django_capture_on_commit_callbacks)
    top = check.pairs.first()
    r = client_for(ta).get(reverse("similarity:pair", args=[attention.course.slug, attention.slug, top.pk]))
    assert r.status_code == 200
    soup = BeautifulSoup(r.content, "html.parser")
    left = soup.select("#side-a tr.hl.sim-m0")
    right = soup.select("#side-b tr.hl.sim-m0")
    assert left and right
    region = next(x for x in top.regions if x["kind"] == "copy")
    assert left[0]["id"] == f"a-L{region['a'][0]}" and right[0]["id"] == f"b-L{region['b'][0]}"
    # the highlighted lines hold the function both copied, with line numbers
    assert "def scaled_dot_product_attention" in " ".join(t.get_text() for t in left)
    assert left[0].select_one("td.ln").get_text() == str(region["a"][0])
    # links to each submission and its file
    for sub in (top.sub_a, top.sub_b):
        assert soup.find("a", href=reverse("submissions:file", args=[attention.course.slug, sub.pk]))
        assert soup.find("a", href=reverse("submissions:staff_student",
                                           args=[attention.course.slug, attention.slug, sub.student_id]))


def test_a_review_is_kept_across_reruns_and_can_be_cleared(client_for, ta, instructor, attention, klass,
                                                            eager_celery, django_capture_on_commit_callbacks):
    from courseplatform.similarity.models import PairReview

    check = start(client_for(ta), attention, django_capture_on_commit_callbacks)
    top = check.pairs.first()
    url = reverse("similarity:review", args=[attention.course.slug, attention.slug, top.pk])
    r = client_for(ta).post(url, {"status": "reviewed", "note": "Same odd comment in both; talked to both."})
    assert r.status_code == 302
    review = PairReview.objects.get()
    assert review.status == "reviewed" and review.by == ta
    again = start(client_for(ta), attention, django_capture_on_commit_callbacks)
    page = client_for(instructor).get(reverse("similarity:report", args=[attention.course.slug, attention.slug]))
    row = BeautifulSoup(page.content, "html.parser").select(f"tr[data-pair='{again.pairs.first().pk}']")[0]
    assert "Reviewed" in row.get_text()
    r = client_for(ta).post(url, {"status": "bogus"})
    assert r.status_code == 302 and PairReview.objects.get().status == "reviewed"
    client_for(ta).post(url, {"status": "clear"})
    assert not PairReview.objects.exists()


def test_csv_export_follows_the_sites_conventions(client_for, ta, attention, klass, eager_celery,
                                                  django_capture_on_commit_callbacks):
    url = reverse("similarity:export", args=[attention.course.slug, attention.slug])
    assert client_for(ta).get(url).status_code == 404  # nothing has run yet
    check = start(client_for(ta), attention, django_capture_on_commit_callbacks)
    r = client_for(ta).get(url)
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert "attachment" in r["Content-Disposition"]
    text = r.content.decode()
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["rank", "score", "flagged"]
    assert len(rows) == check.pairs.count() + 1
    first = dict(zip(rows[0], rows[1]))
    assert first["flagged"] == "yes" and {first["student_a"], first["student_b"]} == {"alice", "bob"}
    name = first["name_a"] if first["student_a"] == "alice" else first["name_b"]
    assert name.startswith("'=")  # a formula in a student's name is defused


def test_public_sources_mark_shared_code_and_do_not_count(client_for, ta, attention, enrol, submit, eager_celery,
                                                          django_capture_on_commit_callbacks):
    tutorial = (PACK / "solutions" / "annotated_transformer.py").read_text()
    for i, name in enumerate(INDEPENDENT):
        submit(attention, enrol(f"s{i}"), name, (PACK / "solutions" / name).read_bytes())
    for who, seed in (("ivan", 1), ("judy", 2)):
        submit(attention, enrol(who), "attention.py", disguise(tutorial, seed, KEEP).encode())
    before = start(client_for(ta), attention, django_capture_on_commit_callbacks)
    pair = before.pairs.first()
    assert {pair.sub_a.student.username, pair.sub_b.student.username} == {"ivan", "judy"}
    assert pair.score >= before.threshold
    # staff add the tutorial (zipped with its repository's README) as a public source
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("annotated/README.md", "The Annotated Transformer")
        z.writestr("annotated/attention.py", tutorial)
    url = reverse("similarity:sources", args=[attention.course.slug, attention.slug])
    r = client_for(ta).post(url, {"file": SimpleUploadedFile("annotated.zip", buf.getvalue())})
    assert r.status_code == 302
    assert b"annotated/attention.py" in client_for(ta).get(url).content
    after = start(client_for(ta), attention, django_capture_on_commit_callbacks)
    pair = next(p for p in after.pairs.all()
                if {p.sub_a.student.username, p.sub_b.student.username} == {"ivan", "judy"})
    assert pair.score < after.threshold and pair.public > 0
    assert pair.public_sources and pair.public_sources[0].startswith("annotated/attention.py")
    page = client_for(ta).get(reverse("similarity:pair", args=[attention.course.slug, attention.slug, pair.pk]))
    soup = BeautifulSoup(page.content, "html.parser")
    assert soup.select("#side-a tr.sim-pub") and "annotated/attention.py" in soup.select_one(".sim-regions").get_text()
    # a refused upload says why
    r = client_for(ta).post(url, {"file": SimpleUploadedFile("notes.txt", b"hello")})
    assert r.status_code == 400 and b"is not a .py, .ipynb or .zip file" in r.content


def visible_words(r) -> set[str]:
    """The words a person reads on the page (not its attributes, where the per-request CSRF token and
    CSP nonce are random and hold any short name now and then), lower-cased."""
    soup = BeautifulSoup(r.content, "html.parser")
    for tag in soup(["script", "style"]):
        tag.decompose()
    return set(re.findall(r"[\w.@-]+", soup.get_text(" ").lower()))


def test_students_never_see_it(client_for, attention, klass, eager_celery, django_capture_on_commit_callbacks, ta):
    users, subs = klass
    check = start(client_for(ta), attention, django_capture_on_commit_callbacks)
    alice = client_for(users["alice"])
    for name, args in (("report", []), ("pair", [check.pairs.first().pk]), ("export", []), ("sources", [])):
        r = alice.get(reverse(f"similarity:{name}", args=[attention.course.slug, attention.slug, *args]))
        assert r.status_code == 403
        assert "bob" not in visible_words(r)
    page = alice.get(reverse("submissions:detail", args=[attention.course.slug, attention.slug]))
    assert page.status_code == 200 and b"similarity" not in page.content.lower()


def test_settings_are_the_instructors_and_validated(client_for, instructor, ta, attention):
    from courseplatform.similarity.models import SimilaritySettings

    url = reverse("similarity:settings", args=[attention.course.slug, attention.slug])
    assert client_for(ta).post(url, {"threshold": "0.7", "boilerplate_share": "0.3"}).status_code == 403
    client_for(instructor).post(url, {"threshold": "7", "boilerplate_share": "0.3"})
    assert not SimilaritySettings.objects.exists()
    client_for(instructor).post(url, {"threshold": "0.7", "boilerplate_share": "0.3", "run_after_deadline": "on"})
    s = SimilaritySettings.objects.get()
    assert (s.threshold, s.boilerplate_share, s.run_after_deadline) == (0.7, 0.3, True)


def test_the_progress_card_polls_until_the_check_ends(client_for, ta, attention, klass):
    from courseplatform.similarity.models import SimilarityCheck

    check = SimilarityCheck.objects.create(assignment=attention, started_by=ta, stage="Reading submissions (3 of 9)",
                                           done_items=3, total_items=10)
    url = reverse("similarity:status", args=[attention.course.slug, attention.slug])
    r = client_for(ta).get(url, HTTP_HX_REQUEST="true")
    soup = BeautifulSoup(r.content, "html.parser")
    card = soup.select_one("#sim-status")
    assert card["hx-get"] == url and card["hx-trigger"] == "every 1s"
    assert soup.select_one("progress")["value"] == "30" and "Reading submissions" in card.get_text()
    assert "HX-Refresh" not in r
    # a second start is refused while one runs
    client_for(ta).post(reverse("similarity:start", args=[attention.course.slug, attention.slug]))
    assert SimilarityCheck.objects.count() == 1
    SimilarityCheck.objects.filter(pk=check.pk).update(state="done", message="done")
    r = client_for(ta).get(url, HTTP_HX_REQUEST="true")
    assert r["HX-Refresh"] == "true" and not BeautifulSoup(r.content, "html.parser").select_one("#sim-status").get(
        "hx-get")


def test_the_check_runs_once_after_the_deadline(attention, klass, eager_celery, django_capture_on_commit_callbacks):
    from courseplatform.similarity.models import SimilarityCheck, SimilaritySettings
    from courseplatform.similarity.tasks import run_due_checks

    SimilaritySettings.objects.create(assignment=attention, run_after_deadline=True)
    attention.due_at = timezone.now() - timedelta(days=1)
    attention.late_cutoff_days = 3  # late work is still accepted for two more days
    attention.save()
    assert run_due_checks() == 0
    attention.due_at = timezone.now() - timedelta(days=4)
    attention.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert run_due_checks() == 1
    check = SimilarityCheck.objects.get()
    assert check.state == "done" and check.started_by is None
    with django_capture_on_commit_callbacks(execute=True):
        assert run_due_checks() == 0
    assert SimilarityCheck.objects.count() == 1


def test_the_beat_schedule_runs_the_due_checks(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["similarity-due-checks"]
    from courseplatform.celery import app

    app.loader.import_default_modules()
    assert entry["task"] in app.tasks


def test_a_check_with_nothing_submitted_is_not_started(client_for, ta, attention):
    from courseplatform.similarity.models import SimilarityCheck

    r = client_for(ta).post(reverse("similarity:start", args=[attention.course.slug, attention.slug]), follow=True)
    assert b"nothing to compare" in r.content and not SimilarityCheck.objects.exists()


def test_a_check_whose_worker_was_lost_does_not_block_a_new_one(client_for, ta, attention, klass, eager_celery,
                                                                django_capture_on_commit_callbacks):
    from courseplatform.similarity.models import SimilarityCheck

    lost = SimilarityCheck.objects.create(assignment=attention, started_by=ta)
    SimilarityCheck.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=2))
    check = start(client_for(ta), attention, django_capture_on_commit_callbacks)
    assert check.pk != lost.pk and check.state == "done"
    lost.refresh_from_db()
    assert lost.state == "error" and "did not finish" in lost.message
