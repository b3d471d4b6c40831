"""The engine's exceptions, in one module that imports nothing, so every part of ``grader`` (and the
web) can import them at the top of a file without pulling in the module that raises them.

- ``PackError``: an assignment pack is invalid (``assignment.toml``, ``[forbid]``, ``tests.py``);
  the message names the file and field. Raised while a pack is loaded or checked.
- ``SubmissionError``: a submission cannot be graded (bad upload, unsafe zip, broken notebook);
  the message is shown to the student.
- ``GraderError``: an infrastructure fault (sandbox unavailable, invalid pack at grading time):
  retry or alert, never blame the student.
"""
from __future__ import annotations


class PackError(Exception):
    """The pack is invalid; the message names the file and field."""


class SubmissionError(Exception):
    """The submission cannot be graded; the message is shown to the student. ``code`` classifies the
    refusal (the web's upload codes: not_text, bad_notebook, zip_escape, zip_bomb, too_large, ...);
    ``detail`` holds what a caller may word differently (a byte position, a JSON line and column)."""

    code = "engine_refused"

    def __init__(self, message: str = "", code: str | None = None, **detail):
        super().__init__(message)
        if code:
            self.code = code
        self.detail = detail


class GraderError(Exception):
    """An infrastructure fault (sandbox unavailable, invalid pack): retry or alert, never blame the student."""
