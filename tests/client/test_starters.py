"""The starter notebooks are generated from each pack's starter.py (scripts/build_starters.py), with
the client's install cell first and its check/submit cell last from one template; the client cells
never change a grade."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("build_starters", ROOT / "scripts" / "build_starters.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


build_starters = _script()
PACKS = build_starters.starter_packs()


def test_every_pack_without_its_own_notebook_generator_is_covered():
    names = {p.name for p in PACKS}
    assert {"attention", "multihead_attention", "positional_encoding", "tokenization", "generation",
            "bert_finetune"} <= names
    assert build_starters.main(["--check"]) == 0


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_checked_in_starter_equals_the_generated_one(pack):
    on_disk = (pack / "starter.ipynb").read_text(encoding="utf-8")
    assert on_disk == build_starters.expected(pack), "run: python scripts/build_starters.py"
    cells = json.loads(on_disk)["cells"]
    version = build_starters.client_version()
    first, last = "".join(cells[0]["source"]), "".join(cells[-1]["source"])
    assert f"%pip install -q {{SITE}}/client/courseplatform_client-{version}-py3-none-any.whl" in first
    slug = build_starters.pack_slug(pack)
    assert f'cp.check("llms/{slug}")' in last and f'# cp.submit("llms/{slug}")' in last
    # The body is starter.py's code, cell by cell: nothing of it is missing, nothing else is added.
    code = "\n".join("".join(c["source"]) for c in cells[1:-1] if c["cell_type"] == "code")
    source = (pack / "starter.py").read_text(encoding="utf-8")
    assert _code_lines(code) == _code_lines(source.split('"""', 2)[2] if source.startswith('"""') else source)


def _code_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_starter_py_edit_reaches_the_notebook():
    """starter.py is the one source: a changed docstring or body shows up in the generated notebook."""
    src = '''"""Assignment: demo thing.

Write it.
"""
import torch


# helper comment
def f(x):
    return x


if __name__ == "__main__":
    print(f(1))
'''
    nb = build_starters.build(src, "llms/demo")
    kinds = [(c["cell_type"], "".join(c["source"]).splitlines()[0]) for c in nb["cells"][1:-1]]
    assert kinds == [("markdown", "# Demo thing"), ("code", "import torch"), ("code", "# helper comment"),
                     ("code", 'if __name__ == "__main__":')]


def test_client_cells_do_not_change_grades_in_the_real_engine(tmp_path):
    """The attention starter scores 0, and the same notebook with the reference solution as its
    body (client cells kept) scores full marks: the %pip line is dropped and the client cell is inert."""
    from grader.api import grade

    pack = ROOT / "assignments" / "attention"
    starter = (pack / "starter.ipynb").read_bytes()
    res = grade(pack, "attention.ipynb", starter)
    assert res["status"] == "graded" and res["score"] == 0, res["message"]
    assert any("%pip install" in n for n in res["notes"])
    nb = json.loads(starter)
    body = {"cell_type": "code", "execution_count": None, "id": "solution", "metadata": {}, "outputs": [],
            "source": (pack / "reference.py").read_text(encoding="utf-8")}
    nb["cells"] = [nb["cells"][0], body, nb["cells"][-1]]
    res = grade(pack, "attention.ipynb", json.dumps(nb).encode())
    assert res["status"] == "graded" and res["score"] == res["max_score"] == 10, res["message"]
    # A check (only_visible) of the same notebook lists only visible tests.
    checked = grade(pack, "attention.ipynb", json.dumps(nb).encode(), only_visible=True)
    assert checked["tests"] and all(t["visible"] for t in checked["tests"])
    assert len(checked["tests"]) < len(res["tests"]) and checked["score"] == checked["max_score"] < 10


def test_client_source_is_python_3_9_and_standard_library_only():
    import ast
    import sys

    allowed = set(sys.stdlib_module_names) | {"courseplatform_client", "IPython", "google", "ipykernel", "jupyter_core"}
    optional = {"IPython", "google", "ipykernel", "jupyter_core"}  # imported lazily, only where present
    for path in sorted((ROOT / "client" / "courseplatform_client").glob("*.py")):
        src = path.read_text(encoding="utf-8")
        tree = ast.parse(src, filename=str(path), feature_version=(3, 9))
        compile(src, str(path), "exec")
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module.split(".")[0]]
            for name in names:
                assert name in allowed, f"{path.name} imports {name}"
                if name in optional:
                    # Only inside a function (lazily), never at module level.
                    assert node not in tree.body, f"{path.name} imports {name} at module level"
