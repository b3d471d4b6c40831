"""The import contracts of pyproject.toml ([tool.importlinter], run by `make test` before pytest):
they hold on this checkout, and each one fails on a copy of the source that breaks it."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "lint-imports"
CONTRACTS = {
    "engine-no-django": "The engine never imports Django or the platform",
    "engine-through-api": "The platform uses the engine only through grader.api",
    "engine-parts": "The engine's parts",
    "views-only-from-urls": "Only URL configurations import views",
    "public-modules": "Apps import each other only through their public modules",
    "apps-layered": "The apps build on each other one way",
}


def lint(cwd: Path) -> subprocess.CompletedProcess:
    # lint-imports puts its working directory first on sys.path: the packages found are those of cwd
    exe = str(LINT) if LINT.exists() else shutil.which("lint-imports")
    return subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "400"})


def verdicts(output: str) -> dict[str, str]:
    """contract id -> KEPT | BROKEN, read off the report's one line per contract."""
    found = {}
    for line in output.splitlines():
        for cid, name in CONTRACTS.items():
            if line.startswith(name) and ("KEPT" in line or "BROKEN" in line):
                found[cid] = "BROKEN" if "BROKEN" in line else "KEPT"
    return found


def test_every_contract_holds_on_this_checkout():
    res = lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert verdicts(res.stdout) == {cid: "KEPT" for cid in CONTRACTS}, res.stdout


def _source_only(src, names):
    return [n for n in names if n in ("__pycache__", "node_modules", "static", "templates")
            or ("." in n and not n.endswith((".py", ".toml")))]


@pytest.fixture
def copy(tmp_path):
    """The checkout's Python source and pyproject.toml, to break one contract in."""
    for part in ("grader", "courseplatform", "scripts"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=_source_only)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


BREAKS = {
    # the engine imports Django (and the intake reaches up into the sandbox)
    "engine-no-django": [("grader/intake/forbid.py", "import django.conf\n")],
    "engine-parts": [("grader/intake/forbid.py", "from grader.sandbox import protocol\n")],
    # the platform reaches past grader.api into the engine's parts
    "engine-through-api": [("courseplatform/similarity/services.py", "from grader.intake import ziparchive\n")],
    # a service imports views (what submissions/precheck.py did)
    "views-only-from-urls": [("courseplatform/submissions/services.py", "from . import views\n")],
    # quizzes use submissions' internal sync module (what quizzes/codepacks.py did for the pack store)
    "public-modules": [("courseplatform/quizzes/services.py", "from courseplatform.submissions import sync\n")],
    # the base imports a feature: courses -> gradebook (the cycle that courses/gradebook.py made)
    "apps-layered": [("courseplatform/courses/dashboard.py", "from courseplatform.gradebook import compute\n")],
}


@pytest.mark.parametrize("contract", sorted(BREAKS))
def test_a_broken_contract_fails_the_check(copy, contract):
    before = lint(copy)
    assert before.returncode == 0, before.stdout + before.stderr  # the copy alone breaks nothing
    for rel, line in BREAKS[contract]:
        path = copy / rel
        text = path.read_text()
        cut = text.index("\n", text.index("from __future__")) + 1 if "from __future__" in text else 0
        path.write_text(text[:cut] + line + text[cut:])
    res = lint(copy)
    assert res.returncode != 0, res.stdout
    got = verdicts(res.stdout)
    assert got.get(contract) == "BROKEN", res.stdout
