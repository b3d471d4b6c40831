"""The engine entry point every kind grades with (settings.GRADE_FUNCTION, a dotted path; tests and
benchmarks swap in a stand-in)."""
from __future__ import annotations

import importlib

from django.conf import settings


def grade_function():
    module, _, name = settings.GRADE_FUNCTION.rpartition(".")
    return getattr(importlib.import_module(module), name)


def is_real_engine() -> bool:
    return settings.GRADE_FUNCTION == "grader.api.grade"
