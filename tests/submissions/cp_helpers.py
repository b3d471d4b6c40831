"""Helpers shared by the submission tests (a small pack, upload objects, zips)."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

PACK_TOML = """title = "Tiny pack"
points = 10
queue = "{queue}"
module = "tiny"
required = ["double"]
accepted = ["py", "ipynb", "zip"]

[limits]
wall_s = 30
"""
TESTS_PY = '''from grader.authoring import Fail, case


@case(points=6, visible=True)
def visible_case(ctx):
    """double(3) is 6"""
    if ctx.sub.call("double", 3) != 6:
        raise Fail("double(3) should be 6")


@case(points=4, visible=False)
def hidden_case(ctx):
    """double(-21) is -42"""
    if ctx.sub.call("double", -21) != -42:
        raise Fail("wrong for a negative number")
'''


def write_pack(root: Path, slug="tiny", queue="cpu", handout="# Tiny\n\nImplement `double(x)`.\n\n<script>alert(1)</script>\n") -> Path:
    pack = root / slug
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "assignment.toml").write_text(PACK_TOML.format(queue=queue))
    (pack / "handout.md").write_text(handout)
    (pack / "starter.py").write_text("def double(x):\n    raise NotImplementedError\n")
    (pack / "starter.ipynb").write_text(json.dumps(notebook("def double(x):\n    raise NotImplementedError\n")))
    (pack / "reference.py").write_text("def double(x):\n    return 2 * x\n")
    (pack / "tests.py").write_text(TESTS_PY)
    return pack


def notebook(source: str, major: int = 4) -> dict:
    return {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}],
            "metadata": {}, "nbformat": major, "nbformat_minor": 4}


def py(name="tiny.py", text="def double(x):\n    return 2 * x\n# SCORE=10\n") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/x-python")


def zip_bytes(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()
