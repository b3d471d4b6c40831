"""Submission decoding (.py, .ipynb, .zip) in the trusted process, and through the engine."""
from __future__ import annotations

import io
import json
import zipfile

import nbformat
import pytest

from grader.errors import SubmissionError
from grader.intake.submission import decode
from grader_testutil import ATTENTION, REFERENCE


def make_nb(*sources, markdown=True):
    nb = nbformat.v4.new_notebook()
    if markdown:
        nb.cells.append(nbformat.v4.new_markdown_cell("# My attention homework"))
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    return nbformat.writes(nb).encode()


def make_zip(entries: dict, *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


# ------------------------------------------------------------------ unit: decoding only

def test_py_must_be_utf8_text():
    d = decode("attention.py", REFERENCE.encode(), module="attention")
    assert d.files == {"attention.py": REFERENCE.encode()} and d.notes == []
    with pytest.raises(SubmissionError, match="not UTF-8 text"):
        decode("a.py", b"x = '\xff\xfe'\n", module="attention")
    with pytest.raises(SubmissionError, match="NUL bytes"):
        decode("a.py", b"x = 1\0\n")
    with pytest.raises(SubmissionError, match="not a .py, .ipynb or .zip"):
        decode("a.txt", b"x = 1")
    with pytest.raises(SubmissionError, match="accepts .py files, not .zip"):
        decode("a.zip", b"PK", accepted=["py"])


def test_notebook_magics_and_shell_lines_are_dropped_with_a_note():
    data = make_nb("%matplotlib inline\nimport torch\n!pip install torch", "%%time\nx = 1\nfor i in range(2):\n    !ls\n",
                   "%%bash\necho hi", "y = x + 1")
    d = decode("hw.ipynb", data, module="attention")
    src = d.files["attention.py"].decode()
    assert "%matplotlib" not in src and "!pip" not in src and "echo hi" not in src and "!ls" not in src
    assert "x = 1" in src and "y = x + 1" in src and "    pass  # dropped" in src
    compile(src, "attention.py", "exec")  # still valid Python (the indented magic became `pass`)
    assert len(d.notes) == 1 and "5 IPython magic/shell line(s) were dropped" in d.notes[0]
    assert "`%matplotlib inline`" in d.notes[0] and "`!pip install torch`" in d.notes[0]
    # the notebook executed by nbclient keeps %matplotlib but loses the shell commands
    nb = json.loads(d.notebook)
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert cells[0].startswith("%matplotlib inline") and "!pip" not in cells[0]
    assert cells[2].startswith("# dropped by the grader")


def test_executed_notebook_note_names_only_what_was_removed_from_the_run():
    """For a pack that executes the notebook (import_module = false) magics do run: the note lists
    the shell commands removed before the run, never '%matplotlib inline'."""
    data = make_nb("%matplotlib inline\nimport math", "!pip install torch\nx = 1", "%%bash\necho hi", "y = x + 1")
    d = decode("hw.ipynb", data, module="attention", import_module=False)
    assert len(d.notes) == 1, d.notes
    assert d.notes[0].startswith("2 shell command(s) were removed before your notebook was run")
    assert "`!pip install torch`" in d.notes[0] and "the whole `%%bash` cell" in d.notes[0]
    assert "%matplotlib" not in d.notes[0] and "IPython magic" not in d.notes[0]
    quiet = decode("hw.ipynb", make_nb("%matplotlib inline\nx = 1"), module="attention", import_module=False)
    assert quiet.notes == []
    # the same upload for a pack that imports the code: the magic is dropped there, and said so
    imported = decode("hw.ipynb", make_nb("%matplotlib inline\nx = 1"), module="attention")
    assert len(imported.notes) == 1 and "1 IPython magic/shell line(s) were dropped" in imported.notes[0]


@pytest.mark.parametrize("data, message", [
    (b"{not json", "not JSON"),
    (b'{"cells": 3}', "not a valid notebook"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}}).encode(), "no 'cells' list"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                 "cells": [{"cell_type": "code", "source": 5, "metadata": {}}]}).encode(), "not a valid notebook"),
])
def test_malformed_notebooks_are_refused_clearly(data, message):
    with pytest.raises(SubmissionError, match=message):
        decode("hw.ipynb", data)


def test_zip_main_module_selection_and_folders():
    d = decode("s.zip", make_zip({"project/attention.py": REFERENCE, "project/helpers/util.py": "X = 1",
                                  "project/README.md": "hi", "__MACOSX/._attention.py": "junk"}), module="attention")
    assert set(d.files) == {"attention.py", "helpers/util.py", "README.md"} and d.main == "attention.py"
    d = decode("s.zip", make_zip({"solution.py": REFERENCE, "data/notes.txt": "x"}), module="attention")
    assert d.main == "attention.py" and "solution.py was imported as attention.py." in d.notes
    d = decode("s.zip", make_zip({"attention.ipynb": make_nb("%time x = 1\nx = 2")}), module="attention")
    assert "x = 2" in d.files["attention.py"].decode() and d.notebook and d.notes
    with pytest.raises(SubmissionError, match=r"must contain attention.py or attention.ipynb .* \(found: a.py, b.py\)"):
        decode("s.zip", make_zip({"a.py": "", "b.py": ""}), module="attention")


@pytest.mark.parametrize("entries, kw, message", [
    ({"../evil.py": "x"}, {}, r"unsafe path \(../evil.py\): '..' is not allowed"),
    ({"a/../../evil.py": "x"}, {}, "'..' is not allowed"),
    ({"/etc/cron.d/evil": "x"}, {}, "absolute paths are not allowed"),
    ({"C:\\evil.py": "x"}, {}, "absolute paths are not allowed"),
    ({"attention.py": "x"}, {"symlink": "link.py"}, "symbolic link"),
    ({"bomb.txt": "0" * (30 * 1024 * 1024)}, {}, "unpacks to more than 20 MiB"),
    ({"bomb.txt": "0" * (5 * 1024 * 1024), "attention.py": "x"}, {}, "looks like a zip bomb"),
    ({f"f{i}.py": "" for i in range(201)}, {}, "at most 200 are allowed"),
    ({}, {}, "contains no files"),
])
def test_hostile_zips_are_refused_clearly(entries, kw, message):
    with pytest.raises(SubmissionError, match=message):
        decode("s.zip", make_zip(entries, **kw), module="attention")


def test_not_a_zip():
    with pytest.raises(SubmissionError, match="not a valid zip archive"):
        decode("s.zip", b"PK\x03\x04 this is not really a zip")


# ------------------------------------------------------------------ through the engine

def test_notebook_submission_is_graded_with_the_note(grade_src):
    body = REFERENCE.split("import torch\n", 1)[1]
    res = grade_src(make_nb("%matplotlib inline\nimport math\nimport torch", body, "!nvidia-smi"), filename="hw.ipynb")
    assert res["status"] == "graded" and res["score"] == 10.0
    assert any("magic/shell line(s) were dropped" in n for n in res["notes"])


def test_executed_notebook_pack_keeps_magics_and_notes_shell_commands(grade_src):
    from grader_testutil import PACKS

    data = make_nb("%matplotlib inline\n!pip install requests\nimport math", "answer = 6 * 7", markdown=False)
    res = grade_src(data, pack=PACKS / "notebook", filename="hw.ipynb")
    assert res["status"] == "graded" and res["score"] == 2.0, [t["message"] for t in res["tests"]]
    assert not any("magic" in n for n in res["notes"]), res["notes"]
    assert any(n.startswith("1 shell command(s) were removed") and "`!pip install requests`" in n for n in res["notes"])


def test_malformed_notebook_through_the_engine(grade_src):
    res = grade_src(b'{"cells": [', filename="hw.ipynb")
    assert res["status"] == "error" and res["score"] == 0 and "not a valid notebook" in res["message"]
    assert all(t["status"] == "error" for t in res["tests"]) and len(res["tests"]) == 9


def test_zip_through_the_engine_with_a_helper_module(grade_src):
    data = make_zip({"hw/attention.py": "from helpers import attend as scaled_dot_product_attention\n",
                     "hw/helpers.py": REFERENCE.replace("scaled_dot_product_attention", "attend")})
    res = grade_src(data, filename="hw.zip")
    assert res["status"] == "graded" and res["score"] == 10.0, res["message"]
    res = grade_src(make_zip({"../../x.py": "x"}), filename="hw.zip")
    assert res["status"] == "error" and "'..' is not allowed" in res["message"]


def test_missing_required_name_and_import_errors(grade_src):
    res = grade_src("def attention(q, k, v):\n    return q\n")
    assert res["status"] == "error"
    assert "does not define scaled_dot_product_attention (it defines: attention)" in res["message"]
    res = grade_src("import numpy_but_misspelled\n")
    assert res["status"] == "error" and "ModuleNotFoundError" in res["message"] and "numpy_but_misspelled" in res["message"]
    assert 'File "attention.py", line 1' in res["message"]
