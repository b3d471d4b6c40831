"""Feedback artifacts as files: what the engine returns inside its result (``artifacts``: name,
content_type, data_b64; e.g. the executed notebook and its plot) is stored in MEDIA_ROOT by content
hash (ARTIFACT_DIR/<ab>/<sha256>, immutable) when the result is saved, and the result keeps only
name, content_type, sha256 and size. The pages, the download and the API read the file.

The rendered HTML of a notebook artifact (nbconvert + the site's sanitiser: notebooks.render) is
cached beside it, by the artifact's hash and RENDER_VERSION, so that it is rendered once, not on
every view. Bump RENDER_VERSION whenever notebooks.render or the sanitiser's "notebook" allow-list
changes, so that no page shows HTML cleaned by older rules.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re

from . import notebooks
from .services import blob_path, write_once

ARTIFACT_DIR = "artifacts"
RENDER_VERSION = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def artifact_path(sha256: str) -> str:
    return f"{ARTIFACT_DIR}/{sha256[:2]}/{sha256}"


def store(result: dict) -> dict:
    """The result with every artifact's bytes moved into a file (data_b64 replaced by sha256 and
    size). An artifact whose data is not base64 keeps its name and type, with no file (shown as
    damaged, as before)."""
    artifacts = result.get("artifacts")
    if not isinstance(artifacts, list):
        return result
    kept = []
    for art in artifacts:
        if not isinstance(art, dict) or "data_b64" not in art:
            kept.append(art)
            continue
        art = dict(art)
        encoded = art.pop("data_b64") or ""
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError, TypeError):
            art["damaged"] = True
            kept.append(art)
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        write_once(artifact_path(sha256), lambda out, data=data: out.write(data))
        art.update(sha256=sha256, size=len(data))
        kept.append(art)
    return {**result, "artifacts": kept}


def read(art: dict) -> bytes:
    """An artifact's bytes: from its file (or, for a result not yet migrated, its data_b64).
    Raises ValueError when it is damaged or its file is missing."""
    sha256 = str(art.get("sha256") or "")
    if _SHA256.match(sha256):
        try:
            return blob_path(artifact_path(sha256)).read_bytes()
        except OSError:
            raise ValueError("the artifact's file is missing") from None
    if "data_b64" in art:
        return notebooks.decode(art)
    raise ValueError("the artifact is damaged")


def rendered(art: dict, data: bytes) -> str:
    """The sanitized HTML of a notebook artifact, rendered once per content and RENDER_VERSION and
    kept as a file; raises notebooks.NotebookUnreadable (not kept: rendered again next time)."""
    sha256 = str(art.get("sha256") or "") or hashlib.sha256(data).hexdigest()
    rel = f"{artifact_path(sha256)}.r{RENDER_VERSION}.html"
    path = blob_path(rel)
    try:
        return path.read_text("utf-8")
    except OSError:
        pass
    html = notebooks.render(data)
    write_once(rel, lambda out: out.write(html.encode("utf-8")))
    return html
