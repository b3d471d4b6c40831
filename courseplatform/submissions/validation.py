"""Cheap checks on an uploaded file before anything is stored. The engine re-checks everything.

Each check raises UploadRejected with a message a student can act on. Files are read in
chunks from Django's UploadedFile (spooled to disk above FILE_UPLOAD_MAX_MEMORY_SIZE); the
size limit is also enforced while the upload streams in (see uploads.py).
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.template.defaultfilters import filesizeformat

from grader.api import (MAX_NOTEBOOK_BYTES, MAX_SOURCE_BYTES, SUBMISSIONS, SubmissionError, ZipRefused, decode,
                        load_notebook_json, load_pack, open_zip)

KINDS = ("py", "ipynb", "zip")


class UploadRejected(Exception):
    def __init__(self, message: str, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class CheckedFile:
    name: str
    kind: str
    size: int
    sha256: str


def max_bytes(kind: str | None = None) -> int:
    """The largest upload of a kind: the site's SUBMISSION_MAX_BYTES, and never more than the engine
    decodes (so the web never accepts a file that grading then refuses)."""
    site = int(settings.SUBMISSION_MAX_BYTES)
    engine = {"py": MAX_SOURCE_BYTES, "ipynb": MAX_NOTEBOOK_BYTES, "zip": SUBMISSIONS.max_archive_bytes}.get(kind)
    return min(site, engine) if engine else site


def kind_of(name: str) -> str:
    suffix = PurePosixPath(name or "").suffix.lower().lstrip(".")
    return suffix


def safe_name(name: str) -> str:
    """The base name only, printable, at most 120 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip() or "submission"
    if len(base) > 120:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 120 - len(ext) - 1] + "." + ext) if dot else base[:120]
    return base


def check_upload(upload, accepted_kinds) -> CheckedFile:
    """Validate an UploadedFile (name, size, chunks()); returns its kind, size and hash."""
    if upload is None:
        raise UploadRejected("Choose a file to upload.", "missing")
    name = safe_name(upload.name)
    kind = kind_of(name)
    accepted = [k.lower() for k in (accepted_kinds or KINDS)]
    if kind not in accepted:
        shown = ", ".join("." + k for k in accepted)
        raise UploadRejected(
            f"“{name}” is not a file this assignment accepts: upload one of {shown}.", "extension"
        )
    limit = max_bytes(kind)
    if upload.size is not None and upload.size > limit:
        raise UploadRejected(
            f"“{name}” is {filesizeformat(upload.size)}; the limit is {filesizeformat(limit)}.", "too_large"
        )
    if not upload.size:
        raise UploadRejected(f"“{name}” is empty.", "empty")
    digest = hashlib.sha256()
    size = 0
    for chunk in upload.chunks():
        size += len(chunk)
        if size > limit:
            raise UploadRejected(f"“{name}” is larger than the limit of {filesizeformat(limit)}.", "too_large")
        digest.update(chunk)
    if size == 0:
        raise UploadRejected(f"“{name}” is empty.", "empty")
    upload.seek(0)
    try:
        if kind == "py":
            _check_py(name, upload)
        elif kind == "ipynb":
            _check_ipynb(name, upload)
        elif kind == "zip":
            _check_zip(name, upload)
    except UploadRejected:
        raise
    except (RecursionError, MemoryError):
        raise UploadRejected(f"“{name}” is too deeply nested or too large to be read.", "unreadable") from None
    except Exception as exc:  # noqa: BLE001  a parser that trips over malformed bytes: refuse, never 500
        raise UploadRejected(
            f"“{name}” could not be read: it is damaged or not a valid .{kind} file ({type(exc).__name__}).",
            "unreadable",
        ) from None
    upload.seek(0)
    return CheckedFile(name=name, kind=kind, size=size, sha256=digest.hexdigest())


def _read_all(upload) -> bytes:
    upload.seek(0)
    return b"".join(upload.chunks())


def _check_py(name, upload) -> None:
    data = _read_all(upload)
    if b"\x00" in data:
        raise UploadRejected(f"“{name}” is not a Python source file (it contains binary data).", "not_text")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UploadRejected(
            f"“{name}” is not UTF-8 text (byte {exc.start}); save it as UTF-8 and upload again.", "not_text"
        ) from None


def _check_ipynb(name, upload) -> None:
    data = _read_all(upload)
    try:
        text = data.decode("utf-8")
        nb = json.loads(text)
    except RecursionError:
        raise UploadRejected(f"“{name}” is not a valid notebook: it is nested too deeply.", "bad_notebook") from None
    except (UnicodeDecodeError, ValueError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise UploadRejected(
            f"“{name}” is not a valid notebook: it is not JSON{where}. Download it again from Jupyter "
            "(File → Download as → Notebook .ipynb).",
            "bad_notebook",
        ) from None
    if not isinstance(nb, dict):
        raise UploadRejected(f"“{name}” is not a valid notebook: the JSON is not an object.", "bad_notebook")
    major = nb.get("nbformat")
    if major != 4:
        shown = major if isinstance(major, int) else "unknown"
        raise UploadRejected(
            f"“{name}” uses notebook format {shown}; only format 4 is accepted. Open it in a current "
            "Jupyter and save it again.",
            "nbformat",
        )
    import nbformat  # heavy (jsonschema, ~0.2 s): imported on the first notebook upload, not by every web process

    try:
        notebook = nbformat.from_dict(nb)
        nbformat.validate(notebook)
    except Exception as exc:  # nbformat.ValidationError and malformed structures
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UploadRejected(f"“{name}” is not a valid format-4 notebook: {first}", "bad_notebook") from None
    try:  # then the engine's own checks (depth, value count, cell types, lone surrogates)
        load_notebook_json(text, name)
    except SubmissionError as exc:
        raise UploadRejected(str(exc), "bad_notebook") from None
    if not any(cell.get("cell_type") == "code" for cell in nb.get("cells", [])):
        raise UploadRejected(f"“{name}” has no code cells.", "bad_notebook")


def _check_zip(name, upload) -> None:
    """The engine's own zip policy (grader.intake.ziparchive.SUBMISSIONS), every entry unpacked within
    its budget, so the web never accepts a zip the engine refuses."""
    try:
        with open_zip(upload, name, SUBMISSIONS) as archive:
            for _ in archive.files():
                pass
            paths = archive.paths
    except ZipRefused as exc:
        raise UploadRejected(exc.message, exc.code) from None
    if not any(kind_of(path) in ("py", "ipynb") for path in paths):
        raise UploadRejected(f"“{name}” contains no .py or .ipynb file.", "bad_zip")


@functools.lru_cache(maxsize=64)
def _pack_module(pack_path: str) -> str | None:
    try:
        return str(load_pack(Path(pack_path)).meta.get("module") or "") or None
    except Exception:
        return None


def engine_check(upload, checked: CheckedFile, pack_path: str, accepted) -> None:
    """The engine's own trusted-side decoding (no student code runs): catches what only the pack
    knows, e.g. a zip without the module the pack imports. Skipped when the pack cannot be read."""
    module = _pack_module(pack_path) if pack_path else None
    if module is None:
        return
    try:
        decode(checked.name, _read_all(upload), module=module, accepted=tuple(accepted))
    except SubmissionError as exc:
        raise UploadRejected(str(exc), "engine_refused") from None
    finally:
        upload.seek(0)
