"""The packs that grade quiz code questions, in the content-addressed pack store.

A code question names a pack folder relative to the quizzes folder (``pack = "code/stable_softmax"``
in a bank file). Like an assignment's pack, it is graded from a trusted copy, never from the
editable folder: synchronising a bank (``sync_course``, the "Resync" button) copies each code
question's pack to ``PACK_STORE/_quiz/<pack>/<hash>/`` (the engine's content hash,
``grader.api.pack_hash``; written once, by ``grading.packstore.store_pack``) and points
``PACK_STORE/_quiz/<pack>/CURRENT`` at that hash. Editing the folder changes nothing until the
next sync; a regrade after a sync grades with the new version, as for assignments.

A pack no sync has stored yet (a question written in the web editor) is stored on its first use.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from django.conf import settings

from courseplatform.grading.packstore import store_pack
from grader.api import load_pack, pack_hash

STORE_FOLDER = "_quiz"  # PACK_STORE/_quiz/<pack>/<hash>/, apart from the assignments' PACK_STORE/<slug>/
POINTER = "CURRENT"
_HASH = re.compile(r"^[0-9a-f]{64}$")


def _inside(base: Path, pack: str) -> Path:
    """<base>/<pack>, refused when the pack name leads outside base (``..``, an absolute path)."""
    base = base.resolve()
    path = (base / pack).resolve()
    if base not in path.parents:
        raise ValueError(f"pack {pack!r} is outside the quizzes folder")
    return path


def _store_root(pack: str) -> Path:
    return _inside(Path(settings.PACK_STORE) / STORE_FOLDER, pack)


def source_dir(pack: str, root: Path | None = None) -> Path:
    """The editable pack folder: <root>/quizzes/<pack> (root: settings.ASSIGNMENTS_DIR)."""
    return _inside(Path(root if root is not None else settings.ASSIGNMENTS_DIR) / "quizzes", pack)


def publish(pack: str, root: Path | None = None) -> Path:
    """Store the pack's current files (once per content hash) and make them the version that
    grades; returns the trusted folder."""
    source = source_dir(pack, root)
    digest = pack_hash(source)
    trusted = store_pack(f"{STORE_FOLDER}/{pack}", source, digest)
    fd, tmp = tempfile.mkstemp(dir=trusted.parent, prefix=".current-")
    with os.fdopen(fd, "w") as fh:
        fh.write(digest)
    os.replace(tmp, trusted.parent / POINTER)  # atomic: a grader reads the old or the new hash
    return trusted


def publish_bank(parsed: dict, root: Path) -> None:
    """Store the pack of every code question of a parsed bank file (called by the quiz sync)."""
    for pack in sorted({spec["pack"] for spec in parsed["questions"] if spec["type"] == "code"}):
        publish(pack, root)


def trusted_dir(pack: str) -> Path:
    """The stored version of the pack that grades now (PACK_STORE/_quiz/<pack>/<hash>/)."""
    root = _store_root(pack)
    try:
        digest = (root / POINTER).read_text().strip()
    except OSError:
        digest = ""
    if _HASH.match(digest) and (root / digest).is_dir():
        return root / digest
    return publish(pack)


def queue_for(pack: str) -> str:
    """The Celery queue named by the pack's assignment.toml (cpu|gpu); cpu when it cannot be read."""
    try:
        return load_pack(trusted_dir(pack)).meta.get("queue", "cpu")
    except Exception:  # noqa: BLE001 - routing must never lose the answer
        return "cpu"
