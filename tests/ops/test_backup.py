"""Backup and restore (issue 27, item 2): a filled course (the demo: graded submissions, quiz attempts,
project deliveries with files, milestone grades, attendance) is backed up, the database and storage
are emptied, the archive is restored, and every row, file and grade is identical, with the site
serving it. A restore never merges into a live site and never accepts a tampered archive."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from django.core import serializers
from django.core.management import CommandError, call_command

from courseplatform.ops import backup

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(600)]


def _rows() -> dict[str, list]:
    """Every row of every backed-up model, primary keys included; content types by natural key
    (their ids are the target's own)."""
    return {label: json.loads(serializers.serialize("json", model._default_manager.order_by("pk"),
                                                     use_natural_foreign_keys=True))
            for label, model in backup._models()}


def _files(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file():
                out[f"{root.name}/{path.relative_to(root)}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _grades():
    from courseplatform.courses.models import Course
    from courseplatform.gradebook import compute

    book = compute.build(Course.objects.get(slug="llms"))
    return [(r.user.username, sorted(r.scores.items()), r.total, sorted(r.flags)) for r in book.rows]


@pytest.fixture
def filled_course(settings):
    from courseplatform.projects.models import DeliveryVersion, MilestoneGrade
    from courseplatform.quizzes.models import Attempt
    from courseplatform.submissions.models import Submission

    settings.ASSIGNMENTS_DIR = ROOT / "assignments"  # the course's real packs, banks and plan (tests/ops uses a tmp one)
    call_command("load_demo", stdout=io.StringIO())
    # what the test is about is there: graded work with files in every part of the site
    assert Submission.objects.filter(state="graded", score__isnull=False).count() >= 3
    assert Attempt.objects.exists() and MilestoneGrade.objects.exists()
    assert DeliveryVersion.objects.exclude(file="").exists()
    assert any(Path(settings.MEDIA_ROOT).rglob("*.py")) and any(Path(settings.PACK_STORE).rglob("tests.py"))


def test_backup_restores_every_row_file_and_grade_into_an_empty_site(filled_course, settings, tmp_path, client):
    """One filled course (grading the demo takes half a minute) for the whole story: back up, refuse to
    merge, restore from the command line onto a database that was never migrated, refuse a tampered
    archive on an emptied site, then restore it there and serve it."""
    from courseplatform.submissions.models import Submission

    grades = _grades()  # first: the gradebook creates a course's default weights when it first reads them
    rows, files = _rows(), _files(settings.MEDIA_ROOT, settings.PACK_STORE)
    graded = Submission.objects.filter(state="graded", score__gt=0).exclude(student__username="instructor").first()
    blob = (Path(settings.MEDIA_ROOT) / graded.blob).read_bytes()

    archive = tmp_path / "site.tar.gz"
    out = io.StringIO()
    call_command("backup", output=archive, stdout=out)
    assert "Backup written" in out.getvalue() and archive.is_file()

    # a restore never merges into a site that has data
    with pytest.raises(CommandError, match="not empty"):
        call_command("restore", str(archive), stdout=io.StringIO())
    assert _rows() == rows

    _restore_on_a_fresh_database_from_the_command_line(archive, settings, tmp_path)

    # an emptied site: no rows (content types and permissions come back from migrate with new ids), no files
    call_command("flush", interactive=False, verbosity=0)
    shutil.rmtree(settings.MEDIA_ROOT)
    shutil.rmtree(settings.PACK_STORE)
    assert not Submission.objects.exists()

    with pytest.raises(CommandError, match="does not match its hash"):
        call_command("restore", str(_tampered(archive, tmp_path)), stdout=io.StringIO())
    assert not Submission.objects.exists()  # nothing was loaded from it
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(CommandError, match="not a courseplatform backup"):
        call_command("restore", str(tmp_path / "junk.tar.gz"), stdout=io.StringIO())

    out = io.StringIO()
    call_command("restore", str(archive), stdout=out)
    assert "every count and hash checked" in out.getvalue()
    assert _rows() == rows
    assert _files(settings.MEDIA_ROOT, settings.PACK_STORE) == files
    assert _grades() == grades

    # the site serves it: the student logs in with the old password and sees the score and the file
    student = type(graded.student).objects.get(pk=graded.student_id)
    assert student.check_password(_demo_password(student.username))  # the old password still signs in
    client.force_login(student)
    page = client.get(f"/courses/llms/assignments/{graded.assignment.slug}/")
    assert page.status_code == 200 and f"{graded.score:g}" in page.content.decode()
    download = client.get(f"/courses/llms/assignments/submission/{graded.pk}/file/")
    body = b"".join(download.streaming_content) if download.streaming else download.content
    assert download.status_code == 200 and body == blob


def _demo_password(username: str) -> str:
    from courseplatform.courses import demo_data

    for entry in [demo_data.INSTRUCTOR, demo_data.TA, *demo_data.STUDENTS]:
        if entry[0] == username:
            return entry[1]
    raise AssertionError(username)


def _tampered(archive: Path, tmp_path: Path) -> Path:
    """The same archive with one uploaded file changed after the backup (its manifest hash kept)."""
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive, "r:gz") as src, tarfile.open(tampered, "w:gz") as dst:
        changed = False
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else b""
            if not changed and member.name.startswith("media/") and member.name.endswith(".py"):
                data += b"\n# changed after the backup\n"
                member.size = len(data)
                changed = True
            dst.addfile(member, io.BytesIO(data))
    assert changed
    return tampered


def _restore_on_a_fresh_database_from_the_command_line(archive: Path, settings, tmp_path: Path) -> None:
    """The documented command in its own process against a database that has never been migrated and
    empty folders (a fresh machine); its dump then equals the running site's."""
    import psycopg
    from django.db import connection

    assert connection.vendor == "postgresql", "make test runs the suite on PostgreSQL (DATABASE_URL)"
    db = connection.settings_dict
    fresh = f"{db['NAME']}_restored"
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    with psycopg.connect(f"{url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{fresh}"')
    env_old = _env(f"{url}/{db['NAME']}", settings.MEDIA_ROOT, settings.PACK_STORE)
    env_new = _env(f"{url}/{fresh}", tmp_path / "fresh" / "media", tmp_path / "fresh" / "packs")
    try:
        assert "every count and hash checked" in _manage(env_new, "restore", str(archive))
        # whole microseconds: Django's json format would round every timestamp to milliseconds and
        # hide a restore that lost the rest
        dump = ["dumpdata", "--format", "exactjson", "--natural-foreign", *[f"--exclude={e}" for e in backup.EXCLUDED]]
        assert json.loads(_manage(env_new, *dump)) == json.loads(_manage(env_old, *dump))
        assert _files(tmp_path / "fresh" / "media", tmp_path / "fresh" / "packs") == \
            _files(settings.MEDIA_ROOT, settings.PACK_STORE)
    finally:
        with psycopg.connect(f"{url}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')


def _env(database_url: str, media: Path, packs: Path) -> dict:
    import os

    return {**os.environ, "DEBUG": "1", "DATABASE_URL": database_url, "MEDIA_ROOT": str(media),
            "PACK_STORE": str(packs), "PYTHONPATH": str(ROOT)}


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
