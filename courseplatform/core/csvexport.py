"""The one way the site writes CSV: every export (gradebook, attendance, set-password links, the
assignment export's index.csv) builds rows and passes them here.

A spreadsheet runs a cell that starts with =, +, -, @ (or a tab / carriage return before one) as a
formula (CSV injection), so such a text cell gets a leading apostrophe. Numbers are written as
they are (a negative score is data, not a formula); everything else is text.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from django.http import HttpResponse

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    return "'" + text if text[:1] in FORMULA_START else text


def csv_text(rows: Iterable[Iterable]) -> str:
    """RFC 4180 text (CRLF line ends, quoting by the csv module), every cell made safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell(c) for c in row])
    return out.getvalue()


def csv_response(filename: str, rows: Iterable[Iterable]) -> HttpResponse:
    """A CSV download (UTF-8)."""
    response = HttpResponse(csv_text(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
