"""The CLI: exit codes and the JSON shape."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from grader_testutil import ATTENTION, ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env or ENV, timeout=240)


def test_grade_json_shape_and_exit_code(tmp_path):
    sub = tmp_path / "mine.py"
    sub.write_text((ATTENTION / "mutants" / "no_scaling.py").read_text())
    p = cli("grade", ATTENTION, sub, "--json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert set(res) >= {"score", "max_score", "status", "message", "tests", "notes", "engine"}
    assert res["status"] == "graded" and res["score"] == 1.5 and res["max_score"] == 10.0
    for t in res["tests"]:
        assert set(t) >= {"name", "score", "max_score", "status", "message", "visible"}
        assert t["status"] in ("passed", "failed", "error", "timeout")
    assert any(not t["visible"] for t in res["tests"]) and any(t["visible"] for t in res["tests"])
    # a broken submission is still a finished grading: exit 0, status error
    bad = tmp_path / "broken.py"
    bad.write_text("def scaled_dot_product_attention(q, k, v, mask=None)\n    return q\n")
    p = cli("grade", ATTENTION, bad, "--json")
    assert p.returncode == 0
    res = json.loads(p.stdout)
    assert res["status"] == "error" and res["score"] == 0 and "syntax error" in res["message"]
    assert "line 1" in res["message"]


def test_human_report_and_usage_errors(tmp_path):
    sub = tmp_path / "a.py"
    sub.write_text((ATTENTION / "reference.py").read_text())
    p = cli("grade", ATTENTION, sub)
    assert p.returncode == 0 and "10/10 points" in p.stdout and "[PASS]" in p.stdout
    p = cli("grade", ATTENTION, tmp_path / "missing.py")
    assert p.returncode == 2 and "no such file" in p.stderr
    p = cli("grade", tmp_path, sub)
    assert p.returncode == 2 and "not an assignment pack" in p.stderr


def test_engine_failure_exits_nonzero(tmp_path):
    pack = tmp_path / "broken_pack"
    pack.mkdir()
    for f in ("reference.py", "tests.py"):
        (pack / f).write_text((ATTENTION / f).read_text())
    (pack / "assignment.toml").write_text('title = "x"\npoints = 99\n')
    sub = tmp_path / "a.py"
    sub.write_text("x = 1\n")
    p = cli("grade", pack, sub, "--json")
    assert p.returncode == 1 and "add up to 10" in p.stderr


def test_refuses_without_privileges_unless_insecure(tmp_path):
    """Without CAP_SYS_ADMIN (a container that drops it) the namespaces cannot be created: grading is
    refused with exit 1 -- never silently unsandboxed -- unless GRADER_INSECURE=1 is set."""
    sub = tmp_path / "a.py"
    sub.write_text((ATTENTION / "reference.py").read_text())
    drop = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs"]
    cmd = drop + [sys.executable, "-m", "grader", "grade", str(ATTENTION), str(sub), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=240)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "sandbox unavailable" in p.stderr and "Operation not permitted" in p.stderr
    assert p.stdout == ""
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=dict(ENV, GRADER_INSECURE="1"), timeout=240)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["score"] == 10.0 and res["engine"]["sandbox"] == "insecure"
    assert any("WITHOUT the sandbox" in n for n in res["notes"])


def test_check_command_on_the_attention_pack():
    p = cli("check", ATTENTION)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "attention: OK" in p.stdout and "mutants/no_scaling.py: 1.5/10" in p.stdout
