"""The determinism gate (``python -m grader check --repeat N --under-load``), short version.

The long run (every pack, 20 rounds) is described in the README; here: two fast packs graded twice
in shuffled orders while both cores are kept busy must not change a single grade; the gate must
catch a grade that depends on the sandbox's or the trusted process's global random state (so
"fresh seeds" really are fresh on both sides); and the load it promises is real load.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from grader_testutil import ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def cli(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=timeout)


def test_fast_packs_grade_identically_twice_under_load():
    packs = [ROOT / "assignments" / "attention", ROOT / "assignments" / "positional_encoding"]
    p = cli("check", "--repeat", "2", "--under-load", "--seed", "7", "--json", *packs)
    assert p.stdout.strip(), p.stderr
    rep = json.loads(p.stdout)
    assert rep["rounds"] == 2 and rep["grades"] == 2 * rep["files"] and rep["files"] >= 10
    assert rep["changed"] == [] and rep["unexpected"] == [], json.dumps(rep, indent=1)
    assert p.returncode == 0


LUCKY_PACK = {
    "assignment.toml": 'title = "luck"\npoints = 2\nmodule = "lucky"\nrequired = ["draw"]\n',
    "handout.md": "# luck\n",
    "tests.py": '''
import torch
from grader.authoring import case


@case(points=1)
def sandbox_luck(ctx):
    """a score drawn from the sandbox's global generators"""
    return ctx.sub.call("draw")


@case(points=1)
def driver_luck(ctx):
    """a score drawn from the trusted process's global generator (a driver bug)"""
    ctx.sub.call("draw")
    return float(torch.rand(1))
''',
    "reference.py": '''
import random
import torch


def draw():
    return 0.5 * random.random() + 0.5 * float(torch.rand(1))
''',
}


def test_gate_catches_grades_that_depend_on_global_random_state(tmp_path):
    pack = tmp_path / "lucky"
    pack.mkdir()
    for name, text in LUCKY_PACK.items():
        (pack / name).write_text(text)
    (pack / "starter.py").write_text("def draw():\n    return 0.0\n")
    p = cli("check", "--repeat", "3", "--json", pack)
    assert p.returncode == 3, p.stderr
    rep = json.loads(p.stdout)
    changed = {c["file"]: list(c["grades"]) for c in rep["changed"]}
    assert set(changed) == {"lucky/reference.py", "lucky/starter.py"}, rep

    def scores(file, test_id):
        return {g.split(test_id + " ", 1)[1].split(" ", 2)[1].rstrip(",]") for g in changed[file]}

    # three rounds, three different draws on each side: the sandbox's generators (the reference's
    # draw()) and the trusted process's (the driver's torch.rand) are both reseeded for every grade
    assert len(changed["lucky/reference.py"]) == 3
    assert len(scores("lucky/reference.py", "sandbox_luck")) == 3
    assert len(scores("lucky/reference.py", "driver_luck")) == 3
    # the starter's draw() returns 0.0: only the driver's luck changes its grade
    assert scores("lucky/starter.py", "sandbox_luck") == {"0"}
    assert len(scores("lucky/starter.py", "driver_luck")) == 3
    assert {u["file"] for u in rep["unexpected"]} <= {"lucky/reference.py", "lucky/starter.py"}
    # the human-readable report names the file and exits non-zero too
    p = cli("check", "--repeat", "2", pack)
    assert p.returncode == 3
    assert "CHANGED lucky/reference.py" in p.stdout and "2 file(s) changed grade" in p.stdout


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_busy_cores_really_loads_every_core_and_stops():
    from grader.authoring.check import busy_cores

    with busy_cores() as procs:
        assert len(procs) == os.cpu_count()
        # each spinner gets real CPU time (clock ticks of 1/100 s; a sleeping process stays at 0);
        # how fast depends on the machine's load, so wait for it rather than for a fixed time
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and min(_cpu_ticks(p.pid) for p in procs) < 20:
            time.sleep(0.2)
        ticks = [_cpu_ticks(p.pid) for p in procs]
        assert all(p.poll() is None for p in procs)
        assert all(t >= 20 for t in ticks), ticks
    assert all(p.poll() is not None for p in procs)
