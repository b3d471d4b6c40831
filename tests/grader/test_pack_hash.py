"""A pack's identity (grader.authoring.pack.pack_hash) is its files' paths and contents: the engine's Pack.hash,
the platform's PACK_STORE/<slug>/<hash>/ folder and Assignment.pack_hash are one value."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from grader.authoring.pack import load_pack, pack_hash

ATTENTION = Path(__file__).resolve().parents[2] / "assignments" / "attention"


def test_hash_follows_contents_not_mtimes(tmp_path):
    pack = tmp_path / "attention"
    shutil.copytree(ATTENTION, pack, ignore=shutil.ignore_patterns("__pycache__"))
    first = pack_hash(pack)
    assert load_pack(pack).hash == first
    for path in pack.rglob("*"):  # touching every file changes nothing
        os.utime(path, ns=(1, 1))
    assert pack_hash(pack) == first
    (pack / "data").mkdir(exist_ok=True)
    (pack / "data" / "weights.txt").write_text("1 2 3")
    second = pack_hash(pack)
    assert second != first and load_pack(pack).hash == second  # load_pack's cache sees the new file
    (pack / "data" / "weights.txt").write_text("1 2 4")  # same size, new content
    os.utime(pack / "data" / "weights.txt", ns=(1, 1))
    assert pack_hash(pack) not in (first, second)
    (pack / "handout.md").write_text((pack / "handout.md").read_text() + "\nOne more line.\n")
    assert load_pack(pack).hash == pack_hash(pack)
    (pack / "__pycache__").mkdir()
    (pack / "__pycache__" / "x.pyc").write_bytes(b"\0")
    os.symlink("/etc/passwd", pack / "link.txt")
    assert load_pack(pack).hash == pack_hash(pack)  # caches and symlinks are not part of a pack


def test_sync_stores_the_pack_under_the_engines_hash(tmp_path, settings, course):
    from courseplatform.submissions.sync import sync_pack

    settings.PACK_STORE = str(tmp_path / "store")
    assignment, _ = sync_pack(course, ATTENTION)
    assert assignment.pack_hash == load_pack(ATTENTION).hash
    assert Path(assignment.pack_path).name == assignment.pack_hash
    assert load_pack(assignment.pack_path).hash == assignment.pack_hash  # the trusted copy hashes the same
