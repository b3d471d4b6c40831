"""python manage.py similarity --files DIR: the same ranking as the site, with no database."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.similarity.variants import disguise

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "assignments" / "attention"


@pytest.fixture
def folder(tmp_path):
    """The layout of the assignment export: <slug>/<username>/<file>."""
    root = tmp_path / "attention"
    ref = (PACK / "reference.py").read_text()
    files = {"alice/attention.py": disguise(ref, 1, {"scaled_dot_product_attention"}),
             "bob/attention.py": disguise(ref, 2, {"scaled_dot_product_attention"}),
             "carol/attention.py": (PACK / "starter.py").read_text(),
             "dave/attention.py": (PACK / "starter.py").read_text()}
    for i, sol in enumerate(sorted((PACK / "solutions").glob("*.py"))):
        files[f"s{i}/{sol.name}"] = sol.read_text()
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_command_ranks_a_folder_with_matched_line_ranges(folder, capsys):
    call_command("similarity", "--files", str(folder), "--starter", str(PACK / "starter.py"),
                 "--handout", str(PACK / "handout.md"))
    out = capsys.readouterr().out
    assert f"{len(list(folder.rglob('*.py')))} files compared; 1 pair(s) at or above 0.60" in out
    flagged = out.split("Flagged:")[1].split("Highest below")[0]
    assert "alice/attention.py  <->  bob/attention.py" in flagged
    assert "shared: lines " in flagged
    assert "carol" not in flagged and "dave" not in flagged


def test_json_output(folder, capsys):
    call_command("similarity", "--files", str(folder), "--starter", str(PACK / "starter.py"), "--json")
    data = json.loads(capsys.readouterr().out)
    assert [(p["a"], p["b"]) for p in data["flagged"]] == [("alice/attention.py", "bob/attention.py")]
    top = data["flagged"][0]
    assert top["score"] >= 0.6 and top["regions"][0]["kind"] == "copy"
    assert all(p["score"] < 0.6 for p in data["below"])
    # without the starter, the two starter-only files would be flagged
    call_command("similarity", "--files", str(folder), "--json", "--boilerplate", "1")
    bare = json.loads(capsys.readouterr().out)
    assert ("carol/attention.py", "dave/attention.py") in [(p["a"], p["b"]) for p in bare["flagged"]]


def test_usage_errors(tmp_path):
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("similarity", "--files", str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="between 0 and 1"):
        call_command("similarity", "--files", str(tmp_path), "--threshold", "3")


def test_it_needs_no_database(folder):
    """Run as instructors run it: a process whose database does not exist."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DEBUG": "1",
           "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
    out = subprocess.run([sys.executable, str(ROOT / "manage.py"), "similarity", "--files", str(folder),
                          "--starter", str(PACK / "starter.py")], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "alice/attention.py  <->  bob/attention.py" in out.stdout
