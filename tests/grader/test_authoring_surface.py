"""A pack author's API is grader.authoring: every pack's tests.py imports the engine through it and
nothing else, and what it names is importable without torch (the platform loads packs in the web)."""
from __future__ import annotations

import ast
import subprocess
import sys

from grader_testutil import PACKS, ROOT

PACK_TESTS = sorted((ROOT / "assignments").glob("**/tests.py")) + sorted(PACKS.glob("*/tests.py"))


def engine_imports(path) -> set[str]:
    """The grader modules a file imports (``from grader.x import y`` counts as grader.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "grader":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "grader"}
    return found


def test_every_pack_imports_the_engine_through_grader_authoring_only():
    assert len(PACK_TESTS) >= 10  # the course's packs and the engine tests' own
    outside = {str(p.relative_to(ROOT)): sorted(m - {"grader.authoring"})
               for p in PACK_TESTS if (m := engine_imports(p)) - {"grader.authoring"}}
    assert outside == {}


def test_the_check_sees_a_deep_import(tmp_path):
    bad = tmp_path / "tests.py"
    bad.write_text("from grader.authoring.driver import case\nimport grader.sandbox.pool\n")
    assert engine_imports(bad) == {"grader.authoring.driver", "grader.sandbox.pool"}


def test_the_surface_names_what_tests_py_uses_and_imports_no_torch():
    import grader.authoring as authoring

    for name in authoring.__all__:
        assert name in ("compare",) or hasattr(authoring, name), name
    code = ("import sys, grader.authoring, grader.api; "
            "print('torch' in sys.modules); from grader.authoring import compare; print(compare.tensor.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "tensor"]
