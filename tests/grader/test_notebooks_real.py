"""Notebooks as students really write them in Colab and Jupyter (issue 14).

The notebooks in notebooks_real/ are saved the way Colab (nbformat 4.0, ``metadata.colab``,
``accelerator: GPU``, ids in cell metadata, ``outputId``, widget views and state) and JupyterLab /
classic Jupyter (4.5 with cell ids, 4.4, out-of-order execution counts) save them; build.py
regenerates them. Correct ones get full marks with the right notes; each broken one gets one
message that names its cell (number and first line), never a line of the generated module.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

from grader.intake import nbshim, notebook
from grader.intake.submission import decode
from grader_testutil import ATTENTION, PACKS, ROOT

HERE = Path(__file__).resolve().parent / "notebooks_real"
MULTIHEAD = ROOT / "assignments" / "multihead_attention"
GUARD = 'if __name__ == "__main__":'


def _build():
    spec = importlib.util.spec_from_file_location("notebooks_real_build", HERE / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _read(name: str) -> bytes:
    return (HERE / f"{name}.ipynb").read_bytes()


def _grade(name: str, pack: Path = ATTENTION) -> dict:
    from grader.api import grade

    return grade(pack, f"{name}.ipynb", _read(name))


def _nb(*sources) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# homework")] + [nbformat.v4.new_code_cell(s) for s in sources]
    return nbformat.writes(nb).encode()


# ------------------------------------------------------------------ the fixtures themselves

def test_fixtures_are_what_build_py_writes():
    built = _build().notebooks()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in HERE.iterdir() if p.suffix in (".ipynb", ".py")
               and p.name != "build.py"}
    assert built == on_disk, "run python tests/grader/notebooks_real/build.py"


def test_fixtures_are_saved_the_way_colab_and_jupyter_save_them():
    raw = {p.stem: json.loads(p.read_text()) for p in HERE.glob("*.ipynb")}
    assert {nb["nbformat_minor"] for nb in raw.values()} == {0, 4, 5}
    colab = raw["colab_attention"]
    assert colab["metadata"]["accelerator"] == "GPU" and "provenance" in colab["metadata"]["colab"]
    assert "application/vnd.jupyter.widget-state+json" in colab["metadata"]["widgets"]
    code = [c for c in colab["cells"] if c["cell_type"] == "code"]
    assert all("id" in c["metadata"] and "id" not in c for c in code)           # Colab: ids in the metadata
    assert any("outputId" in c["metadata"] for c in code)
    outputs = [o for c in code for o in c["outputs"]]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    lab = raw["lab_attention"]
    counts = [c["execution_count"] for c in lab["cells"] if c["cell_type"] == "code"]
    assert counts != sorted(c for c in counts if c is not None) and None in counts   # run out of order
    assert all("id" in c for c in lab["cells"])                                   # 4.5: top-level ids
    for nb in raw.values():
        nbformat.validate(nbformat.reads(json.dumps(nb), as_version=4))


# ------------------------------------------------------------------ correct notebooks: full marks and notes

def test_colab_gpu_notebook_with_drive_secrets_plots_and_progress_bars_gets_full_marks():
    res = _grade("colab_attention")
    assert res["status"] == "graded" and res["score"] == 10.0, res["message"]
    notes = "\n".join(res["notes"])
    assert "drive.mount was skipped: the grader has no access to your Google Drive" in notes
    assert "userdata.get returned an empty string: the grader has no access to your Colab secrets" in notes
    assert "files.download was skipped" in notes
    assert "cell 3: `!pip install -q torch matplotlib tqdm`" in notes and "cell 12: `%%time` (its code ran" in notes
    assert "`files = !ls /content/drive/MyDrive` (files is an empty list)" in notes and "`torch.softmax?`" in notes
    assert "Drive" not in res["message"]


def test_jupyterlab_notebook_with_writefile_helper_and_cell_magics_gets_full_marks():
    res = _grade("lab_attention")
    assert res["status"] == "graded" and res["score"] == 10.0, res["message"]
    notes = "\n".join(res["notes"])
    assert "the whole `%%html` cell" in notes and "the whole `%%bash` cell" in notes
    assert "`%%capture install_log` (its code ran without it)" in notes
    assert "get_ipython().run_line_magic(...) was skipped" in notes
    assert "%%writefile" not in notes   # it did what Jupyter does: attention_utils.py was written and imported


def test_classic_jupyter_notebook_gets_full_marks():
    res = _grade("classic_attention")
    assert res["status"] == "graded" and res["score"] == 10.0, res["message"]
    assert "`scaled_dot_product_attention??`" in res["notes"][0]


def test_colab_multihead_notebook_guarded_for_gpu_runs_on_cpu_with_full_marks():
    res = _grade("colab_multihead", MULTIHEAD)
    assert res["status"] == "graded" and res["score"] == 20.0, res["message"]
    assert any(n.startswith("drive.mount was skipped") for n in res["notes"])


def test_colab_download_py_and_nbconvert_script_get_full_marks():
    """The .py files Colab ("Download .py") and `jupyter nbconvert --to script` write from a notebook."""
    from grader.api import grade

    res = grade(ATTENTION, "attention.py", (HERE / "colab_download.py").read_bytes())
    assert res["status"] == "graded" and res["score"] == 10.0, res["message"]
    assert any(n.startswith("drive.mount was skipped") for n in res["notes"])
    res = grade(ATTENTION, "attention.py", (HERE / "nbconvert_script.py").read_bytes())
    assert res["status"] == "graded" and res["score"] == 10.0, res["message"]
    notes = "\n".join(res["notes"])
    for what in ("run_line_magic", "system", "getoutput", "run_cell_magic"):
        assert f"get_ipython().{what}(...) was skipped" in notes


# ------------------------------------------------------------------ broken notebooks: one message naming the cell

BROKEN = {
    "gpu_unguarded": ["Cell 4 (`q = torch.randn(2, 4, 8).to(device)`), line 1 uses the GPU (cuda), but the grader "
                      "runs your code on a CPU", 'device = "cuda" if torch.cuda.is_available() else "cpu"'],
    "drive_data": ["Cell 4 (`batch = torch.load('/content/drive/MyDrive/LLM course/hw3...`), line 1 uses "
                   "/content/drive/MyDrive/LLM course/hw3/batch.pt, which does not exist in the grader (FileNotFoundError",
                   "it is in your Google Drive or your Colab session", GUARD],
    "download": ["Cell 3 (`import urllib.request`), line 2 tried to download something", "no internet access", GUARD],
    "training": ["Importing your notebook did not finish within 10 s: cell 3 (`# train a tiny model for a while`) "
                 "was still running (at line ", GUARD],
    "main_guard": ["does not define scaled_dot_product_attention", "scaled_dot_product_attention is defined under "
                   '`if __name__ == "__main__":` in cell 3 (`if __name__ == "__main__":`), which the grader skips'],
    "pip_module": ["Cell 3 (`%env WANDB_MODE=offline`), line 3 imports einops (ModuleNotFoundError: No module named "
                   "'einops'), which is not installed in the grader: `!pip install` lines do not run while grading",
                   "`%%writefile einops.py`"],
    "syntax": ["Your notebook has a syntax error in cell 3 (`def check(:`), line 1: SyntaxError"],
    "out_of_order": ["Importing your notebook failed in cell 2 (`import torch`), line 3: NameError",
                     "scaled_dot_product_attention is defined further down, in cell 3 (`import math`)"],
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_notebook_gets_one_message_naming_its_cell(name):
    res = _grade(f"broken_{name}")
    assert res["status"] == "error" and res["score"] == 0.0
    for expected in BROKEN[name]:
        assert expected in res["message"], res["message"]
    assert "attention.py" not in res["message"]           # never a line of the generated module
    assert res["message"].count("uses the GPU") <= 1
    assert all(t["message"].startswith("Not run: ") for t in res["tests"])


def test_gpu_code_inside_the_graded_function_names_the_cell_in_each_failed_test():
    res = _grade("broken_gpu_in_function")
    assert res["status"] == "graded" and res["score"] == 0.0
    visible = [t for t in res["tests"] if t["visible"]]
    assert visible and all("Cell 2 (`import math`), line 7 uses the GPU" in t["message"] for t in visible)
    assert all("cell 2, line 7, in scaled_dot_product_attention\n    q, k, v = q.cuda(), k.cuda(), v.cuda()"
               in t["message"] for t in visible)
    assert not any("attention.py" in t["message"] for t in res["tests"])


# ------------------------------------------------------------------ the Colab stand-in, from inside the sandbox

PROBE_COLAB = '''import sys
from google.colab import drive
drive.mount("/content/drive")
IN_COLAB_BEFORE = "google.colab" in sys.modules


def probe(info):
    import builtins
    import os
    from google.colab import auth, files, output, userdata, widgets
    from google.colab.patches import cv2_imshow
    import google.colab.data_table as data_table
    from tqdm.notebook import tqdm, trange
    with output.use_tags("plots"):
        pass
    with widgets.Grid(1, 2).output_to(0, 1):
        pass
    generic = sorted({repr(output.clear()), repr(output.eval_js("1+1")), repr(cv2_imshow(None)),
                      repr(data_table.enable_dataframe_formatter())})
    return {"upload": files.upload(), "secret": userdata.get("OPENAI_API_KEY"), "auth": auth.authenticate_user(),
            "generic": generic, "drive": os.path.exists("/content/drive"),
            "ipython": [get_ipython().system("ls"), list(get_ipython().getoutput("ls")), repr(get_ipython())[:20]],
            "display": display("x"), "bar": sum(tqdm(range(4))) + sum(trange(3)),
            "secret_error": issubclass(userdata.SecretNotFoundError, Exception)}
'''


def test_colab_modules_are_stand_ins_that_do_nothing_and_leave_a_note(probe):
    res, value = probe(PROBE_COLAB)
    assert res["status"] == "graded", res["message"]
    assert value == {"upload": {}, "secret": "", "auth": None,
                     "generic": ["<grader stand-in: does nothing outside Colab>"], "drive": False, "ipython": [None, [], "<the grader's stand-"],
                     "display": None, "bar": 9, "secret_error": True}
    # the import-time call leaves its note; "google.colab" in sys.modules still says "not Colab" before the import
    assert any(n.startswith("drive.mount was skipped") for n in res["notes"])


def test_executed_notebook_kernel_gets_the_colab_stand_in_and_its_note():
    from grader.api import grade

    data = _nb("from google.colab import drive\ndrive.mount('/content/drive')\nfrom tqdm.notebook import tqdm",
               "answer = sum(tqdm([20, 22]))")
    res = grade(PACKS / "notebook", "hw.ipynb", data)
    assert res["status"] == "graded" and res["score"] == 2.0, [t["message"] for t in res["tests"]]
    assert any(n.startswith("drive.mount was skipped") for n in res["notes"]), res["notes"]
    executed = json.loads(__import__("base64").b64decode(res["artifacts"][0]["data_b64"]))
    assert nbshim.NOTES_MIME not in executed["metadata"]          # the driver took its report out
    first = [c["source"] for c in executed["cells"] if c["cell_type"] == "code"][0]
    assert "".join(first).startswith("from google.colab")      # the hidden set-up cell is not shown


# ------------------------------------------------------------------ conversion and line map (no sandbox)

def test_every_module_line_maps_back_to_its_cell_and_line():
    d = decode("hw.ipynb", _read("colab_attention"), module="attention")
    src = d.files["attention.py"].decode().split("\n")
    lm = d.linemap
    nb = json.loads(_read("colab_attention"))
    for i, text in enumerate(src, start=1):
        loc = lm.locate(i)
        if loc is None:
            continue
        original = "".join(nb["cells"][loc[0] - 1]["source"]).split("\n")[loc[1] - 1]
        if "__grader_nb__" not in text and "dropped" not in text and "runs without it" not in text:
            assert text == original, (i, text, original)
    compile("\n".join(src), "attention.py", "exec")


def test_plain_python_cells_are_never_rewritten():
    cell = "x = (10\n % 3)\ny = (1\n != 2)\ntext = '''\n!not a shell line\n%not a magic\n'''"
    d = decode("hw.ipynb", _nb(cell), module="m")
    assert cell in d.files["m.py"].decode() and d.notes == []


def test_env_magic_sets_the_variable():
    d = decode("hw.ipynb", _nb("%env HF_HOME=/tmp/hf\n%env MODE offline\nimport os\n!ls"), module="m")
    ns: dict = {}
    saved = dict(__import__("os").environ)
    try:
        exec(compile(d.files["m.py"].decode(), "m.py", "exec"), ns)
        assert ns["os"].environ["HF_HOME"] == "/tmp/hf" and ns["os"].environ["MODE"] == "offline"
    finally:
        __import__("os").environ.clear()
        __import__("os").environ.update(saved)


def test_magics_inside_blocks_keep_the_cell_valid_python():
    d = decode("hw.ipynb", _nb("for i in range(2):\n    !echo $i\n    %time y = i * 2\n    files = !ls\nz = %time y + 1"),
               module="m")
    src = d.files["m.py"].decode()
    assert "    y = i * 2" in src and "    files = __grader_nb__.shell()" in src and "z = y + 1" in src
    compile(src, "m.py", "exec")


def test_writefile_modules_are_scanned_for_forbidden_apis():
    from grader.api import grade

    data = _nb("%%writefile helpers.py\nfrom transformers import AutoModel\n", "from helpers import *")
    d = decode("hw.ipynb", data, module="multihead_attention")
    assert d.files["helpers.py"] == b"from transformers import AutoModel\n"
    res = grade(MULTIHEAD, "hw.ipynb", data)
    assert res["score"] == 0 and "transformers" in res["message"]


def test_error_mapping_rewrites_module_lines_and_keeps_other_files():
    d = decode("hw.ipynb", _nb("import torch", "def f():\n    return 1 / 0"), module="m")
    err = {"type": "ZeroDivisionError", "message": "division by zero (m.py, line 5)", "kind": "exception",
           "traceback": '  File "helper.py", line 3, in g\n    x()\n  File "m.py", line 5, in f\n    return 1/0'}
    mapped = notebook.map_error(err, d.linemap, "m.py")
    assert mapped["traceback"] == ('  File "helper.py", line 3, in g\n    x()\n'
                                   "  cell 3, line 2, in f\n    return 1 / 0")
    assert mapped["message"] == "division by zero (cell 3, line 2)"


def test_notes_from_the_sandbox_come_only_from_trusted_templates():
    assert nbshim.notes_for(["colab.drive.mount", "colab.drive.mount"]) == [nbshim.TEMPLATES["drive.mount"]]
    assert nbshim.notes_for(["colab.output.clear"]) == ["google.colab.output.clear was skipped: it works only in Colab."]
    hostile = ["colab.x\n\x1b[31mYOU GOT 10/10", "<script>", "colab." + "a" * 200, 5, None, {"k": 1}]
    assert nbshim.notes_for(hostile) == [] and nbshim.notes_for("colab.drive.mount") == []
    assert len(nbshim.notes_for([f"colab.f{i}" for i in range(500)])) == nbshim.MAX_KEYS


def test_py_files_get_the_same_explanations_with_their_line():
    """No line map (a .py file): GPU, data, input() and timeouts name the line; other errors are left
    to the usual formatting."""
    tb = '  File "attention.py", line 12, in <module>\n    x = torch.load("/content/w.pt")'
    err = {"type": "FileNotFoundError", "message": "[Errno 2] No such file or directory: '/content/w.pt'",
           "kind": "import:exception", "traceback": tb}
    text = notebook.explain_load(err, None, "attention.py", 10)
    assert text.startswith("Line 12 of your file uses /content/w.pt, which does not exist in the grader "
                           "(FileNotFoundError: [Errno 2] No such file or directory: '/content/w.pt'): it is in "
                           "your Google Drive or your Colab session") and GUARD in text
    err = {"type": "EOFError", "message": "EOF when reading a line", "kind": "import:exception", "traceback": tb}
    assert "waits for keyboard input (input(): EOFError: EOF when reading a line)" in notebook.explain_load(
        err, None, "attention.py", 10)
    err = {"type": "TimeoutError", "message": "the import ran out of time", "kind": "import:timeout", "traceback": tb}
    assert notebook.explain_load(err, None, "attention.py", 10).startswith(
        "Importing your file did not finish within 10 s: line 12 of your file was still running.")
    err = {"type": "ValueError", "message": "bad", "kind": "import:exception", "traceback": tb}
    assert notebook.explain_load(err, None, "attention.py", 10) is None


def test_student_text_quoted_in_messages_is_bounded_and_clean():
    line = "y = '\x1b[2J\u202e" + "a" * 5000 + "' / 0"
    d = decode("hw.ipynb", _nb(line), module="m")
    err = {"type": "ZeroDivisionError", "message": "division by zero", "kind": "import:exception",
           "traceback": '  File "m.py", line 2, in <module>\n    y = ...'}
    text = notebook.explain_load(err, d.linemap, "m.py", 10)
    assert "\x1b" not in text and "\u202e" not in text and len(text) < 600
    assert text.startswith("Importing your notebook failed in cell 2 (`y = '[2J")


def test_a_required_name_defined_where_the_import_cannot_see_it_names_the_cell():
    d = decode("hw.ipynb", _nb("%%timeit\ndef f():\n    pass", "%%writefile util.py\ndef g():\n    pass",
                               "def outer():\n    def h():\n        pass", "%%time\nfor i in range(2):\n    k = i"),
               module="m")
    assert notebook.missing_hint(["f"], d.linemap) == ("f is defined in cell 2 (`%%timeit`), a `%%timeit` cell, which "
                                                       "the grader does not run as Python: move the code to a normal cell.")
    assert notebook.missing_hint(["g"], d.linemap) == ("g is defined in cell 3 (`%%writefile util.py`), which writes a "
                                                       "file and does not run its code: add `from util import g` in a "
                                                       "cell below it.")
    assert "h is defined inside another function or class in cell 4 (`def outer():`)" in notebook.missing_hint(
        ["h"], d.linemap)
    assert notebook.missing_hint(["k"], d.linemap) is None and notebook.missing_hint(["f"], None) is None
