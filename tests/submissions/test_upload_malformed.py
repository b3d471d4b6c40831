"""Malformed uploads are refused with a message (HTTP 400 from the API, an error message on the
page), never a 500, and nothing is stored; a hostile submission's result is stored in PostgreSQL
(the engine cleans it) instead of leaving the submission "Grading…" for ever."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cp_helpers import notebook, zip_bytes
from courseplatform.submissions.models import ApiToken, Submission

pytestmark = pytest.mark.django_db

SOURCE = b"def double(x):\n    return 2 * x\n"


def _nb(**override) -> bytes:
    nb = notebook("def double(x):\n    return 2 * x\n")
    nb.update(override)
    return json.dumps(nb).encode()


def _corrupt_zip() -> bytes:
    raw = bytearray(zip_bytes({"tiny.py": SOURCE * 200}))
    start = raw.index(b"tiny.py") + len(b"tiny.py")
    raw[start + 5:start + 25] = b"\x00" * 20  # inside the deflate stream
    return bytes(raw)


def _bad_crc_zip() -> bytes:
    raw = bytearray(zip_bytes({"tiny.py": SOURCE}, compression=zipfile.ZIP_STORED))
    raw[raw.index(b"return 2")] ^= 0x20
    return bytes(raw)


def _mode_zip(mode: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("tiny.py")
        info.external_attr = mode << 16
        zf.writestr(info, SOURCE)
    return buf.getvalue()


def _encrypted_zip() -> bytes:
    raw = bytearray(zip_bytes({"tiny.py": SOURCE}))
    raw[6] |= 1
    raw[raw.index(b"PK\x01\x02") + 8] |= 1
    return bytes(raw)


MALFORMED = [
    ("tiny.ipynb", b'{"cells": ' + b"[" * 30_000 + b"]" * 30_000 + b', "nbformat": 4}', "nested too deeply"),
    ("tiny.ipynb", _nb(cells=[{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                               "source": "x = '\ud800'"}]), "surrogate"),
    ("tiny.ipynb", _nb(cells=[5, "x"]), "not a valid"),
    ("tiny.ipynb", _nb(cells=[{"cell_type": "code", "source": {"a": 1}}]), "not a valid"),
    ("tiny.ipynb", _nb(metadata=[1, 2]), "not a valid"),
    ("tiny.py", b"def double(x):\x00\n", "binary data"),
    ("tiny.py", "x = 'é'\n".encode("latin-1"), "UTF-8"),
    ("tiny.zip", _corrupt_zip(), "damaged"),
    ("tiny.zip", _bad_crc_zip(), "damaged"),
    ("tiny.zip", _encrypted_zip(), "encrypted"),
    ("tiny.zip", _mode_zip(0o120777), "symbolic link"),
    ("tiny.zip", _mode_zip(0o010644), "special file"),
    ("tiny.zip", zip_bytes({"tiny.py": SOURCE, "more.zip": zip_bytes({"a.py": SOURCE})}), "another archive"),
    ("tiny.zip", zip_bytes({"a/../../tiny.py": SOURCE}), "escapes the folder"),
    ("tiny.zip", b"PK\x03\x04" + b"\xff" * 200, "not a valid zip"),
]
IDS = ["deep-ipynb", "surrogate-ipynb", "cells-wrong-type", "source-wrong-type", "metadata-wrong-type", "nul-py",
       "latin1-py", "zlib-error", "bad-crc", "encrypted", "symlink", "fifo", "nested-zip", "path-escape", "garbage-zip"]


@pytest.fixture
def token(student):
    return ApiToken.issue(student)[1]


@pytest.mark.parametrize("name,data,message", MALFORMED, ids=IDS)
def test_api_answers_400_with_the_message_and_stores_nothing(client, token, assignment, eager, blobs, name, data,
                                                            message):
    url = f"/api/courses/{assignment.course.slug}/assignments/{assignment.slug}/submissions"
    r = client.post(url, {"file": SimpleUploadedFile(name, data)}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert r.status_code == 400, r.content[:500]
    assert message in r.json()["detail"], r.json()
    assert Submission.objects.count() == 0 and blobs() == []


@pytest.mark.parametrize("name,data,message", MALFORMED, ids=IDS)
def test_upload_page_refuses_with_the_message_and_stores_nothing(client_for, student, assignment, eager, blobs, name,
                                                                 data, message):
    url = reverse("submissions:submit", args=[assignment.course.slug, assignment.slug])
    r = client_for(student).post(url, {"file": SimpleUploadedFile(name, data)}, follow=True)
    assert r.redirect_chain and r.redirect_chain[0][1] == 302 and r.status_code == 200
    shown = [str(m) for m in r.context["messages"]]
    assert any(message in m for m in shown), shown
    assert Submission.objects.count() == 0 and blobs() == []


def _seeds():
    return [("tiny.py", SOURCE), ("tiny.ipynb", _nb()), ("tiny.zip", zip_bytes({"tiny.py": SOURCE}))]


@st.composite
def _mutated(draw):
    name, data = draw(st.sampled_from(_seeds()))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        op = draw(st.sampled_from(["flip", "insert", "truncate", "splice"]))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[pos:]
        else:
            data[pos:pos] = draw(st.sampled_from([b"\x00", b"\\ud800", b"[" * 3000, b"\xed\xa0\x80", b"PK\x01\x02"]))
    return name, bytes(data)


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(upload_args=_mutated())
def test_fuzzed_uploads_are_accepted_or_refused_never_crash(assignment, upload_args):
    """The upload checks and the engine's decode, on mutated files: UploadRejected or nothing."""
    from courseplatform.submissions.validation import UploadRejected, check_upload, engine_check

    name, data = upload_args
    upload = SimpleUploadedFile(name, data)
    try:
        checked = check_upload(upload, assignment.kinds)
        engine_check(upload, checked, assignment.pack_path, assignment.kinds)
    except UploadRejected as exc:
        assert exc.message.strip()


# --------------------------------------------------------------------------- storing hostile results

HOSTILE = "NUL \x00 lone \ud800 osc52 \x1b]52;c;aGFjaw==\x07 clear \x1b[2J c1 \x9b fake 10/10"


def test_a_hostile_result_is_stored_in_postgresql_and_not_left_grading(client_for, student, assignment, eager,
                                                                       monkeypatch):
    """The real engine grades a submission whose exception text and output carry NUL, a lone
    surrogate and terminal escapes: the task stores the result (PostgreSQL refuses NUL and lone
    surrogates in JSON), the submission is graded, and the stored strings are clean."""
    from courseplatform.grading import engine
    from grader.api import grade

    monkeypatch.setattr(engine, "grade_function", lambda: grade)
    source = (
        "import os\n"
        "def double(x):\n"
        "    os.write(1, b'out \\x00 \\xed\\xa0\\x80 \\x1b]52;c;aGk=\\x07 \\x1b[2J\\n')\n"
        f"    raise type('Evil\\x1b[31m', (ValueError,), {{}})({HOSTILE!r})\n"
    )
    url = reverse("submissions:submit", args=[assignment.course.slug, assignment.slug])
    client_for(student).post(url, {"file": SimpleUploadedFile("tiny.py", source.encode())})
    sub = Submission.objects.get()
    sub.refresh_from_db()
    assert sub.state == "graded", (sub.state, sub.message)
    assert sub.message != "Grading…" and sub.score == 0
    stored = json.dumps(sub.result, ensure_ascii=False)
    for bad in ("\x00", "\ud800", "\x1b", "\x9b", "\x07"):
        assert bad not in stored
    visible = [t for t in sub.result["tests"] if t["visible"]][0]
    assert "Evil[31m" in visible["message"] and "fake 10/10" in visible["message"]
    assert "out" in sub.result["output"]


def test_a_cleaned_result_round_trips_through_a_jsonfield(assignment, student):
    """The engine's cleaning is what PostgreSQL needs: the raw dict is refused, the cleaned one stored."""
    from django.db import DatabaseError, transaction

    from courseplatform.submissions.models import Submission as S
    from grader.text import clean_result

    raw = {"message": HOSTILE, "tests": [{"message": HOSTILE, "score": float("nan")}], HOSTILE: [HOSTILE]}
    sub = S.objects.create(assignment=assignment, student=student, original_name="tiny.py", kind="py", size=1,
                           sha256="0" * 64, blob="x")
    with pytest.raises((DatabaseError, ValueError)):
        with transaction.atomic():
            S.objects.filter(pk=sub.pk).update(result=raw)
    cleaned = clean_result(raw)
    S.objects.filter(pk=sub.pk).update(result=cleaned)
    sub.refresh_from_db()
    assert sub.result == cleaned and "fake 10/10" in sub.result["message"] and sub.result["tests"][0]["score"] is None
