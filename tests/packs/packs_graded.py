"""One grade per pack file and test session.

test_packs_generic.py grades every reference, starter, solution and mutant of every pack against
its recorded result; the per-pack tests then check more of the same results (metrics, notes, which
test failed and why). Grading is deterministic (the determinism gate, tests/grader/test_determinism.py,
grades every file repeatedly, in shuffled orders and under load, and fails on any change), so both
assert on one grade of each file instead of running the slow packs' files (a notebook executed in
its kernel, a model trained) twice. Each caller gets its own deep copy.
"""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path

from grader.api import grade

_RESULTS: dict[tuple[str, str, str], dict] = {}


def grade_bytes(pack_dir, filename: str, data: bytes) -> dict:
    key = (str(Path(pack_dir).resolve()), filename, hashlib.sha256(data).hexdigest())
    if key not in _RESULTS:
        _RESULTS[key] = grade(pack_dir, filename, data)
    return copy.deepcopy(_RESULTS[key])


def grade_file(pack_dir, rel: str) -> dict:
    """A file of the pack (``mutants/x.py``), graded under its own name, as a student would upload it."""
    path = Path(pack_dir) / rel
    return grade_bytes(pack_dir, path.name, path.read_bytes())
