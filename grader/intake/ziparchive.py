"""The one zip-safety policy: every zip the platform opens (a student's .zip submission in the
engine, the same zip when the web checks the upload, an instructor's pack zip, a group's project
delivery) goes through here.

Nothing is trusted: neither the names, the modes nor the sizes the headers declare. A zip is
refused, with one message for the person who uploaded it, when it

- is not a zip, is larger than ``max_archive_bytes``, or has more than ``max_members`` entries;
- has an absolute path (``/x``, ``C:x``, a backslash), a ``..`` part, a NUL byte or a character
  outside ``[A-Za-z0-9_.- ]`` in a file name (code the sandbox imports); a delivery, stored as it
  is and never unpacked to disk, keeps people's file names ("Report (final).pdf", "Präsentation.pptx")
  and refuses only control characters and the characters that no file system accepts;
- holds a symbolic link, a special file (FIFO, device, socket), an encrypted entry, another
  archive (.zip, .tar, .gz, ...), or the same file twice;
- declares or unpacks to more than ``max_member_bytes`` in one file or ``max_total_bytes`` in all,
  or a file over ``ratio_floor`` bytes compresses more than ``max_ratio``:1 (a zip bomb);
- has a damaged entry (bad CRC, broken deflate stream, a size that does not match).

Junk that archivers add (``__MACOSX/``, ``.DS_Store``, ``._*``, ``__pycache__/``, ``.pyc``,
``.ipynb_checkpoints/``, ``.git/``) is skipped, not refused, but its names are still checked.

A pack gets a larger budget through the same policy object (``dataclasses.replace``), never a
second implementation. Django-free: the web app imports it, the engine runs it.
"""
from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

MiB = 1024 * 1024
ARCHIVES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".whl", ".egg", ".jar")
JUNK_PARTS = frozenset({"__MACOSX", "__pycache__", ".ipynb_checkpoints", ".git", ".DS_Store"})
_SAFE_PART = re.compile(r"^[A-Za-z0-9_.\- ]+$")
_UNPORTABLE = frozenset('\\:*?"<>|')


def _name_ok(part: str, policy: ZipPolicy) -> bool:
    if policy.code_names:
        return bool(_SAFE_PART.match(part))
    return part.isprintable() and part.strip() == part and not _UNPORTABLE.intersection(part)
# what zipfile/zlib raise on malformed bytes (never a crash: always a refusal)
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError)


@dataclass(frozen=True)
class ZipPolicy:
    max_archive_bytes: int = 20 * MiB   # the zip file itself
    max_members: int = 200              # entries in the central directory, folders and junk included
    max_member_bytes: int = 20 * MiB    # one file, unpacked
    max_total_bytes: int = 20 * MiB     # all files, unpacked
    max_ratio: int = 100                # unpacked : packed, per file ...
    ratio_floor: int = 1 * MiB          # ... above this unpacked size (small text files compress well)
    code_names: bool = True             # names limited to [A-Za-z0-9_.- ] (False: any printable name)


# Student submissions: the engine decodes with this, and the web checks uploads with it, so the
# web never accepts a zip that the engine refuses.
SUBMISSIONS = ZipPolicy()


def pack_policy(max_archive_bytes: int) -> ZipPolicy:
    """An instructor's pack zip: the same rules, a larger budget (data files)."""
    return ZipPolicy(max_archive_bytes=max_archive_bytes, max_members=500, max_member_bytes=100 * MiB,
                     max_total_bytes=100 * MiB, max_ratio=200)


def delivery_policy(max_archive_bytes: int) -> ZipPolicy:
    """A group's project delivery (a report, slides, code, data): the same rules, the site's budget
    for a delivery, more entries."""
    return ZipPolicy(max_archive_bytes=max_archive_bytes, max_members=1000, max_member_bytes=max(max_archive_bytes, 20 * MiB),
                     max_total_bytes=max(4 * max_archive_bytes, 20 * MiB), code_names=False)


def check_all(source: bytes | BinaryIO, label: str, policy: ZipPolicy) -> list[str]:
    """Check a zip against ``policy`` and unpack every entry within its budget (nothing is kept):
    the files it holds, or ZipRefused. For a zip that is stored as it is (a delivery)."""
    with open_zip(source, label, policy) as archive:
        for _ in archive.files():
            pass
        return list(archive.paths)


class ZipRefused(Exception):
    """A zip the policy refuses; ``message`` is for the uploader, ``code`` classifies it."""

    def __init__(self, message: str, code: str = "bad_zip"):
        super().__init__(message)
        self.message = message
        self.code = code


def _mib(n: int) -> str:
    return f"{n / MiB:g} MiB"


def _junk(parts: list[str]) -> bool:
    return any(p in JUNK_PARTS or p.startswith("._") for p in parts) or parts[-1].endswith(".pyc")


def _member_problem(info: zipfile.ZipInfo, label: str) -> ZipRefused | None:
    """Path, type and encryption of one entry, junk included."""
    name = info.filename
    shown = name[:80]
    if "\x00" in name:
        return ZipRefused(f"'{label}' contains a file name with a NUL byte.", "zip_escape")
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return ZipRefused(f"'{label}' contains an absolute path ({shown}); absolute paths are not allowed.",
                          "zip_escape")
    if ".." in name.split("/"):
        return ZipRefused(f"'{label}' contains an unsafe path ({shown}): '..' is not allowed "
                          "(it escapes the folder).", "zip_escape")
    mode = (info.external_attr >> 16) & 0xFFFF
    if stat.S_ISLNK(mode):
        return ZipRefused(f"'{label}' contains a symbolic link ({shown}); links are not allowed.", "zip_escape")
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return ZipRefused(f"'{label}' contains a special file ({shown}); only regular files are allowed.",
                          "zip_escape")
    if info.flag_bits & 0x1:
        return ZipRefused(f"'{label}' contains an encrypted entry ({shown}).", "zip_escape")
    return None


class CheckedZip:
    """A zip whose central directory passed the policy: ``paths`` are the files it holds (junk
    left out, normalised, in archive order); ``files()`` unpacks them one by one, each within its
    budget, never trusting the declared sizes beyond one byte."""

    def __init__(self, archive: zipfile.ZipFile, label: str, policy: ZipPolicy,
                 members: list[tuple[str, zipfile.ZipInfo]]):
        self._archive = archive
        self.label = label
        self.policy = policy
        self._members = members
        self.paths = [path for path, _ in members]

    def files(self) -> Iterator[tuple[str, bytes]]:
        label = self.label
        for path, info in self._members:
            try:
                with self._archive.open(info) as fh:  # the declared size is within budget (checked)
                    content = fh.read(info.file_size + 1)
            except _READ_ERRORS as exc:
                raise ZipRefused(f"'{label}': entry {path[:80]} is damaged and cannot be unpacked "
                                 f"({str(exc)[:120] or type(exc).__name__}).") from None
            if len(content) != info.file_size:
                raise ZipRefused(f"'{label}': entry {path[:80]} is damaged (its size does not match).")
            yield path, content

    def read(self) -> dict[str, bytes]:
        return dict(self.files())

    def close(self) -> None:
        self._archive.close()

    def __enter__(self) -> CheckedZip:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_zip(source: bytes | BinaryIO, label: str, policy: ZipPolicy = SUBMISSIONS) -> CheckedZip:
    """Check a zip's directory against ``policy``; raises ZipRefused. ``source`` is the bytes or a
    seekable binary file (e.g. Django's UploadedFile). Unpack with ``.files()`` or ``.read()``."""
    fh = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        fh.seek(0, io.SEEK_END)
        size = fh.tell()
        fh.seek(0)
    except (OSError, ValueError):
        raise ZipRefused(f"'{label}' cannot be read.") from None
    if size > policy.max_archive_bytes:
        raise ZipRefused(f"'{label}' is larger than {_mib(policy.max_archive_bytes)}, the limit for a zip.",
                         "too_large")
    try:
        archive = zipfile.ZipFile(fh)
        infos = archive.infolist()
    except _READ_ERRORS as exc:
        raise ZipRefused(f"'{label}' is not a valid zip archive ({str(exc)[:120] or type(exc).__name__}).") from None
    try:
        return CheckedZip(archive, label, policy, _check_directory(infos, label, policy))
    except BaseException:
        archive.close()
        raise


def _check_directory(infos: list[zipfile.ZipInfo], label: str, policy: ZipPolicy) -> list[tuple[str, zipfile.ZipInfo]]:
    if len(infos) > policy.max_members:
        raise ZipRefused(f"'{label}' has {len(infos)} entries; at most {policy.max_members} are allowed.", "zip_bomb")
    members: list[tuple[str, zipfile.ZipInfo]] = []
    seen: set[str] = set()
    declared = 0
    for info in infos:
        problem = _member_problem(info, label)
        if problem:
            raise problem
        parts = [p for p in info.filename.split("/") if p not in ("", ".")]
        if info.is_dir() or not parts or _junk(parts):
            continue
        path = "/".join(parts)
        shown = path[:80]
        if not all(_name_ok(p, policy) for p in parts):
            raise ZipRefused(f"'{label}' contains a file name with unsupported characters ({shown}).", "zip_escape")
        if path.lower().endswith(ARCHIVES):
            raise ZipRefused(f"'{label}' contains another archive ({shown}); zip your files directly, "
                             "not an archive inside an archive.", "zip_escape")
        if path in seen:
            raise ZipRefused(f"'{label}' contains {shown} twice.")
        seen.add(path)
        if info.file_size > policy.max_member_bytes:
            raise ZipRefused(f"'{label}': {shown} unpacks to more than {_mib(policy.max_member_bytes)}.", "zip_bomb")
        declared += info.file_size
        if declared > policy.max_total_bytes:
            raise ZipRefused(f"'{label}' unpacks to more than {_mib(policy.max_total_bytes)}.", "zip_bomb")
        ratio = info.file_size // max(info.compress_size, 1)
        if info.file_size > policy.ratio_floor and ratio > policy.max_ratio:
            raise ZipRefused(f"'{label}' looks like a zip bomb ({shown} compresses {ratio}:1).", "zip_bomb")
        members.append((path, info))
    if not members:
        raise ZipRefused(f"'{label}' contains no files.")
    return members
