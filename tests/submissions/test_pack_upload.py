"""Instructors upload a pack zip: safe extraction, engine validation, the self-check, install
(exactly like sync_course), roles, and a slug shared with another course's pack."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

import cp_fake_grader
from cp_helpers import PACK_TOML, TESTS_PY, zip_bytes
from courseplatform.submissions.models import Assignment, PackUpload, Submission
from courseplatform.submissions.sync import sync_pack

pytestmark = pytest.mark.django_db

# The fake engine scores a file by its SCORE=<n> marker (full marks without one).
FILES = {
    "assignment.toml": PACK_TOML.format(queue="cpu"),
    "handout.md": "# Tiny v2\n\nDouble it.\n",
    "starter.py": "def double(x):\n    raise NotImplementedError  # SCORE=0\n",
    "reference.py": "def double(x):\n    return 2 * x\n",
    "tests.py": TESTS_PY,
    "mutants/expected.toml": '[half]\nscore = 4\nmessage = "output differs"\n',
    "mutants/half.py": "def double(x):\n    return x  # SCORE=4\n",
    "solutions/other.py": "def double(x):\n    return x + x\n",
}


def pack_zip(files=None, folder="tiny", name="tiny.zip", **extra) -> SimpleUploadedFile:
    files = dict(FILES if files is None else files, **extra)
    entries = {(f"{folder}/{k}" if folder else k): (v.encode() if isinstance(v, str) else v) for k, v in files.items()}
    return SimpleUploadedFile(name, zip_bytes(entries), content_type="application/zip")


@pytest.fixture(autouse=True)
def instructors_may_upload(settings):
    """The site default is PACK_UPLOADS="superusers"; these tests exercise a site that opts in."""
    settings.PACK_UPLOADS = "instructors"


@pytest.fixture
def engine(monkeypatch, eager):
    """The engine's self-check runs with the fake grade function."""
    from grader.authoring import check

    monkeypatch.setattr(check, "grade", cp_fake_grader.grade)
    return eager


def upload(client, course, file, regrade=False):
    data = {"file": file}
    if regrade:
        data["regrade"] = "on"
    return client.post(reverse("submissions:pack_uploads", args=[course.slug]), data)


def test_instructor_uploads_a_new_pack_which_is_checked_and_installed(client_for, instructor, course, engine, settings):
    c = client_for(instructor)
    page = c.get(reverse("submissions:pack_uploads", args=[course.slug]))
    assert page.status_code == 200 and b"Upload and check" in page.content
    r = upload(c, course, pack_zip())
    row = PackUpload.objects.get()
    assert r.status_code == 302 and r.url == reverse("submissions:pack_upload", args=[course.slug, row.pk])
    assert row.status == "installed", row.message
    assert [i["file"] for i in row.items] == ["reference.py", "starter.py", "mutants/half.py", "solutions/other.py"]
    assert all(i["ok"] for i in row.items) and row.total_items == 4
    a = Assignment.objects.get(course=course, slug="tiny")
    assert row.assignment == a and a.title == "Tiny pack" and a.points == 10 and "Tiny v2" in a.handout_html
    # Installed like sync_course: trusted copy under PACK_STORE/<slug>/<hash>, staging removed.
    assert Path(a.pack_path).parent == Path(settings.PACK_STORE) / "tiny" and (Path(a.pack_path) / "tests.py").is_file()
    assert a.pack_source == f"upload #{row.pk} tiny.zip"
    assert not any((Path(settings.PACK_STORE) / "_uploads").rglob("*.py"))
    page = c.get(r.url)
    assert b"as expected" in page.content and b"Installed as a new assignment" in page.content
    # Syncing the trusted copy again changes nothing; "Re-sync" points to the upload page.
    r = c.post(reverse("submissions:resync", args=[course.slug, "tiny"]))
    assert r.status_code == 302 and r.url == reverse("submissions:pack_uploads", args=[course.slug])
    assert sync_pack(course, Path(a.pack_path))[1] == "updated: pack_source"
    assert Assignment.objects.filter(course=course).count() == 1


def test_a_pack_failing_its_self_check_is_not_installed(client_for, instructor, course, engine, assignment):
    old_hash, old_path = assignment.pack_hash, assignment.pack_path
    broken = dict(FILES, **{"mutants/half.py": "def double(x):\n    return x  # SCORE=6\n"})
    upload(client_for(instructor), course, pack_zip(broken))
    row = PackUpload.objects.get()
    assert row.status == "failed" and row.assignment is None
    assert "mutants/half.py: got 6, expected 4" in row.message and "not installed" in row.message
    bad = [i for i in row.items if not i["ok"]]
    assert [i["file"] for i in bad] == ["mutants/half.py"]
    assignment.refresh_from_db()
    assert (assignment.pack_hash, assignment.pack_path) == (old_hash, old_path)
    # A starter that scores is refused too.
    upload(client_for(instructor), course, pack_zip(dict(FILES, **{"starter.py": "def double(x):\n    return 2 * x\n"})))
    assert PackUpload.objects.first().status == "failed" and "starter.py: got 10, expected 0" in PackUpload.objects.first().message


def test_updating_an_assignment_keeps_settings_and_can_regrade_all(client_for, instructor, course, engine, assignment, student):
    assignment.max_attempts = 7
    assignment.save()
    sub = Submission.objects.create(assignment=assignment, student=student, sha256="0" * 64, blob="x", original_name="tiny.py",
                                    kind="py", size=1, state="graded", score=3, max_score=10)
    upload(client_for(instructor), course, pack_zip(), regrade=True)
    row = PackUpload.objects.get()
    assert row.status == "installed", row.message
    assignment.refresh_from_db()
    assert assignment.max_attempts == 7 and row.assignment == assignment
    assert "Pack updated" in row.message and "1 submission(s) queued for regrading" in row.message
    sub.refresh_from_db()
    assert sub.generation == 2  # regraded (the blob is missing here, so it ends in an error, which is fine)


def test_same_slug_in_another_course_is_never_overwritten(client_for, instructor, course, other_course, engine, pack_dir):
    theirs, _ = sync_pack(other_course, pack_dir)
    before = {p.name: p.read_bytes() for p in Path(theirs.pack_path).iterdir() if p.is_file()}
    upload(client_for(instructor), course, pack_zip())
    row = PackUpload.objects.get()
    assert row.status == "installed"
    mine = Assignment.objects.get(course=course, slug="tiny")
    theirs.refresh_from_db()
    assert mine.pk != theirs.pk and mine.pack_path != theirs.pack_path
    assert {p.name: p.read_bytes() for p in Path(theirs.pack_path).iterdir() if p.is_file()} == before
    assert theirs.pack_hash == Assignment.objects.get(pk=theirs.pk).pack_hash and "Tiny v2" not in theirs.handout_html


@pytest.mark.parametrize("make, message", [
    (lambda: SimpleUploadedFile("tiny.tar", b"x" * 10), "is not a .zip file"),
    (lambda: SimpleUploadedFile("tiny.zip", b""), "is empty"),
    (lambda: SimpleUploadedFile("tiny.zip", b"PK\x03\x04 not really"), "not a valid zip archive"),
    (lambda: SimpleUploadedFile("tiny.zip", zip_bytes({"tiny/../../evil.py": b"x", "tiny/assignment.toml": b"x"})), "escapes the folder"),
    (lambda: SimpleUploadedFile("tiny.zip", zip_bytes({"/etc/cron.d/x": b"x"})), "absolute path"),
    (lambda: pack_zip(folder=None, name="../../Bad Name!.zip"), "cannot name an assignment"),
    (lambda: pack_zip({k: v for k, v in FILES.items() if k != "tests.py"}), "no tests.py"),
    (lambda: pack_zip({k: v for k, v in FILES.items() if k != "reference.py"}), "no reference.py"),
    (lambda: pack_zip(dict(FILES, **{"assignment.toml": 'title = "x"\npoints = 1\nqueue = "tpu"\n'})), "queue must be one of"),
    (lambda: pack_zip(dict(FILES, **{"assignment.toml": 'title = "x"\npoints = 1\nslug = "other"\n'})), "rename one of them"),
    (lambda: pack_zip(dict(FILES, **{"mutants/expected.toml": FILES["mutants/expected.toml"] + "[nothere]\nscore = 1\n"})), "entries without a mutant file: nothere"),
    (lambda: pack_zip(dict(FILES, **{"mutants/expected.toml": "[other]\nscore = 1\n"})), "no [half] table with a score"),
    (lambda: SimpleUploadedFile("tiny.zip", zip_bytes({"a/x.py": b"1", "b/y.py": b"2"})), "No assignment.toml found"),
])
def test_bad_packs_are_refused_with_a_message_and_leave_nothing(client_for, instructor, course, engine, settings, make, message):
    r = upload(client_for(instructor), course, make())
    assert r.status_code == 400
    assert message in r.content.decode()
    assert not PackUpload.objects.exists() and not Assignment.objects.exists()
    staging = Path(settings.PACK_STORE) / "_uploads"
    assert not staging.exists() or not any(p.is_file() for p in staging.rglob("*"))
    assert not (Path(settings.PACK_STORE) / "tiny").exists()


def test_zip_bomb_and_symlink_are_refused(client_for, instructor, course, engine, settings):
    bomb = zip_bytes(dict({f"tiny/{k}": v.encode() for k, v in FILES.items()}, **{"tiny/data/big.bin": b"\0" * (30 * 1024 * 1024)}))
    assert len(bomb) < 200 * 1024
    r = upload(client_for(instructor), course, SimpleUploadedFile("tiny.zip", bomb))
    assert r.status_code == 400 and "zip bomb" in r.content.decode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in FILES.items():
            z.writestr(f"tiny/{k}", v)
        link = zipfile.ZipInfo("tiny/data/secret")
        link.external_attr = (0o120777 << 16)
        z.writestr(link, "/etc/shadow")
    r = upload(client_for(instructor), course, SimpleUploadedFile("tiny.zip", buf.getvalue()))
    assert r.status_code == 400 and "symbolic link" in r.content.decode()
    settings.PACK_UPLOAD_MAX_BYTES = 1024
    r = upload(client_for(instructor), course, pack_zip())
    assert r.status_code == 400 and "a pack may be at most" in r.content.decode()
    assert not PackUpload.objects.exists()


def test_flat_zip_is_named_after_the_file(client_for, instructor, course, engine):
    upload(client_for(instructor), course, pack_zip(folder=None, name="tiny-v2.zip"))
    assert PackUpload.objects.get().status == "installed" and Assignment.objects.filter(course=course, slug="tiny").exists()


def test_only_instructors_upload_packs(client_for, ta, student, outsider, course, engine, instructor, settings):
    url = reverse("submissions:pack_uploads", args=[course.slug])
    for user, code in ((ta, 403), (student, 403), (outsider, 404)):
        c = client_for(user)
        assert c.get(url).status_code == code
        assert c.post(url, {"file": pack_zip()}).status_code == code
    assert not PackUpload.objects.exists() and not Assignment.objects.exists()
    upload(client_for(instructor), course, pack_zip())
    row = PackUpload.objects.get()
    for user, code in ((ta, 403), (student, 403), (outsider, 404)):
        assert client_for(user).get(reverse("submissions:pack_upload", args=[course.slug, row.pk])).status_code == code
    # A site may keep uploads to its administrators, or turn them off.
    settings.PACK_UPLOADS = "superusers"
    url = reverse("submissions:pack_uploads", args=[course.slug])
    r = client_for(instructor).post(url, {"file": pack_zip()})
    assert r.status_code == 403 and PackUpload.objects.count() == 1
    instructor.is_superuser = True
    instructor.save()
    assert client_for(instructor).get(url).status_code == 200
    settings.PACK_UPLOADS = "off"
    assert client_for(instructor).get(url).status_code == 403
    settings.PACK_UPLOADS = "instructors"
    # Index: the upload button only for instructors.
    assert b"upload-pack" in client_for(instructor).get(reverse("submissions:index", args=[course.slug])).content
    assert b"upload-pack" not in client_for(ta).get(reverse("submissions:index", args=[course.slug])).content


def test_an_upload_of_another_course_is_not_visible(client_for, instructor, course, other_course, engine, make_user):
    from courseplatform.courses.models import Membership, Role

    upload(client_for(instructor), course, pack_zip())
    row = PackUpload.objects.get()
    other = make_user("prof2")
    Membership.objects.create(course=other_course, user=other, role=Role.INSTRUCTOR)
    assert client_for(other).get(reverse("submissions:pack_upload", args=[other_course.slug, row.pk])).status_code == 404


def test_progress_page_polls_until_done(client_for, instructor, course, monkeypatch):
    """Without a worker the check stays `checking`: the fragment polls; the engine error path ends it."""
    from courseplatform.submissions import packs

    monkeypatch.setattr("courseplatform.grading.jobs.on_commit", lambda fn: None)  # nothing runs the task
    c = client_for(instructor)
    upload(c, course, pack_zip())
    row = PackUpload.objects.get()
    assert row.status == "checking" and row.total_items == 4
    frag = c.get(reverse("submissions:pack_upload", args=[course.slug, row.pk]), HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 1s"' in frag.content and b"<html" not in frag.content
    from grader.authoring import check

    def boom(*a):
        raise RuntimeError("driver crashed")

    monkeypatch.setattr(check, "grade", boom)
    from courseplatform.submissions.tasks import check_pack_upload

    assert check_pack_upload.apply(args=[row.pk]).get() == "error"
    row.refresh_from_db()
    assert row.status == "error" and "driver crashed" in row.message and row.assignment is None
    frag = c.get(reverse("submissions:pack_upload", args=[course.slug, row.pk]), HTTP_HX_REQUEST="true")
    assert b"hx-trigger" not in frag.content
    assert not Assignment.objects.exists()
    assert packs.uploads_root().exists()


@pytest.mark.timeout(180)
def test_real_engine_checks_an_uploaded_pack(client_for, instructor, course, eager, settings):
    """The engine itself (sandbox, driver): reference full marks, starter 0, the mutant its score
    and message; then a pack whose mutant is recorded wrongly is refused."""
    real = {k: v for k, v in FILES.items() if k not in ("mutants/half.py", "mutants/expected.toml", "solutions/other.py")}
    real.update({
        "starter.py": "def double(x):\n    raise NotImplementedError\n",
        "mutants/identity.py": "def double(x):\n    return x\n",
        "mutants/expected.toml": '[identity]\nscore = 0\nmessage = "double(3) should be 6"\n',
        "solutions/plus.py": "def double(x):\n    return x + x\n",
    })
    upload(client_for(instructor), course, pack_zip(real))
    row = PackUpload.objects.get()
    assert row.status == "installed", (row.message, row.items)
    assert {i["file"]: i["score"] for i in row.items} == {
        "reference.py": 10, "starter.py": 0, "mutants/identity.py": 0, "solutions/plus.py": 10}
    wrong = dict(real, **{"mutants/expected.toml": '[identity]\nscore = 6\nmessage = "double(3) should be 6"\n'})
    upload(client_for(instructor), course, pack_zip(wrong, folder="tiny"))
    row = PackUpload.objects.first()
    assert row.status == "failed" and "mutants/identity.py: got 0, expected 6" in row.message
