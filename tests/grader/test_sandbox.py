"""Hostile submissions through the real sandbox: each asserts the outcome and that the worker lives on."""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from grader_testutil import ATTENTION, FAKE_SECRET, REFERENCE, sandbox_processes

# Wherever the checkout lies (/work/main here, anywhere in CI): its virtualenv is the only part of it
# the sandbox may see.
ROOT = str(Path(__file__).resolve().parents[2])
VENV = os.path.realpath(sys.prefix)


def assert_worker_alive(grade_src):
    res = grade_src(REFERENCE)
    assert res["status"] == "graded" and res["score"] == res["max_score"] == 10.0, res["message"]


def only_test(res):
    assert len(res["tests"]) == 1
    return res["tests"][0]


def test_reference_full_marks_in_sandbox(grade_src):
    res = grade_src(REFERENCE)
    assert res["engine"]["sandbox"] == "namespaces"
    assert res["status"] == "graded" and res["score"] == 10.0
    assert all(t["status"] == "passed" for t in res["tests"])


def test_identity_namespaces_and_view(probe):
    res, v = probe("""
import os, sys
def probe(info):
    return {"uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(), "groups": os.getgroups(),
            "pid": os.getpid(), "ppid": os.getppid(), "root": sorted(os.listdir("/")), "cwd": os.getcwd(),
            "procs": sorted(p for p in os.listdir("/proc") if p.isdigit()),
            "hostname": os.uname().nodename, "modules": [m for m in sys.modules if "grader_pack" in m or m in ("reference", "tests")]}
""")
    assert res["status"] == "graded", res["message"]
    assert v["uid"] >= 300000 and v["euid"] == v["uid"] and v["gid"] == v["uid"] and v["groups"] == []
    assert v["pid"] == 1 and v["ppid"] == 0 and v["procs"] == ["1"]
    assert v["cwd"] == "/tmp/work" and v["hostname"] == "sandbox"
    assert "home" not in v["root"] and "var" not in v["root"] and "mnt" not in v["root"]
    assert v["modules"] == []


def test_infinite_loop_times_out_and_process_group_is_killed(probe, grade_src, no_leftovers):
    t0 = time.monotonic()
    res, _ = probe("""
import os
def probe(info):
    for _ in range(3):
        if os.fork() == 0:
            os.setsid()          # try to escape the process group: the pid namespace still ends
            while True:
                pass
    while True:
        pass
""")
    elapsed = time.monotonic() - t0
    t = only_test(res)
    assert t["status"] == "timeout" and t["score"] == 0
    assert "Timed out after 3 s" in t["message"] and "infinite loop" in t["message"]
    assert elapsed < 10
    assert_worker_alive(grade_src)


def test_infinite_loop_at_import_is_an_error(grade_src):
    res = grade_src("while True:\n    pass\n", pack=ATTENTION.parent.parent / "tests" / "grader" / "packs" / "probe")
    assert res["status"] == "error" and res["score"] == 0
    assert "Importing your file did not finish" in res["message"]


def test_allocating_20_gb_is_refused_with_a_clear_message(probe, grade_src):
    res, _ = probe("""
import torch
def probe(info):
    x = torch.empty(5 * 1024**3, dtype=torch.float32)   # 20 GiB
    x.fill_(1)
    return {"allocated": True}
""")
    t = only_test(res)
    assert t["status"] == "failed" and t["score"] == 0
    assert "ran out of memory" in t["message"]
    res, _ = probe("def probe(info):\n    b = bytearray(20 * 1024**3)\n    return len(b)\n")
    assert "ran out of memory" in only_test(res)["message"] and "MemoryError" in only_test(res)["message"]
    assert_worker_alive(grade_src)


def test_fork_storm_is_bounded_by_the_process_limit(probe, no_leftovers):
    res, v = probe("""
import os, time
def probe(info):
    forked = refused = 0
    for _ in range(500):
        try:
            pid = os.fork()
        except OSError:
            refused += 1
            continue
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        forked += 1
    return {"forked": forked, "refused": refused}
""")
    assert res["status"] == "graded", res["message"]
    assert v["forked"] < 16 and v["refused"] > 480 and v["forked"] + v["refused"] == 500


def test_no_network_loopback_or_outside(probe):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        res, v = probe(f"""
import socket
def probe(info):
    out = {{}}
    for host, port in (("127.0.0.1", {port}), ("1.1.1.1", 80), ("8.8.8.8", 53)):
        try:
            socket.create_connection((host, port), timeout=2)
            out[host] = "connected"
        except OSError as e:
            out[host] = type(e).__name__ + ": " + str(e)
    try:
        socket.getaddrinfo("pypi.org", 443)
        out["dns"] = "resolved"
    except OSError as e:
        out["dns"] = type(e).__name__
    return out
""")
    finally:
        listener.close()
    assert "Connection refused" in v["127.0.0.1"]
    assert "unreachable" in v["1.1.1.1"] and "unreachable" in v["8.8.8.8"]
    assert v["dns"] != "resolved"


def test_pack_files_are_invisible_by_path_and_by_import(probe):
    res, v = probe("""
import os, importlib
def probe(info):
    out = {"read": {}, "import": {}, "walk": []}
    for p in (info["pack_dir"] + "/reference.py", info["pack_dir"] + "/tests.py",
              "{ROOT}/assignments/attention/reference.py", "{ROOT}/assignments/attention/tests.py"):
        try:
            out["read"][p] = open(p).read()[:20]
        except OSError as e:
            out["read"][p] = type(e).__name__
    for name in ("reference", "tests", "assignments"):
        try:
            importlib.import_module(name)
            out["import"][name] = "imported"
        except ImportError as e:
            out["import"][name] = type(e).__name__
    for top in ("/tmp", "/etc", "/root", "/dev"):
        for d, dirs, files in os.walk(top):
            if d == "{VENV}" or d.startswith("{VENV}/"):  # a checkout under /tmp: its read-only venv
                dirs[:] = []
                continue
            out["walk"] += [os.path.join(d, f) for f in files if f == "assignment.toml" or "/tmp" in d]
    out["work"] = sorted(os.listdir("{ROOT}"))
    return out
""".replace("{ROOT}", ROOT).replace("{VENV}", VENV))
    assert res["status"] == "graded", res["message"]
    assert set(v["read"].values()) == {"FileNotFoundError"}, v["read"]
    assert set(v["import"].values()) == {"ModuleNotFoundError"}, v["import"]
    assert v["walk"] == ["/tmp/work/probe.py"]  # the scratch dir holds the submission only
    assert v["work"] == [".venv"]  # only the virtualenv of the whole checkout is mounted


def test_other_submissions_and_media_are_invisible(probe, tmp_path):
    marker = f"h1-marker-{os.getpid()}-{time.time()}"
    res, v = probe(f"""
def probe(info):
    open("/tmp/work/left-behind.txt", "w").write("{marker}")
    return "written"
""")
    assert v == "written"
    secret_upload = tmp_path / "alice_submission.py"
    secret_upload.write_text("SECRET ANSWER")
    media = ROOT + "/var/media"
    res, v = probe(f"""
import os
def probe(info):
    out = {{"found": []}}
    for top in ("/tmp", "/dev/shm"):
        for d, dirs, files in os.walk(top):
            if d == "{VENV}" or d.startswith("{VENV}/"):  # a checkout under /tmp: its read-only venv
                dirs[:] = []
                continue
            for f in files:
                try:
                    if "{marker[::-1]}"[::-1] in open(os.path.join(d, f)).read():
                        out["found"].append(os.path.join(d, f))
                except OSError:
                    pass
    for p in ("{secret_upload}", "{media}"):
        out[p] = os.path.exists(p)
    return out
""")
    assert v["found"] == [] and v[str(secret_upload)] is False and v[media] is False


def test_environment_secrets_are_invisible(probe):
    assert os.environ["SECRET_KEY"] == FAKE_SECRET  # the trusted process does hold them
    res, v = probe("""
import os
def probe(info):
    out = {"env": dict(os.environ), "leaks": []}
    for d in os.listdir("/proc"):
        if d.isdigit() or d == "self":
            try:
                data = open(f"/proc/{d}/environ", "rb").read()
            except OSError:
                continue
            if b"fake-secret" in data:
                out["leaks"].append(d)
    for pid in (os.getppid(), info["trusted_pid"]):
        try:
            out[f"parent_{pid}"] = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
        except OSError as e:
            out[f"parent_{pid}"] = type(e).__name__
    return out
""")
    assert res["status"] == "graded", res["message"]
    text = repr(v)
    assert FAKE_SECRET not in text and "fake-secret" not in text
    assert "SECRET_KEY" not in v["env"] and "DATABASE_URL" not in v["env"] and "GRADER_TEST_TOKEN" not in v["env"]
    assert v["leaks"] == []


def test_writing_outside_scratch_is_refused(probe):
    host_target = f"{ROOT}/var/h1-escape-{os.getpid()}.txt"
    res, v = probe(f"""
def probe(info):
    out = {{}}
    for p in ("/tmp/work/ok.txt", "/dev/shm/ok.txt", "/etc/evil", "/usr/lib/evil", "/evil", "{host_target}",
              info["pack_dir"] + "/reference.py", "{VENV}/evil.py", "/proc/sys/kernel/hostname"):
        try:
            with open(p, "w") as fh:
                fh.write("x")
            out[p] = "written"
        except OSError as e:
            out[p] = type(e).__name__ + ":" + str(e.errno)
    return out
""")
    assert res["status"] == "graded", res["message"]
    assert v.pop("/tmp/work/ok.txt") == "written" and v.pop("/dev/shm/ok.txt") == "written"
    assert all(r != "written" for r in v.values()), v
    assert not os.path.exists(host_target)
    assert "x" != (ATTENTION / "reference.py").read_text()[:1]


def test_printing_100_mb_is_truncated_and_grading_goes_on(grade_src):
    res = grade_src("import sys\nsys.stdout.write('x' * 100_000_000)\nprint('after')\n" + REFERENCE)
    assert res["status"] == "graded" and res["score"] == 10.0
    assert len(res["output"]) < 70 * 1024
    assert "output truncated: 100000006 bytes printed" in res["output"]


def test_os_exit_is_an_error_and_later_cases_get_a_fresh_sandbox(grade_src):
    src = REFERENCE.replace("    d_k = q.shape[-1]\n", "    d_k = q.shape[-1]\n    if q.dim() == 2 and q.shape[0] == 5:\n        import os; os._exit(3)\n")
    res = grade_src(src)
    first = res["tests"][0]
    assert first["status"] == "error" and "exited with code 3" in first["message"]
    # the other cases ran in a fresh sandbox (the submission was loaded again) and passed
    assert all(t["status"] == "passed" for t in res["tests"][1:])
    assert res["score"] == 9.0 and res["status"] == "graded"


def test_sys_exit_is_a_failed_case(probe, grade_src):
    res, _ = probe("import sys\ndef probe(info):\n    sys.exit(4)\n")
    t = only_test(res)
    assert t["status"] == "failed" and "sys.exit(4)" in t["message"]
    res = grade_src("import sys\nsys.exit(0)\n")
    assert res["status"] == "error" and "sys.exit" in res["message"]
    assert_worker_alive(grade_src)


def test_segfault_through_ctypes(probe, grade_src):
    # a non-canonical address: always a fault (page 0 can be mapped on some kernels)
    res, _ = probe("import ctypes\ndef probe(info):\n    return ctypes.string_at(0xdead00000000dead, 16)\n")
    t = only_test(res)
    assert t["status"] == "error" and "SIGSEGV" in t["message"]
    assert_worker_alive(grade_src)


def test_killing_its_parent_and_everything_it_can(probe, grade_src):
    """P is pid 1 of its own pid namespace: its real parent, the sandbox parent and the worker are
    not addressable; kill(0)/kill(-1) reach only the namespace itself."""
    from grader.sandbox import pool

    zygotes = [z.proc.pid for z in pool._pools.values()]
    assert zygotes
    res, v = probe("""
import os, signal
def probe(info):
    out = {}
    for name, pid in (("ppid", os.getppid()), ("trusted", info["trusted_pid"]), ("all", -1), ("group", 0)):
        try:
            os.kill(pid, signal.SIGKILL)
            out[name] = "sent"
        except OSError as e:
            out[name] = type(e).__name__
    return out
""")
    assert res["status"] == "graded", res["message"]
    assert v["trusted"] == "ProcessLookupError"   # the worker's pid does not exist in the sandbox
    for pid in zygotes + [os.getpid()]:
        os.kill(pid, 0)  # the sandbox parents and the worker are alive
    # a submission that kills its own sandbox is an error for that test, the rest goes on
    res, _ = probe("import os, signal\ndef probe(info):\n    os.kill(os.getpid(), signal.SIGSEGV)\n    import ctypes; ctypes.string_at(0xdead00000000dead, 1)\n")
    t = only_test(res)
    assert t["status"] == "error" and "SIGSEGV" in t["message"]
    assert_worker_alive(grade_src)


def test_lying_eq_and_tensor_subclass_gain_nothing(grade_src):
    lying = """
class Liar:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def allclose(self, *a, **k): return True
    shape = (5, 3)
def scaled_dot_product_attention(q, k, v, mask=None):
    return Liar(), Liar()
"""
    res = grade_src(lying)
    assert res["score"] == 0
    assert "must be a torch.Tensor, got a Liar object" in res["tests"][0]["message"]
    subclass = """
import torch
class Always(torch.Tensor):
    def __eq__(self, other): return torch.ones((), dtype=torch.bool)
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.__eq__):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})
def scaled_dot_product_attention(q, k, v, mask=None):
    w = torch.zeros(q.shape[:-1] + (k.shape[-2],), dtype=q.dtype).as_subclass(Always)
    out = torch.zeros(q.shape[:-1] + (v.shape[-1],), dtype=q.dtype).as_subclass(Always)
    return out, w
"""
    res = grade_src(subclass)
    assert res["status"] == "graded"
    assert res["score"] == 1.0  # only the shapes/dtype case; every value check saw plain zeros
    assert "differs from the expected values" in res["tests"][1]["message"]


def test_garbage_on_the_control_channel(probe, grade_src):
    res, _ = probe("""
import os, socket, stat
def probe(info):
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.write(fd, b"\\xff" * 8 + b"garbage that is not a frame" * 100)
        except OSError:
            pass
    import time; time.sleep(30)
""")
    t = only_test(res)
    assert t["status"] == "error" and "invalid reply" in t["message"]
    assert_worker_alive(grade_src)


def test_huge_reply_is_refused(probe):
    res, _ = probe("import torch\ndef probe(info):\n    return torch.zeros(70 * 1024 * 1024 // 4)\n")
    t = only_test(res)
    assert t["status"] == "error" and "too large" in t["message"]


def test_no_leftover_sandbox_processes_after_all_that(no_leftovers):
    assert isinstance(sandbox_processes(), list)


def test_output_of_hidden_cases_is_withheld(grade_src):
    src = REFERENCE.replace("    d_k = q.shape[-1]\n", "    d_k = q.shape[-1]\n    print('SHAPE', tuple(q.shape))\n")
    res = grade_src("print('imported')\n" + src)
    assert res["score"] == 10.0
    out = res["output"]
    assert out.startswith("imported\n") and "SHAPE (5, 8)" in out          # visible cases
    assert "SHAPE (4, 9, 12)" not in out                                    # rows_sum_to_one is hidden
    assert "[output printed during a hidden test is not shown]" in out
