"""A stand-in for grader.api.grade used by the submission tests (set through
COURSEPLATFORM_GRADE_FUNCTION=cp_fake_grader.grade in worker subprocesses, or monkeypatched).

The submitted text steers it:
  SCORE=<n>        visible test scores min(n, 6) of 6, hidden test the rest of 4
  STATUS=error     an engine result with status "error" (e.g. a syntax error)
  CRASH_ENGINE     raises RuntimeError (an engine bug)
  KILLME           the first time (no sentinel file yet): write the sentinel, then sleep 120 s
With only_visible (a "Check"), the hidden test is neither run nor listed, as in the engine.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path


def grade(pack_dir, filename, data: bytes, only_visible: bool = False, queue: str | None = None) -> dict:
    text = data.decode("utf-8", "replace")
    if "KILLME" in text:
        sentinel = Path(os.environ["FAKE_GRADER_SENTINEL"])
        if not sentinel.exists():
            sentinel.write_text(str(os.getpid()))
            time.sleep(120)
    if "CRASH_ENGINE" in text:
        raise RuntimeError("engine bug")
    if "STATUS=error" in text:
        return {"score": 0, "max_score": 10, "status": "error", "message": "SyntaxError: invalid syntax (line 3)",
                "tests": [], "notes": []}
    m = re.search(r"SCORE=(\d+(?:\.\d+)?)", text)
    score = float(m.group(1)) if m else 10.0
    visible = min(score, 6.0)
    hidden = max(0.0, min(score - 6.0, 4.0))
    if only_visible:
        hidden = 0.0
    result = {
        "score": visible + hidden,
        "max_score": 10.0,
        "status": "graded",
        "message": f"{visible + hidden:g}/10 points.",
        "tests": [
            {"name": "shapes and values on 2-D input", "score": visible, "max_score": 6.0,
             "status": "passed" if visible == 6 else "failed", "message": "" if visible == 6 else "output differs at [0, 1]", "visible": True},
            {"name": "SECRET-CASE large logits (2,3,5,7)", "score": hidden, "max_score": 4.0,
             "status": "passed" if hidden == 4 else "failed", "message": "" if hidden == 4 else "SECRET-MESSAGE inf in row 3", "visible": False},
        ],
        "notes": [],
        "engine": {"pack_hash": "fakepackhash", "sandbox": "fake"},
    }
    if only_visible:
        result["tests"] = [t for t in result["tests"] if t["visible"]]
        result["max_score"] = 6.0
        result["message"] = f"{visible:g}/6 points on the visible tests."
    return result
