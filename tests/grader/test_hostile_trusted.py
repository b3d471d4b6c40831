"""Hostile submissions against the trusted side, through the real sandbox.

The submission can reach its own control socket (the Server object is in its process), so it can
send the trusted process any bytes it likes, at load time or during a case. Each test asserts the
grade and message AND the state of the trusted process (this pytest process: it runs grade()):
its RSS and CPU time stay small, the grade ends within wall_s, no descriptor is leaked and no
sandbox process is left.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

from grader_testutil import ROOT

WALL_S = 20
CASE_S = 4
SECRET = "HIDDENINPUT-7f3a9c"
REF = "REFVALUE-91c2d4"

PACK_TOML = f"""title = "Hostile submissions (engine tests only)"
points = 3
module = "sub"
required = ["visible_fn", "hidden_fn"]

[limits]
wall_s = {WALL_S}
case_s = {CASE_S}
memory_mb = 1024
processes = 32
output_kb = 16
result_mb = 64
"""

TESTS_PY = f'''
from grader.authoring import Fail, case

SECRET = {SECRET!r}
REF = {REF!r}


@case(points=1)
def visible_first(ctx):
    """visible_fn(1) is 2"""
    if ctx.sub.has("metric_name"):
        name = ctx.sub.call("metric_name")
        ctx.metric(name, float("nan"))
        ctx.note("the metric was " + str(name))
    got = ctx.sub.call("visible_fn", 1)
    if got != 2:
        raise Fail(f"visible_fn(1) returned {{got!r}}, expected 2")


@case(points=1, visible=False, hint="Think about the empty string.")
def hidden_case(ctx):
    """hidden check"""
    got = ctx.sub.call("hidden_fn", SECRET)
    if got != REF:
        raise Fail(f"hidden_fn({{SECRET!r}}) returned {{got!r}}, expected {{REF!r}}")


@case(points=1)
def visible_after(ctx):
    """visible_fn(2) is 4 (declared after the hidden case)"""
    got = ctx.sub.call("visible_fn", 2)
    if got != 4:
        raise Fail(f"visible_fn(2) returned {{got!r}}, expected 4")
'''

# How a submission reaches its control socket: the sandbox's Server object is in its own process.
CTL = '''
import gc, os, socket, struct, json

def _ctl():
    for o in gc.get_objects():
        if type(o).__name__ == "Server" and isinstance(getattr(o, "sock", None), socket.socket):
            s = o.sock
            s.setblocking(True)
            return s
    raise RuntimeError("no control socket")

def _frame(header_bytes, blob=b""):
    _ctl().sendall(struct.pack(">II", len(header_bytes), len(blob)) + header_bytes + blob)
'''

GOOD = f'''
def visible_fn(x):
    print("VISIBLE-OUT", x)
    return 2 * x

def hidden_fn(s):
    return {REF!r}
'''


@pytest.fixture(scope="module")
def hostile_pack(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile") / "hostile"
    d.mkdir()
    (d / "assignment.toml").write_text(PACK_TOML)
    (d / "tests.py").write_text(TESTS_PY)
    (d / "reference.py").write_text(GOOD)
    return d


class Watch:
    """The trusted process while one grade runs: peak RSS growth (sampled every 2 ms), CPU time,
    wall time, open descriptors."""

    def __enter__(self):
        self.proc = psutil.Process()
        self.fds0 = self.proc.num_fds()
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu0 = ru.ru_utime + ru.ru_stime
        self.t0 = time.monotonic()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.t0
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = ru.ru_utime + ru.ru_stime - self.cpu0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self.rss_growth_mb = (self.peak - self.base) / 2**20
        self.fds1 = self.proc.num_fds()

    def assert_small(self, cpu_s: float = 5.0, rss_mb: float = 40.0):
        assert self.elapsed < WALL_S + 5, f"the grade took {self.elapsed:.1f} s (wall_s {WALL_S})"
        assert self.cpu < cpu_s, f"the trusted process used {self.cpu:.1f} s of CPU"
        assert self.rss_growth_mb < rss_mb, f"the trusted process grew by {self.rss_growth_mb:.0f} MiB"
        assert self.fds1 <= self.fds0, f"descriptors leaked: {self.fds0} -> {self.fds1}"


@pytest.fixture(scope="module")
def warmed(hostile_pack):
    """One grade before any measurement: it imports torch and the pack and starts the pool."""
    from grader.api import grade

    res = grade(hostile_pack, "sub.py", GOOD.encode())
    assert res["score"] == 3, res
    return hostile_pack


@pytest.fixture
def run(warmed, no_leftovers):
    from grader.api import grade

    hostile_pack = warmed

    def go(source: str, **watch):
        with Watch() as w:
            res = grade(hostile_pack, "sub.py", textwrap.dedent(source).encode())
        w.assert_small(**watch)
        assert_clean(res)
        return res, w

    return go


BAD = [chr(c) for c in range(0x20) if c not in (9, 10)] + [chr(c) for c in range(0x7F, 0xA0)] + ["\u202e"]


def assert_clean(res: dict) -> None:
    """Every string of the result is valid UTF-8 without NUL or control characters; every float is
    finite (so PostgreSQL, the CLI and the pages can take it as it is)."""
    def walk(v, where):
        if isinstance(v, str):
            v.encode("utf-8")
            assert not any(ch in v for ch in BAD), (where, v[:200])
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k, where + ".key")
                walk(x, f"{where}.{k}")
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, f"{where}[{i}]")
        elif isinstance(v, float):
            assert v == v and abs(v) != float("inf"), where

    walk(res, "result")
    json.dumps(res, allow_nan=False).encode("utf-8")


def by_id(res):
    return {t["id"]: t for t in res["tests"]}


def test_a_correct_submission_is_graded_and_cheap(run):
    res, w = run(GOOD, cpu_s=3.0, rss_mb=20.0)
    assert res["status"] == "graded" and res["score"] == 3, res
    assert "VISIBLE-OUT 1" in res["output"] and "VISIBLE-OUT 2" in res["output"]


# --------------------------------------------------------------------------- class 3: bounded work

def test_a_giant_frame_header_is_refused_before_it_is_read(run):
    res, w = run(CTL + '''
def visible_fn(x):
    s = _ctl()
    s.sendall(struct.pack(">II", 64 * 1024 * 1024, 0))
    s.sendall(b"[" * (64 * 1024 * 1024))   # blocks: the trusted side stops reading after 8 bytes
    return 2 * x

def hidden_fn(s):
    return "x"
''')
    t = by_id(res)
    assert res["status"] == "graded" and res["score"] == 0
    for cid in ("visible_first", "visible_after"):
        assert t[cid]["status"] == "error" and "invalid reply" in t[cid]["message"], t[cid]
        assert "frame too large" in t[cid]["message"]
    assert w.rss_growth_mb < 16


def test_colliding_keys_deep_nesting_and_floods_stay_cheap(run):
    """Headers just under the cap, built to be expensive: 30k integer keys that all hash alike,
    nesting 500k deep, 500k tiny nodes."""
    res, w = run(CTL + '''
P = 2 ** 61 - 1

def visible_fn(x):
    if x == 1:
        pairs = ",".join(f"[{k * P},0]" for k in range(1, 30000))
        _frame(('{"ok":true,"value":{"$dict":[' + pairs + ']}}').encode())
    else:
        _frame(('{"ok":true,"value":' + "[" * 500000 + "]" * 500000 + '}').encode())
    return 2 * x

def hidden_fn(s):
    _frame(('{"ok":true,"value":[' + "0," * 500000 + '0]}').encode())
    return None
''')
    t = by_id(res)
    assert t["visible_first"]["status"] == "error" and "dict key" in t["visible_first"]["message"], t
    assert t["visible_after"]["status"] == "error" and "invalid reply" in t["visible_after"]["message"], t
    assert t["hidden_case"]["status"] == "error" and t["hidden_case"]["message"].startswith("Your code crashed")
    assert res["score"] == 0


def test_too_many_tensors_and_absurd_shapes_are_refused(run):
    res, w = run(CTL + '''
def visible_fn(x):
    n = 10001 if x == 1 else 1
    meta = {f"t{i}": {"dtype": "F32", "shape": [0] if x == 1 else [1] * 40, "data_offsets": [0, 0 if x == 1 else 4]}
            for i in range(n)}
    head = json.dumps(meta, separators=(",", ":")).encode()
    blob = struct.pack("<Q", len(head)) + head + (b"" if x == 1 else b"\\0\\0\\0\\0")
    _frame(b'{"ok":true,"value":{"$t":"t0"}}', blob)
    return 2 * x

def hidden_fn(s):
    return "x"
''')
    t = by_id(res)
    assert "too many tensors" in t["visible_first"]["message"], t["visible_first"]
    assert "bad shape" in t["visible_after"]["message"], t["visible_after"]


def test_a_trickled_reply_ends_at_the_deadline(run):
    """One byte at a time, never finishing: the case deadline still holds."""
    res, w = run(CTL + '''
import time

def visible_fn(x):
    s = _ctl()
    s.sendall(struct.pack(">II", 1000, 0))
    while True:
        s.sendall(b" ")
        time.sleep(0.01)

def hidden_fn(s):
    return "x"
''')
    t = by_id(res)
    assert t["visible_first"]["status"] == "timeout" and t["visible_after"]["status"] == "timeout", t
    assert w.elapsed < 3 * CASE_S + 8


# --------------------------------------------------------------------------- class 4: never raises

@pytest.mark.parametrize("at_import,expect", [
    ('_frame(b\'{"ok": true, "value": {"$dict": [["missing", 5]]}}\')', "invalid reply"),
    ('_frame(b\'{"ok": false, "error": [1, 2]}\')', "invalid reply"),
    ('_frame(b\'{"ok": true, "value": {"$dict": [[[1, 2], 3]]}}\')', "invalid reply"),
    ('_frame(b"[1, 2]")', "invalid reply"),
    ('_frame(b"\\xff\\xfe not json")', "invalid reply"),
    ('_frame(b\'{"ok": true, "value": {"$t": "nope"}}\', b"garbage")', "invalid reply"),
    ('_ctl().sendall(struct.pack(">II", 100, 0) + b"{\\"ok\\": tr"); os._exit(0)', "crashed"),
    ('_ctl().shutdown(socket.SHUT_RDWR)', "Importing your file"),
], ids=["bad-missing", "bad-error", "list-key", "not-object", "not-utf8", "bad-tensors", "closed-mid-frame",
        "shutdown"])
def test_malformed_replies_during_load_are_error_results(run, at_import, expect):
    res, w = run(CTL + GOOD + "\n" + at_import + "\n")
    assert res["status"] == "error" and res["score"] == 0, res
    assert expect in res["message"], res["message"]
    assert all(t["status"] == "error" and t["message"].startswith("Not run") for t in res["tests"])


def test_cli_exits_0_with_the_error_result(hostile_pack, tmp_path, no_leftovers):
    sub = tmp_path / "sub.py"
    sub.write_text(CTL + GOOD + '\n_frame(b\'{"ok": true, "value": {"$dict": [["missing", 5]]}}\')\n')
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL", "GRADER_TEST_TOKEN")}
    p = subprocess.run([sys.executable, "-m", "grader", "grade", str(hostile_pack), str(sub), "--json"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Traceback" not in p.stderr
    res = json.loads(p.stdout)
    assert res["status"] == "error" and "invalid reply" in res["message"]
    bad = tmp_path / "bad.ipynb"
    bad.write_bytes(b'{"cells": ' + b"[" * 50000 + b"]" * 50000 + b"}")
    p = subprocess.run([sys.executable, "-m", "grader", "grade", str(hostile_pack), str(bad)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert "nested too deeply" in p.stdout


# --------------------------------------------------------------------------- class 5: clean strings

HOSTILE_TEXT = "msg \x00 NUL \ud800 lone \x1b]52;c;aGFjaw==\x07 osc \x1b[2J\x1b[H cls \x9b csi \r\x08 10/10 \u202e rlo"


def test_control_characters_nul_and_surrogates_are_cleaned_everywhere(run):
    res, w = run(f'''
import os

def metric_name():
    return {HOSTILE_TEXT!r}

def visible_fn(x):
    os.write(1, b"out \\x00 \\xed\\xa0\\x80 \\xff \\x1b]52;c;aGk=\\x07 \\x1b[2J\\r\\n")
    Evil = type("Evil\\x1b[31mType\\x7f", (ValueError,), {{}})
    raise Evil({HOSTILE_TEXT!r})

def hidden_fn(s):
    return {REF!r}
''')
    t = by_id(res)["visible_first"]
    assert t["status"] == "failed" and "Evil[31mType" in t["message"] and "10/10" in t["message"], t
    assert "out" in res["output"] and "[2J" in res["output"]
    assert list(res["metrics"].values()) == [None]  # NaN is not JSON
    assert any("the metric was msg" in n for n in res["notes"])
    assert by_id(res)["hidden_case"]["status"] == "passed"


# --------------------------------------------------------------------------- class 6: hidden is hidden

LEAKER = '''
import os, sys, threading, time
MODE = {mode}
_seen = []

def visible_fn(x):
    print("VISIBLE-OUT", x, flush=True)
    if _seen:  # a hidden input seen earlier would come back in a visible case's message
        raise ValueError("LEAK " + _seen[0])
    return 2 * x

def hidden_fn(s):
    _seen.append(s)
    def spam():
        end = time.monotonic() + 0.4
        while time.monotonic() < end:
            os.write(1, ("SPAM " + s + "\\n").encode())
            time.sleep(0.001)
    threading.Thread(target=spam, daemon=True).start()
    print("PRINTED", s, flush=True)
    if MODE == 0:
        raise type("Leak_" + s.replace("-", "_"), (Exception,), {{}})("EXC " + s)
    if MODE == 1:
        return "WRONG " + s
    if MODE == 2:
        os.write(2, ("STDERR " + s).encode())
        os._exit(3)
    raise SystemExit(s)
'''


def test_hidden_cases_never_leak_inputs_references_or_output(run):
    """30 grades, four ways to fail a hidden case, a thread that keeps printing the hidden input
    after the case ended: the secret and the reference never appear anywhere in the result, the
    visible cases' output is always there, and the hidden message is the driver's own."""
    generic = {0: "raised an exception", 1: "not correct", 2: "crashed the sandbox", 3: "called exit()"}
    for rep in range(32):
        mode = rep % 4
        res, w = run(LEAKER.format(mode=mode))
        dumped = json.dumps(res, ensure_ascii=False)
        assert SECRET not in dumped and SECRET.replace("-", "_") not in dumped, (rep, dumped[:3000])
        assert REF not in dumped, (rep, dumped[:3000])
        t = by_id(res)
        assert t["visible_first"]["status"] == "passed" and t["visible_after"]["status"] == "passed", (rep, t)
        assert generic[mode] in t["hidden_case"]["message"], (rep, t["hidden_case"])
        assert t["hidden_case"]["message"].endswith("Hint: Think about the empty string.")
        assert "VISIBLE-OUT 1" in res["output"] and "VISIBLE-OUT 2" in res["output"], (rep, res["output"])
        assert "SPAM" not in res["output"] and "PRINTED" not in res["output"] and "STDERR" not in res["output"]
        assert "[output printed during a hidden test is not shown]" in res["output"]
        assert res["score"] == 2


CEILING_PROBE = r"""
import json, os, resource, sys
from pathlib import Path
os.environ["GRADER_TRUSTED_MEMORY_MB"] = "3072"
from grader.api import grade, trusted_ceiling
out = {"ceiling_mb": trusted_ceiling(), "rlimit_data": resource.getrlimit(resource.RLIMIT_DATA)[0]}
try:
    big = bytearray(4 * 1024 ** 3)          # more than the ceiling: refused, the process goes on
    out["big"] = "allocated"
    del big
except MemoryError:
    out["big"] = "MemoryError"
small = bytearray(64 * 1024 ** 2)            # well within it
out["small"] = len(small)
pack = Path(sys.argv[1])
res = grade(pack, "reference.py", (pack / "reference.py").read_bytes())
out["score"], out["max_score"] = res["score"], res["max_score"]
print(json.dumps(out))
"""


def test_the_trusted_process_has_its_own_memory_ceiling(no_leftovers):
    """A process that grades (a Celery worker process, `python -m grader`) puts itself under
    GRADER_TRUSTED_MEMORY_MB: past it an allocation fails with MemoryError in that process instead
    of taking the host, and grading under the ceiling is unchanged."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_TRUSTED_MEMORY")}
    env["PYTHONPATH"] = str(ROOT)
    p = subprocess.run([sys.executable, "-c", CEILING_PROBE, str(ROOT / "assignments" / "attention")],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["ceiling_mb"] == 3072 and out["rlimit_data"] == 3072 * 1024 * 1024, out
    assert out["big"] == "MemoryError" and out["small"] == 64 * 1024 ** 2, out
    assert out["score"] == out["max_score"] == 10, out


def test_worker_processes_and_the_cli_set_the_ceiling_and_zero_turns_it_off():
    code = ("import resource, sys\nfrom grader.api import trusted_ceiling\n"
            "print(trusted_ceiling(), resource.getrlimit(resource.RLIMIT_DATA)[0])")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_TRUSTED_MEMORY")}
    env["PYTHONPATH"] = str(ROOT)
    default = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert default.stdout.split() == ["6144", str(6144 * 1024 * 1024)], default.stderr
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(env, GRADER_TRUSTED_MEMORY_MB="0"), cwd=ROOT)
    assert off.stdout.split() == ["None", str(resource.RLIM_INFINITY)], off.stderr
    # a Celery worker process sets it at worker_process_init (the signal, as prefork sends it)
    worker = subprocess.run([sys.executable, "-c", "import django, resource\ndjango.setup()\n"
                             "from celery import signals\nimport courseplatform.submissions.warm\n"
                             "signals.worker_process_init.send(sender=None)\n"
                             "print(resource.getrlimit(resource.RLIMIT_DATA)[0])"],
                            capture_output=True, text=True, cwd=ROOT,
                            env=dict(env, GRADER_TRUSTED_MEMORY_MB="4096", COURSEPLATFORM_WARM_POOL="0",
                                     DJANGO_SETTINGS_MODULE="courseplatform.settings"))
    assert worker.stdout.split()[-1] == str(4096 * 1024 * 1024), worker.stderr[-2000:]
    # and the engine's CLI at its start
    cli = subprocess.run([sys.executable, "-c", "import resource, runpy, sys\nsys.argv = ['grader', 'grade', '/nonexistent', '/x']\n"
                          "try:\n    runpy.run_module('grader', run_name='__main__')\nexcept SystemExit:\n    pass\n"
                          "print(resource.getrlimit(resource.RLIMIT_DATA)[0])"],
                         capture_output=True, text=True, env=dict(env, GRADER_TRUSTED_MEMORY_MB="2048"), cwd=ROOT)
    assert cli.stdout.split()[-1] == str(2048 * 1024 * 1024), cli.stderr
