"""Nothing the sandbox says about itself is believed (issue 22), each class through the real sandbox:

1. budgets are measured from outside: a patched resource.getrusage/time.process_time and work done
   in a child that is never waited for are counted by the sandbox's cgroup CPU counter, read by the
   trusted process (and by the /proc fallback where no cgroup counts it);
2. facts about the machine come from the machine: the driver's device is the worker's, whatever the
   sandbox answers about CUDA;
3. the [forbid] guard cannot be undone from inside: the garbage collector's walks are refused (the
   registrations are unreachable anyway), a reload of torch.nn.functional and an operator name
   built at run time still reach the raising kernel, the import block survives sys.meta_path and
   sys.modules being emptied, and what Python cannot prevent (ctypes) or a closed review channel
   flags the grade for staff review;
4. a sanity check is not cheating: a notebook cell that compares with the library gets full marks
   (with a note naming the cell), while a function that calls the library fails.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest

from grader.sandbox import pool
from grader_testutil import ATTENTION, PACKS, REFERENCE

BUDGET = PACKS / "budget"
BUDGET_REF = (BUDGET / "reference.py").read_text()


def _case(res, cid):
    return next(t for t in res["tests"] if t["id"] == cid)


# ------------------------------------------------------------------ 1. budgets

def test_honest_work_is_measured_and_within_budget(grade_src):
    res = grade_src(BUDGET_REF, pack=BUDGET, filename="budget.py")
    assert _case(res, "within_budget")["status"] == "passed", res
    assert 0.3 < res["metrics"]["work_seconds"] < 2.0
    assert res["engine"]["limits"].get("cpu_time", "").startswith("cgroup"), res["engine"]
    assert res["metrics"]["memory_peak_mb"] > 1   # the cgroup's high-water mark, read on the trusted side


PATCHED = BUDGET_REF.replace("def work(budget_s):", '''import resource


class _Zero:
    ru_utime = ru_stime = 0.0


resource.getrusage = lambda *a: _Zero()
_real = time.process_time
time.process_time = lambda: 0.0


def work(budget_s):
    start = _real()
    while _real() - start < budget_s * 2:
        sum(range(1000))
    return


def _unused(budget_s):''')


def test_a_patched_cpu_reading_changes_nothing(grade_src):
    res = grade_src(PATCHED, pack=BUDGET, filename="budget.py")
    case = _case(res, "within_budget")
    assert case["status"] == "failed", res
    assert "over the budget of 2" in case["message"]
    assert res["metrics"]["work_seconds"] >= 3.5


UNWAITED = BUDGET_REF.replace("def work(budget_s):", '''import os
import signal


def work(budget_s):
    """The work runs in a child that is never waited for (auto-reaped: no RUSAGE_CHILDREN)."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    r, w = os.pipe()
    if os.fork() == 0:
        start = time.process_time()
        while time.process_time() - start < budget_s * 2:
            sum(range(1000))
        os.write(w, b"x")
        os._exit(0)
    os.read(r, 1)
    time.sleep(0.2)  # let it exit: its CPU time must not vanish with it
    return


def _unused(budget_s):''')


def test_work_in_an_unwaited_child_is_counted(grade_src):
    res = grade_src(UNWAITED, pack=BUDGET, filename="budget.py")
    case = _case(res, "within_budget")
    assert case["status"] == "failed", res
    assert res["metrics"]["work_seconds"] >= 3.5


def test_the_proc_fallback_counts_an_unwaited_auto_reaped_child():
    """Where no cgroup counts CPU time, the trusted side samples /proc (pool.CpuMeter): here a
    process in a session of its own (as P is) whose auto-reaped child did the work."""
    code = ("import os, signal, time\nsignal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
            "if os.fork() == 0:\n    s = time.process_time()\n    while time.process_time() - s < 1.5:\n"
            "        sum(range(1000))\n    os._exit(0)\ntime.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        meter = pool.CpuMeter(uid=None, sid=proc.pid, interval=0.02)
        deadline = time.monotonic() + 60
        seen = meter.seconds()
        while time.monotonic() < deadline and seen < 1.4:
            time.sleep(0.1)
            seen = meter.seconds()
        time.sleep(0.5)  # the child has exited by now: what it used stays counted
        assert meter.seconds() >= 1.4
        meter.close()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def test_cpu_counters_are_read_where_each_hierarchy_keeps_them(tmp_path):
    """v2 cpu.stat usage_usec; v1 cpuacct.usage in a cpuacct group of its own or co-mounted with cpu;
    no counter: None (the trusted side then samples /proc)."""
    from grader.sandbox import cgroups

    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    (v2 / "memory.peak").write_text(str(300 << 20))
    assert cgroups.read_cpu_seconds(cgroups.cpu_usage_path(2, {"": str(v2)})) == 2.5
    assert cgroups.memory_peak_path(2, {"": str(v2)}) == str(v2 / "memory.peak")
    cpu, acct, mem = (tmp_path / n for n in ("cpu", "cpuacct", "memory"))
    for d in (cpu, acct, mem):
        d.mkdir()
    (acct / "cpuacct.usage").write_text("1500000000\n")
    (mem / "memory.max_usage_in_bytes").write_text(str(64 << 20))
    dirs = {"memory": str(mem), "cpu": str(cpu), "cpuacct": str(acct)}
    assert cgroups.read_cpu_seconds(cgroups.cpu_usage_path(1, dirs)) == 1.5
    assert cgroups.memory_peak_path(1, dirs) == str(mem / "memory.max_usage_in_bytes")
    (cpu / "cpuacct.usage").write_text("4000000000\n")   # cpu,cpuacct co-mounted
    assert cgroups.read_cpu_seconds(cgroups.cpu_usage_path(1, {"memory": str(mem), "cpu": str(cpu)})) == 4.0
    (cpu / "cpuacct.usage").unlink()
    assert cgroups.cpu_usage_path(1, {"memory": str(mem), "cpu": str(cpu)}) is None
    (v2 / "cpu.stat").write_text("nr_periods 0\n")
    with pytest.raises(OSError):
        cgroups.read_cpu_seconds(str(v2 / "cpu.stat"))


# ------------------------------------------------------------------ 2. device

FORGED = BUDGET_REF.replace("def device_seen():", '''import torch

torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 1


def _unused():''') + "\n\ndef device_seen():\n    return 'cuda' if torch.cuda.is_available() else 'cpu'\n"


def test_a_forged_device_answer_is_not_the_drivers_device(grade_src):
    res = grade_src(FORGED, pack=BUDGET, filename="budget.py")
    assert "SANDBOX SAYS:'cuda'" in res["notes"]          # what the sandbox claims...
    assert "DEVICE:cpu" in res["notes"]                   # ... is not what the driver uses


def test_the_child_has_no_operation_that_reports_a_fact():
    from grader.sandbox import child

    src = open(child.__file__).read()
    assert '"rusage"' not in src and "getrusage" not in src


# ------------------------------------------------------------------ 3. the [forbid] guard

UNDO = '''import gc
import importlib
import math

import torch
import torch.nn.functional as F


def scaled_dot_product_attention(q, k, v, mask=None):
    try:  # destroy the guard's kernel registrations
        for o in gc.get_objects():
            for m in ("_destroy", "reset"):
                try:
                    getattr(o, m)()
                except Exception:
                    pass
    except RuntimeError:
        pass
    try:  # a fresh torch.nn.functional: the library's function instead of the stub put there
        fn = importlib.reload(F)
    except RuntimeError:  # torch 2.13 refuses to re-add its docstrings: the function F re-exports
        fn = torch._C._nn
    op = getattr(fn, "scaled_dot_" + "product_attention")
    d = q.shape[-1]
    s = q @ k.transpose(-2, -1) / math.sqrt(d)
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    w = torch.softmax(s, dim=-1)
    if mask is not None:
        w = w.masked_fill(~mask, 0.0)
    return op(q, k, v, attn_mask=mask), w
'''


def test_gc_destroy_reload_and_a_runtime_name_still_meet_the_guard(grade_src):
    res = grade_src(UNDO)
    assert res["score"] < 5, res["message"]
    visible = [t for t in res["tests"] if t["visible"]]
    assert all(t["status"] == "failed" for t in visible)
    assert any("scaled_dot_product_attention is not allowed in this assignment" in t["message"] for t in visible)
    assert any("refused gc.get_objects()" in r for r in res["review"]), res.get("review")


def test_the_guard_holds_once_the_import_hook_and_sys_modules_are_cleared(grade_src):
    src = REFERENCE + '''

def _sneak():
    import sys
    sys.meta_path[:] = [f for f in sys.meta_path if "Blocker" not in type(f).__name__]
    for k in [k for k in sys.modules if k.split(".")[0] == "trans" + "formers"]:
        del sys.modules[k]
    try:
        __import__("trans" + "formers")
        return "imported"
    except ImportError as exc:
        return str(exc)


_SNEAK = _sneak()
assert _SNEAK != "imported", _SNEAK
'''
    res = grade_src(src)
    assert res["status"] == "graded" and res["score"] == 10.0, res["message"]
    assert any("tried to import transformers" in r for r in res["review"])


def test_ctypes_is_flagged_for_review_not_silently_full_marks(grade_src):
    res = grade_src(REFERENCE + "\n\nimport ctypes\n_libc = ctypes.CDLL(None)\n")
    assert res["score"] == 10.0                      # nothing was undone: the grade stands ...
    assert any("used ctypes.dlopen" in r for r in res["review"]), res.get("review")   # ... but staff look at it


def test_closing_the_review_channel_is_flagged(grade_src):
    src = REFERENCE + '''

import os as _os
for _fd in _os.listdir("/proc/self/fd"):
    try:
        if int(_fd) > 2 and _os.readlink(f"/proc/self/fd/{_fd}").startswith("pipe:"):
            _os.close(int(_fd))
    except OSError:
        pass
'''
    res = grade_src(src)
    assert any("closed the grader's review channel" in r for r in res["review"]), res.get("review")


def test_an_honest_submission_is_not_flagged(grade_src):
    res = grade_src(REFERENCE)
    assert res["score"] == 10.0 and "review" not in res


# ------------------------------------------------------------------ 4. a sanity check is not cheating

def _notebook(*cells) -> str:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]))


SANITY_CELLS = (
    "import torch\nimport torch.nn.functional as F",
    REFERENCE,
    "# compare with PyTorch's built-in version\nq = torch.randn(2, 4, 8)\nout, w = scaled_dot_product_attention(q, q, q)\n"
    "ref = F.scaled_dot_product_attention(q, q, q)",
    "print('max difference', (out - ref).abs().max().item())",
)


def test_a_sanity_check_cell_gets_full_marks_with_a_note(grade_src):
    res = grade_src(_notebook(*SANITY_CELLS), filename="attention.ipynb")
    assert res["status"] == "graded" and res["score"] == 10.0, res["message"]
    note = next(n for n in res["notes"] if "to compare with your own code" in n)
    assert "cell 3 (`# compare with PyTorch's built-in version`)" in note and "cell 4" in note
    assert "scaled_dot_product_attention" in note
    assert "review" not in res


def test_sanity_split_rules():
    from grader.authoring.pack import load_pack
    from grader.intake import forbid

    cfg = load_pack(ATTENTION).meta["forbid"]
    own = "import torch\nimport torch.nn.functional as F\n\ndef attn(q, ref=None):\n    return q\n\n"
    # a check, and the statement that prints what it bound: set aside (lines 7-8)
    counted, checks = forbid.sanity_checks(own + "ref = F.scaled_dot_product_attention(q, q, q)\nprint(ref)\n", cfg)
    assert counted == set() and [(c["first"], c["last"]) for c in checks] == [(7, 7), (8, 8)]
    # a function's own parameter named like the check's result is not the library
    assert forbid.sanity_checks(own + "ref = F.scaled_dot_product_attention(q, q, q)\n", cfg)[0] == set()
    # a function reading the check's global is: it counts
    counted, _ = forbid.sanity_checks(own + "lib = F.scaled_dot_product_attention\ndef f(q):\n    return lib(q, q, q)\n", cfg)
    assert counted == {"scaled_dot_product_attention"}
    # an import of the name, a def or a lambda at the top level, a line shared with another statement: they count
    for tail in ("from torch.nn.functional import scaled_dot_product_attention\n",
                 "g = lambda q: F.scaled_dot_product_attention(q, q, q)\n",
                 "x = 1; y = F.scaled_dot_product_attention(q, q, q)\n"):
        assert forbid.sanity_checks(own + tail, cfg)[0] == {"scaled_dot_product_attention"}, tail
    data = (own + "ref = F.scaled_dot_product_attention(\n    q, q, q)\nprint(ref)\r\nz = 1\n").encode()
    out = forbid.without_lines(data, forbid.sanity_checks(data.decode(), cfg)[1]).decode()
    assert out.splitlines()[6:] == ["pass", "pass", "pass", "z = 1"] and out.count("\n") == data.decode().count("\n")


def test_a_function_that_calls_the_library_fails(grade_src):
    cheat = SANITY_CELLS[:2] + (
        "def scaled_dot_product_attention(q, k, v, mask=None):\n"
        "    w = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, -1)\n"
        "    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), w",) + SANITY_CELLS[2:]
    res = grade_src(_notebook(*cheat), filename="attention.ipynb")
    assert res["score"] == 0.0
    assert "Your code uses scaled_dot_product_attention" in res["message"]


def test_a_function_reaching_the_library_through_a_checks_name_fails(grade_src):
    cheat = SANITY_CELLS[:1] + ("lib = F.scaled_dot_product_attention",
                                REFERENCE.replace("def scaled_dot_product_attention(", "def _mine(")
                                + "\n\ndef scaled_dot_product_attention(q, k, v, mask=None):\n"
                                  "    return lib(q, k, v, attn_mask=mask), _mine(q, k, v, mask)[1]\n")
    res = grade_src(_notebook(*cheat), filename="attention.ipynb")
    assert res["score"] == 0.0 and "Your code uses scaled_dot_product_attention" in res["message"]


def test_a_hidden_library_call_in_a_function_fails_the_case_with_the_message(grade_src):
    """What the scan cannot see (a name built at run time) meets the raising kernel in the graded call."""
    src = REFERENCE.replace("def scaled_dot_product_attention(", "def _mine(") + '''

import torch.nn.functional as _F


def scaled_dot_product_attention(q, k, v, mask=None):
    return getattr(_F, "scaled_dot_" + "product_attention")(q, k, v, attn_mask=mask), _mine(q, k, v, mask)[1]
'''
    res = grade_src(src)
    visible = [t for t in res["tests"] if t["visible"]]
    assert res["score"] < 5 and all(t["status"] == "failed" for t in visible)
    assert "scaled_dot_product_attention is not allowed in this assignment" in visible[0]["message"]


def test_holding_the_gpu_waits_for_other_grades_cases_and_not_on_the_students_clock(monkeypatch, tmp_path):
    """The GPU path of a budget (no GPU needed): every grade on the device holds its lock shared per
    case; ctx.hold_device() takes it exclusively, so the wall clock inside measures this grade alone,
    and the wait is added back to the case's and the submission's deadlines."""
    import fcntl
    import threading
    import types

    from grader.authoring import driver

    monkeypatch.setattr(driver.tempfile, "gettempdir", lambda: str(tmp_path))
    other = driver._device_lock()           # another grade's case is running on the device
    mine = driver._device_lock()            # shared locks coexist
    now = time.monotonic()
    runner = types.SimpleNamespace(_device_fd=mine, case_deadline=now + 10, wall_deadline=now + 20)
    ctx = driver.Context.__new__(driver.Context)
    ctx._runner = runner
    threading.Timer(0.5, lambda: os.close(other)).start()   # the other case ends
    started = time.monotonic()
    with ctx.hold_device():
        waited = time.monotonic() - started
        probe = os.open(str(tmp_path / os.listdir(tmp_path)[0]), os.O_RDWR)
        with pytest.raises(BlockingIOError):               # nobody else may take the device now
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        os.close(probe)
    assert waited >= 0.4
    assert runner.case_deadline - (now + 10) >= 0.4 and runner.wall_deadline - (now + 20) >= 0.4
    probe = os.open(str(tmp_path / os.listdir(tmp_path)[0]), os.O_RDWR)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)     # back to shared afterwards
    os.close(probe)
    os.close(mine)
