"""Generate every pack's starter.ipynb from its starter.py, with the course client's first and last
cells, from ONE template.

    python scripts/build_starters.py            # rewrite the starter notebooks
    python scripts/build_starters.py --check    # exit 1 (and name them) if any is out of date

starter.py is the one source: its module docstring becomes the notebook's first Markdown cell, and
its top-level code is split into cells (the imports; each function or class; the
``if __name__ == "__main__":`` try-it block; other statements grouped), each with the comments just
above it. Authors edit starter.py only; a test checks that the notebooks are what this generates.

The first cell installs the client from the course site; the last cell logs in, runs
cp.check(...) and (commented out) cp.submit(...). Both carry the cell tag ``courseplatform-client``:
a rerun replaces them and leaves the pack's own cells (the body, written by the pack's author)
untouched. The install line names the current wheel (client/courseplatform_client/__init__.py's
__version__), so bumping the client's version means rerunning this script (tests/client check it).

In the grader neither cell does anything: the ``%pip`` line is dropped by the engine (both when it
imports the notebook's code and when it executes the notebook), ``SITE = ...`` only binds a string,
and the last cell imports the client inside ``try``: the client is not installed in the sandbox,
so ``cp`` is None and nothing runs.

Packs whose starter notebook is written by the pack's own generator (a build_notebooks.py next to
it, e.g. embeddings_notebook) are left to that generator: it owns every cell of the file (its
test compares them), so the client cells must come from there.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ROOT / "assignments"
TAG = "courseplatform-client"
DEFAULT_COURSE = "llms"
DEFAULT_SITE = "http://127.0.0.1:8000"

INSTALL_CELL = """\
# The course client: check and submit from this notebook (standard library only; it does not touch torch).
# SITE is your course site: copy these lines from the assignment page if yours differs.
SITE = "{site}"
%pip install -q {{SITE}}/client/courseplatform_client-{version}-py3-none-any.whl"""

SUBMIT_CELL = """\
# Check your work on the visible tests (not an attempt), then submit this notebook.
# login() asks for your API token (from the site's "API token" page); it is never saved in the notebook.
# In the grader the client is not installed, so this cell does nothing there.
try:
    import courseplatform_client as cp
except ImportError:
    cp = None
if cp is not None:
    cp.login(SITE)
    cp.check("{name}")
    # cp.submit("{name}")   # when you are ready: submits this notebook as an attempt"""


def client_version() -> str:
    text = (ROOT / "client" / "courseplatform_client" / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if not m:
        raise SystemExit("client/courseplatform_client/__init__.py has no __version__")
    return m.group(1)


def pack_slug(pack: Path) -> str:
    import tomllib

    meta = tomllib.loads((pack / "assignment.toml").read_text(encoding="utf-8"))
    return str(meta.get("slug") or pack.name)


def starter_packs() -> list[Path]:
    """Packs with a starter.py (whose notebook this script writes), unless the pack has a notebook
    generator of its own (build_notebooks.py)."""
    return sorted(p.parent for p in ASSIGNMENTS.glob("*/starter.py")
                  if (p.parent / "assignment.toml").is_file() and not (p.parent / "build_notebooks.py").exists())


def _cell(source: str, cell_id: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": {"tags": [TAG]},
            "outputs": [], "source": source.splitlines(keepends=True)}


NOTEBOOK_NOTE = ("In this notebook only the code cells are graded: `%` magics and `!` shell lines are ignored by "
                 "the grader, and the `if __name__ == \"__main__\":` cell runs here but not in the grader.")
METADATA = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}}


def body_cells(source: str) -> list[dict]:
    """starter.py as notebook cells: the docstring as Markdown, then the top-level code in cells."""
    tree = ast.parse(source)
    lines = source.splitlines()
    cells: list[dict] = []
    stmts = list(tree.body)
    doc = ast.get_docstring(tree, clean=True)
    if doc and stmts and isinstance(stmts[0], ast.Expr):
        first, _, rest = doc.partition("\n")
        title = first.removeprefix("Assignment:").strip().rstrip(".")
        text = f"# {title[:1].upper()}{title[1:]}\n\n{rest.strip()}\n\n{NOTEBOOK_NOTE}".rstrip()
        cells.append({"cell_type": "markdown", "metadata": {}, "source": text})
        stmts = stmts[1:]

    def kind(node) -> str:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return "import"
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return "def"
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"):
            return "main"
        return "other"

    def start(node) -> int:  # 0-based first line, with decorators and the comments just above
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        while first > 0 and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        return first

    groups: list[list] = []
    for node in stmts:
        k = kind(node)
        if groups and k in ("import", "other") and kind(groups[-1][-1]) == k:
            groups[-1].append(node)
        else:
            groups.append([node])
    for group in groups:
        text = "\n".join(lines[start(group[0]):group[-1].end_lineno]).strip("\n")
        cells.append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": text})
    for i, cell in enumerate(cells):
        cell["id"] = f"starter-{i}"
        cell["source"] = cell["source"].splitlines(keepends=True)
    return cells


def build(starter_py: str, name: str, site: str = DEFAULT_SITE, version: str | None = None) -> dict:
    """The starter notebook: the client's install cell, starter.py's cells, the check/submit cell."""
    version = version or client_version()
    cells = ([_cell(INSTALL_CELL.format(site=site, version=version), "cp-install")] + body_cells(starter_py)
             + [_cell(SUBMIT_CELL.format(name=name), "cp-check-submit")])
    return {"cells": cells, "metadata": METADATA, "nbformat": 4, "nbformat_minor": 5}


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def expected(pack: Path, course: str = DEFAULT_COURSE, site: str = DEFAULT_SITE) -> str:
    return dumps(build((pack / "starter.py").read_text(encoding="utf-8"), f"{course}/{pack_slug(pack)}", site))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only report starter notebooks that are out of date")
    ap.add_argument("--course", default=DEFAULT_COURSE, help="course slug in cp.check/cp.submit (default %(default)s)")
    ap.add_argument("--site", default=DEFAULT_SITE, help="course site in the install cell (default %(default)s)")
    args = ap.parse_args(argv)
    stale = []
    for pack in starter_packs():
        path = pack / "starter.ipynb"
        want = expected(pack, args.course, args.site)
        if not path.exists() or path.read_text(encoding="utf-8") != want:
            stale.append(path)
            if not args.check:
                path.write_text(want, encoding="utf-8")
    verb = "out of date" if args.check else "rewritten"
    for path in stale:
        print(f"{verb}: {path.relative_to(ROOT)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
