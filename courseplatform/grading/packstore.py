"""The trusted pack store: PACK_STORE/<name>/<hash>/, where everything the engine grades is graded from.

A pack is copied here once per content hash (the engine's ``pack_hash``) and never changed, so a pack
change is explicit and a regrade after a sync grades with the new version. Assignments store theirs
as PACK_STORE/<slug>/<hash>/ (submissions/sync.py), quiz code questions as
PACK_STORE/_quiz/<pack>/<hash>/ (quizzes/codepacks.py).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings

from grader.api import pack_files


def store_pack(slug: str, pack_dir: Path, digest: str) -> Path:
    """Copy the pack to PACK_STORE/<slug>/<hash>/ once (atomic rename); returns the trusted path."""
    dest = Path(settings.PACK_STORE) / slug / digest
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{digest[:8]}-"))
    try:
        for rel, path in pack_files(pack_dir):
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process stored the same version
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
