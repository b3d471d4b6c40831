"""Cleaning of student-controlled text, done once, when the engine builds a result.

Everything a submission can influence (exception messages, tracebacks, printed output, notes,
type names, metric and artifact names) ends up in the result dict, which is stored as JSON in
PostgreSQL, printed by the CLI and rendered in pages. ``clean_result`` makes every string in it:

* valid Unicode that encodes to UTF-8 (lone surrogates become U+FFFD),
* free of NUL and of C0/C1 control characters except newline and tab (no ESC, so no terminal
  escape sequences such as OSC 52 or cursor movement; carriage returns become newlines),
* free of the Unicode bidirectional overrides/isolates that can make text read differently
  from what it is (a fake "10/10"),

and every float finite (``NaN``/``inf`` are not JSON and PostgreSQL refuses them): non-finite
floats become ``None``. It is idempotent, so cleaning an already clean result changes nothing.
"""
from __future__ import annotations

import math
import re

REPLACEMENT = "\ufffd"

# C0 except \t and \n (\r handled first), DEL, C1, bidi embeddings/overrides/isolates
_BAD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")

MAX_DEPTH = 32


def clean(value) -> str:
    """A safe version of one student-controlled string (anything else is converted with str())."""
    if not isinstance(value, str):
        try:
            value = str(value)
        except Exception:  # noqa: BLE001  a hostile __str__
            return "<unprintable>"
    if type(value) is not str:  # a str subclass: take its plain characters, never its methods
        value = str.__str__(value)
    if _SURROGATE.search(value):
        value = _SURROGATE.sub(REPLACEMENT, value)
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if _BAD.search(value):
        value = _BAD.sub("", value)
    return value


def clean_result(value, _depth: int = 0):
    """A copy of a result (dicts, lists, strings, numbers) with every string and key cleaned."""
    if _depth > MAX_DEPTH:
        return None
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {clean(k): clean_result(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_result(v, _depth + 1) for v in value]
    return clean(value)
