"""One zip policy (grader.intake.ziparchive) for the three places that open a zip: the engine decoding a
student's .zip, the web checking the same upload, and an instructor's pack upload. The same
hostile zip is refused by all three with the same message, and the web never accepts a zip that
the engine refuses."""
from __future__ import annotations

import io
import random
import warnings
import zipfile

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile

from courseplatform.submissions import packs
from courseplatform.submissions.packs import PackRejected
from courseplatform.submissions.validation import UploadRejected, check_upload
from grader.errors import SubmissionError
from grader.intake import ziparchive
from grader.intake.submission import decode
from grader.intake.ziparchive import MiB, SUBMISSIONS, ZipRefused

NAME = "hw.zip"
SOURCE = b"def double(x):\n    return 2 * x\n"
# every hostile zip is otherwise a valid pack and a valid submission, so only the hostile part is refused
BASE = {"assignment.toml": b'title = "x"\npoints = 1\n', "tiny.py": SOURCE}


def make_zip(entries: dict[str, bytes], extra: list[tuple[zipfile.ZipInfo, bytes]] = (),
             method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", method) as zf:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we write on purpose
        for name, data in entries.items():
            zf.writestr(name, data)
        for info, data in extra:
            zf.writestr(info, data)
    return buf.getvalue()


def with_mode(name: str, mode: int, data: bytes = b"/etc/passwd") -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info, data


def bad_crc() -> bytes:
    raw = bytearray(make_zip(BASE, method=zipfile.ZIP_STORED))
    raw[raw.index(b"return 2")] ^= 0x20
    return bytes(raw)


def bad_zlib() -> bytes:
    raw = bytearray(make_zip(dict(BASE, **{"tiny.py": SOURCE * 200})))
    start = raw.index(b"tiny.py") + len(b"tiny.py")
    raw[start + 5:start + 25] = b"\x00" * 20  # inside the deflate stream
    return bytes(raw)


def lying_size() -> bytes:
    """The central directory declares 10 bytes; the member unpacks to 2 MB."""
    raw = bytearray(make_zip(dict(BASE, **{"data.txt": b"A" * 2_000_000})))
    cd = raw.rindex(b"PK\x01\x02")  # the last entry is data.txt
    raw[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    return bytes(raw)


def members(policy) -> bytes:
    return make_zip(dict(BASE, **{f"f{i}.txt": b"" for i in range(policy.max_members - 1)}))


def too_big(policy) -> bytes:
    # 1 MiB files compress well but stay under the ratio floor: only the total gives them away
    count = policy.max_total_bytes // MiB + 1
    return make_zip(dict(BASE, **{f"d{i}.bin": b"\0" * MiB for i in range(count)}))


# name -> (zip bytes for a policy, what the message says)
HOSTILE = {
    "escape": (lambda p: make_zip(dict(BASE, **{"../evil.py": SOURCE})), "'..' is not allowed"),
    "escape-deep": (lambda p: make_zip(dict(BASE, **{"a/../../evil.py": SOURCE})), "'..' is not allowed"),
    "absolute": (lambda p: make_zip(dict(BASE, **{"/etc/cron.d/evil": SOURCE})), "absolute paths are not allowed"),
    "drive": (lambda p: make_zip(dict(BASE, **{"C:\\evil.py": SOURCE})), "absolute paths are not allowed"),
    "symlink": (lambda p: make_zip(BASE, [with_mode("data/secret", 0o120777)]), "symbolic link"),
    "fifo": (lambda p: make_zip(BASE, [with_mode("data/pipe", 0o010644)]), "special file"),
    "device": (lambda p: make_zip(BASE, [with_mode("data/dev", 0o020644)]), "special file"),
    "nested": (lambda p: make_zip(dict(BASE, **{"inner.zip": make_zip(BASE)})), "another archive"),
    "duplicate": (lambda p: make_zip(BASE, [(zipfile.ZipInfo("tiny.py"), SOURCE)]), "tiny.py twice"),
    "bomb": (lambda p: make_zip(dict(BASE, **{"zeros.bin": b"\0" * (5 * MiB)})), "looks like a zip bomb"),
    "bad-crc": (lambda p: bad_crc(), "is damaged"),
    "bad-zlib": (lambda p: bad_zlib(), "is damaged"),
    "lying-size": (lambda p: lying_size(), "is damaged"),
    "too-many-members": (members, "entries; at most"),
    "too-big": (too_big, "unpacks to more than"),
    "bad-name": (lambda p: make_zip(dict(BASE, **{"data/$(rm -rf).txt": b"x"})), "unsupported characters"),
}


def policy_message(data: bytes, policy) -> str:
    with pytest.raises(ZipRefused) as caught, ziparchive.open_zip(data, NAME, policy) as archive:
        archive.read()
    return caught.value.message


def engine_message(data: bytes) -> str:
    with pytest.raises(SubmissionError) as caught:
        decode(NAME, data, module="tiny")
    return str(caught.value)


def web_message(data: bytes) -> str:
    with pytest.raises(UploadRejected) as caught:
        check_upload(SimpleUploadedFile(NAME, data), ["zip"])
    return caught.value.message


def pack_message(data: bytes, course, instructor) -> str:
    with pytest.raises(PackRejected) as caught:
        packs.receive(course, instructor, SimpleUploadedFile(NAME, data))
    return caught.value.message


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(HOSTILE))
def test_the_same_hostile_zip_is_refused_with_the_same_message_everywhere(case, course, instructor, settings, tmp_path):
    settings.PACK_STORE = tmp_path / "packs"
    build, says = HOSTILE[case]
    submission_zip = build(SUBMISSIONS)
    expected = policy_message(submission_zip, SUBMISSIONS)
    assert says in expected and expected.startswith(f"'{NAME}'")
    assert engine_message(submission_zip) == expected
    assert web_message(submission_zip) == expected
    # a pack has a larger budget of the same policy: the size cases are scaled to it
    pack_policy = ziparchive.pack_policy(packs.max_pack_bytes())
    pack_zip = build(pack_policy)
    pack_expected = policy_message(pack_zip, pack_policy)
    assert says in pack_expected
    if pack_zip == submission_zip:
        assert pack_expected == expected
    assert pack_message(pack_zip, course, instructor) == pack_expected
    assert not packs.PackUpload.objects.exists()
    assert not any(p.is_file() for p in (tmp_path / "packs").rglob("*"))


def _accepted_by_both(data: bytes) -> None:
    check_upload(SimpleUploadedFile(NAME, data), ["zip"])
    assert decode(NAME, data, module="tiny").main == "tiny.py"


def _refused_by_both(data: bytes) -> str:
    message = engine_message(data)
    assert web_message(data) == message
    return message


def test_the_upload_limit_and_the_engine_limit_agree():
    """The web checks a zip with the engine's own policy: at each limit both accept, one past it
    both refuse; and the web's upload size limit is within the engine's archive limit."""
    assert django_settings.SUBMISSION_MAX_BYTES <= SUBMISSIONS.max_archive_bytes
    code = {"tiny.py": SOURCE}
    # unpacked total: exactly at the limit, then one byte more
    at_limit = dict(code, **{f"d{i}.bin": b"\0" * MiB for i in range(SUBMISSIONS.max_total_bytes // MiB - 1)})
    at_limit["last.bin"] = b"\0" * (MiB - len(SOURCE))
    assert sum(map(len, at_limit.values())) == SUBMISSIONS.max_total_bytes
    _accepted_by_both(make_zip(at_limit))
    at_limit["last.bin"] += b"\0"
    assert "unpacks to more than 20 MiB" in _refused_by_both(make_zip(at_limit))
    # the web's old limit (50 MB unpacked) is gone: 30 MB is refused by both
    assert "unpacks to more than" in _refused_by_both(
        make_zip(dict(code, **{f"d{i}.bin": b"\0" * MiB for i in range(30)})))
    # member count
    entries = dict(code, **{f"f{i}.txt": b"" for i in range(SUBMISSIONS.max_members - 1)})
    _accepted_by_both(make_zip(entries))
    entries["one-more.txt"] = b""
    assert "at most 200 are allowed" in _refused_by_both(make_zip(entries))
    # compression ratio of one large file
    _accepted_by_both(make_zip(dict(code, **{"noise.bin": random.Random(0).randbytes(2 * MiB)})))
    assert "zip bomb" in _refused_by_both(make_zip(dict(code, **{"zeros.bin": b"\0" * (2 * MiB)})))


@pytest.mark.parametrize("kind", ["py", "ipynb"])
def test_the_web_never_accepts_a_file_the_engine_refuses_for_its_size(kind):
    """A .py or .ipynb the engine would refuse for its size is refused at upload, with the size."""
    from grader.intake.submission import MAX_NOTEBOOK_BYTES, MAX_SOURCE_BYTES

    limit = {"py": MAX_SOURCE_BYTES, "ipynb": MAX_NOTEBOOK_BYTES}[kind]
    if kind == "py":
        body = b"x = 1\n" + b"#" * (limit + 1)
    else:
        body = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5, "pad": "' + b"a" * limit + b'"}'
    with pytest.raises(SubmissionError):
        decode(f"big.{kind}", body, module="attention")
    if limit < django_settings.SUBMISSION_MAX_BYTES:
        with pytest.raises(UploadRejected) as exc:
            check_upload(SimpleUploadedFile(f"big.{kind}", body), [kind])
        assert exc.value.code == "too_large" and "the limit is" in str(exc.value)


@pytest.mark.parametrize("links_or_special", [0o120777, 0o010644, 0o020644, 0o060644, 0o140644])
def test_links_and_special_files_are_refused_by_one_rule(links_or_special):
    data = make_zip(BASE, [with_mode("x/y", links_or_special)])
    assert _refused_by_both(data) == policy_message(data, ziparchive.pack_policy(20 * MiB))
