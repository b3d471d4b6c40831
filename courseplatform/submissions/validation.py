"""Checks on an uploaded file before anything is stored, through the engine's one intake.

The upload is read once (within its limit, hashed as it is read) and decoded once by the engine
(grader.intake.submission.take); the page's own rules (an accepted extension, notebook format 4, a code
cell, code in a zip) look at that intake, and the pack's decoding (engine_check) starts from it.
Each check raises UploadRejected with a message a student can act on. The size limit is also
enforced while the upload streams in (see uploads.py).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.template.defaultfilters import filesizeformat

from grader.api import (MAX_NOTEBOOK_BYTES, MAX_SOURCE_BYTES, SUBMISSIONS, Decoded, Intake, SubmissionError, decoded_key,
                        load_pack, read_bounded, take)

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
    intake: Intake | None = None    # the upload read, hashed and decoded once (grader.intake.submission.take)
    decoded: Decoded | None = None  # its sandbox files for the pack (engine_check), kept for the worker
    decoded_key: str = ""           # what the decoded form depends on (grader.intake.submission.decoded_key)


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
    """Validate an UploadedFile (name, size, chunks()) through the engine's one intake: read once
    within the limit and hashed, then decoded and checked once (grader.intake.submission.take: a notebook's
    bounded walk first, nbformat's validation after it; a zip by the zip policy). Returns its kind,
    size, hash and the intake."""
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
    try:
        data, sha256 = read_bounded(upload, limit)
    except SubmissionError:
        raise UploadRejected(f"“{name}” is larger than the limit of {filesizeformat(limit)}.", "too_large") from None
    finally:
        upload.seek(0)
    if not data:
        raise UploadRejected(f"“{name}” is empty.", "empty")
    try:
        intake = take(name, data, accepted=tuple(accepted), require_v4=True, sha256=sha256)
    except SubmissionError as exc:
        raise _rejected(exc, name, kind) from None
    if kind == "ipynb" and not intake.code_cells:
        raise UploadRejected(f"“{name}” has no code cells.", "bad_notebook")
    if kind == "zip" and not any(kind_of(path) in ("py", "ipynb") for path in intake.paths):
        raise UploadRejected(f"“{name}” contains no .py or .ipynb file.", "bad_zip")
    return CheckedFile(name=name, kind=kind, size=intake.size, sha256=intake.sha256, intake=intake)


_NOT_JSON = ("“{name}” is not a valid notebook: it is not JSON{where}. Download it again from Jupyter "
             "(File → Download as → Notebook .ipynb).")


def _rejected(exc: SubmissionError, name: str, kind: str) -> UploadRejected:
    """The engine's refusal in the upload page's words (and codes)."""
    code, detail = exc.code, exc.detail
    if code == "not_text" and kind == "py":
        if detail.get("nul"):
            return UploadRejected(f"“{name}” is not a Python source file (it contains binary data).", "not_text")
        return UploadRejected(f"“{name}” is not UTF-8 text (byte {detail.get('position')}); save it as UTF-8 and "
                              "upload again.", "not_text")
    if kind == "ipynb" and (code == "not_text" or "json_error" in detail):
        where = detail.get("json_error")
        return UploadRejected(_NOT_JSON.format(name=name, where=f" (line {where[0]}, column {where[1]})" if where else ""),
                              "bad_notebook")
    if code == "nbformat":
        major = detail.get("major")
        return UploadRejected(
            f"“{name}” uses notebook format {major if isinstance(major, int) else 'unknown'}; only format 4 is "
            "accepted. Open it in a current Jupyter and save it again.", "nbformat")
    if code == "bad_notebook":
        reason = detail.get("first_line") or str(exc).split("is not a valid notebook: ", 1)[-1]
        return UploadRejected(f"“{name}” is not a valid format-4 notebook: {reason}", "bad_notebook")
    if code == "unreadable":
        if detail.get("nested"):
            return UploadRejected(f"“{name}” is too deeply nested or too large to be read.", "unreadable")
        return UploadRejected(f"“{name}” could not be read: it is damaged or not a valid .{kind} file "
                              f"({detail.get('error')}).", "unreadable")
    if code in ("zip_escape", "zip_bomb", "bad_zip", "too_large") and kind == "zip":
        return UploadRejected(str(exc), code)
    return UploadRejected(str(exc), "engine_refused")


@functools.lru_cache(maxsize=64)
def pack_facts(pack_path: str) -> tuple[str, bool] | None:
    """(module, import_module) of the pack at pack_path (a trusted copy, named by its hash), or None
    when it cannot be read."""
    try:
        meta = load_pack(Path(pack_path)).meta
    except Exception:
        return None
    module = str(meta.get("module") or "")
    return (module, bool(meta.get("import_module", True))) if module else None


def engine_check(upload, checked: CheckedFile, pack_path: str, accepted) -> None:
    """The engine's own trusted-side decoding for the pack (no student code runs), from the intake
    (nothing is read or parsed again): catches what only the pack knows, e.g. a zip without the
    module the pack imports. The decoded form is kept on ``checked`` for the worker. Skipped when
    the pack cannot be read."""
    facts = pack_facts(pack_path) if pack_path else None
    if facts is None:
        return
    module, import_module = facts
    intake = checked.intake
    if intake is None:  # a CheckedFile made without check_upload
        intake = take(checked.name, read_bounded(upload, max_bytes(checked.kind))[0], accepted=tuple(accepted))
        upload.seek(0)
    try:
        checked.decoded = intake.decode(module, import_module)
    except SubmissionError as exc:
        raise UploadRejected(str(exc), "engine_refused") from None
    checked.decoded_key = decoded_key(module, import_module, tuple(accepted))
