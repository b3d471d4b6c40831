"""The engine entry point every kind grades with (settings.GRADE_FUNCTION, a dotted path; tests and
benchmarks swap in a stand-in)."""
from __future__ import annotations

import importlib
import inspect

from django.conf import settings


def grade_function():
    module, _, name = settings.GRADE_FUNCTION.rpartition(".")
    return getattr(importlib.import_module(module), name)


def is_real_engine() -> bool:
    return settings.GRADE_FUNCTION == "grader.api.grade"


def takes_decoded() -> bool:
    """Whether the engine in use accepts the upload's decoded form (grader.api.grade's ``decoded``);
    stand-ins that take the file's bytes only get the bytes."""
    try:
        return "decoded" in inspect.signature(grade_function()).parameters
    except (TypeError, ValueError):
        return False
