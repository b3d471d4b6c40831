"""Every assignment pack under assignments/ grades its own files as recorded.

For each directory with an assignment.toml: reference.py gets full marks, the starter gets 0,
each mutants/* gets exactly its score in mutants/expected.toml with feedback containing the recorded
substring, and each solutions/* gets full marks; each tests.py opens with its handout's promise -> case mapping, naming
every case. Packs written later are picked up automatically;
a pack whose expectations cannot even be read fails here instead of being skipped.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ASSIGNMENTS = Path(__file__).resolve().parents[2] / "assignments"


def _params():
    from grader.authoring.check import expectations, find_packs
    from grader.errors import PackError

    params = []
    for pack in find_packs(ASSIGNMENTS):
        try:
            items = expectations(pack)
        except (PackError, OSError) as exc:
            params.append(pytest.param(pack, {"file": "<pack>", "error": str(exc)}, id=f"{pack.name}:invalid"))
            continue
        for item in items:
            params.append(pytest.param(pack, item, id=f"{pack.name}:{item['file']}"))
    return params


PARAMS = _params()


def test_there_are_packs():
    assert any(p.values[0].name == "attention" for p in PARAMS)


@pytest.mark.parametrize("pack_dir, item", PARAMS)
def test_pack_file_gets_its_recorded_result(pack_dir, item):
    from grader.authoring.check import check_item
    from packs_graded import grade_bytes

    assert "error" not in item, item.get("error")
    got = check_item(pack_dir, item, grade_fn=grade_bytes)
    res = got["result"]
    details = "\n".join(f"  {t['status']:8} {t['score']:g}/{t['max_score']:g} {t['name']}: {t['message'][:300]}"
                        for t in res["tests"])
    assert got["ok"], f"{pack_dir.name}/{item['file']}: {got['problem']}\n{res['message']}\n{details}"


@pytest.mark.parametrize("pack_dir", sorted({p.values[0] for p in PARAMS}), ids=lambda p: p.name)
def test_pack_is_complete(pack_dir):
    from grader.authoring.pack import load_pack

    pack = load_pack(pack_dir)
    assert (pack_dir / "handout.md").is_file(), "every pack needs a handout.md"
    assert pack.starter_files, "every pack needs a starter.py or starter.ipynb"
    assert sum(c.points for c in pack.cases()) == pack.meta["points"]
    assert any(c.visible for c in pack.cases()), "students need at least one visible test"


@pytest.mark.parametrize("pack_dir", sorted({p.values[0] for p in PARAMS}), ids=lambda p: p.name)
def test_tests_py_opens_with_the_promise_to_case_mapping(pack_dir):
    """Every handout promise is exercised by a case, and tests.py opens with that mapping: its
    docstring maps promises to cases, and names every case the pack has (a case no promise asks
    for grades something the handout does not say; a renamed case must be re-mapped)."""
    import ast

    from grader.authoring.pack import load_pack

    doc = ast.get_docstring(ast.parse((pack_dir / "tests.py").read_text(encoding="utf-8"))) or ""
    assert "promise" in doc.lower(), f"{pack_dir.name}/tests.py: the docstring has no promise -> case mapping"
    unmapped = [c.id for c in load_pack(pack_dir).cases() if c.id not in doc]
    assert not unmapped, f"{pack_dir.name}/tests.py: cases missing from the promise mapping: {unmapped}"
