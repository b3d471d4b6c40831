"""Hostile submissions against the kernel-enforced limits (cgroup per sandbox) and the syscall filter.

Every test runs the submission through the real sandbox and asserts both the grade and the host's
state afterwards: no sandbox process left, every finished sandbox's cgroup removed and nothing
charged to the pool's groups beyond its ready spares, no key left in the kernel, no mount, no file.
The `kernel` test pack allows 256 MB, 24 processes and 30 s per case.
"""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from grader_testutil import PACKS, REFERENCE

KERNEL = PACKS / "kernel"
MEMORY_MB = 256
PROCESSES = 24
MARK = "h1hostile"


@pytest.fixture
def kprobe(grade_src):
    """kprobe(source) -> (result, value returned by probe() or None), graded with the kernel pack."""

    def run(source):
        res = grade_src(source, pack=KERNEL)
        value = None
        for note in res["notes"]:
            if note.startswith("PROBE:"):
                value = json.loads(note[len("PROBE:"):])
        return res, value

    return run


def only_test(res):
    assert len(res["tests"]) == 1, res
    return res["tests"][0]


def _zygotes():
    from grader.sandbox import pool

    return list(pool._pools.values())


def _sandbox_groups() -> list[str]:
    groups = []
    for z in _zygotes():
        for base in z.cgroup_bases:
            groups += [os.path.join(base, n) for n in os.listdir(base) if n.startswith("sb-")]
    return groups


def _procs(group: str) -> list[str]:
    try:
        with open(os.path.join(group, "cgroup.procs")) as fh:
            return fh.read().split()
    except FileNotFoundError:
        return []


def _charged_bytes(base: str) -> int:
    """Unreclaimable memory charged to a base group: anonymous, shared (tmpfs, memfd, SysV) and kernel
    memory of every sandbox below it (page cache of files read, which the kernel moves to the parent
    when a group is removed and may drop at any time, is left out)."""
    with open(os.path.join(base, "memory.stat")) as fh:
        stat = {k: int(v) for k, v in (line.split() for line in fh if len(line.split()) == 2)}
    kmem = os.path.join(base, "memory.kmem.usage_in_bytes")
    if os.path.exists(kmem):  # v1: hierarchical totals, kernel memory in its own counter
        with open(kmem) as fh:
            return stat.get("total_rss", 0) + stat.get("total_shmem", 0) + int(fh.read())
    kernel = stat.get("kernel", stat.get("slab", 0) + stat.get("sock", 0) + stat.get("kernel_stack", 0)
                      + stat.get("pagetables", 0))
    return stat.get("anon", 0) + stat.get("shmem", 0) + kernel


def _key_users() -> dict[int, str]:
    out = {}
    with open("/proc/key-users") as fh:
        for line in fh:
            uid, _, rest = line.partition(":")
            out[int(uid)] = rest.strip()
    return out


def _our_sandbox_processes() -> list[int]:
    """Processes of this test session's sandboxes: unprivileged descendants of its zygotes (other
    sessions on the machine may run sandboxes with the same uids at the same time)."""
    parent, uid = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                stat = fh.read()
            parent[int(d)] = int(stat.rsplit(")", 1)[1].split()[1])
            uid[int(d)] = os.stat(f"/proc/{d}").st_uid
        except (OSError, ValueError, IndexError):
            pass
    roots = {z.proc.pid for z in _zygotes()}
    found = []
    for pid in parent:
        p, seen = pid, 0
        while p in parent and p not in roots and seen < 64:
            p, seen = parent[p], seen + 1
        if p in roots and uid.get(pid, 0) != 0:
            found.append(pid)
    return found


def _host_files_with_mark() -> list[str]:
    found = []
    for d in ("/tmp", "/dev/shm", "/var/tmp"):
        try:
            found += [os.path.join(d, n) for n in os.listdir(d) if MARK in n]
        except OSError:
            pass
    return found


@pytest.fixture
def host_clean():
    """After the test: the host is as before (processes, cgroups, memory charged, keys, mounts, files)."""
    with open("/proc/self/mountinfo") as fh:
        mounts_before = fh.read().count(MARK)
    files_before = _host_files_with_mark()
    state = {"uids": set()}
    yield state
    from grader.sandbox import pool

    deadline = time.monotonic() + 20  # killed sandboxes must still be scheduled to exit on a busy machine
    size = pool.pool_size()

    def settled():
        groups = _sandbox_groups()
        return (not _our_sandbox_processes() and len(groups) <= size * sum(len(z.cgroup_bases) for z in _zygotes())
                and all(_procs(g) for g in groups)
                and not any(u in _key_users() for u in state["uids"]))

    while not settled() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _our_sandbox_processes() == []
    groups = _sandbox_groups()
    # what is left are the ready spares, each with its P inside; a finished sandbox's group is gone
    assert len(groups) <= size * sum(len(z.cgroup_bases) for z in _zygotes()), groups
    assert all(_procs(g) for g in groups), [(g, _procs(g)) for g in groups]
    for z in _zygotes():
        for base in z.cgroup_bases:
            if os.path.exists(os.path.join(base, "memory.stat")):
                # nothing the hostile submission wrote (tmpfs, memfd, sockets) is still charged
                assert _charged_bytes(base) < size * 96 * 1024 * 1024, (base, _charged_bytes(base))
    users = _key_users()
    assert not [u for u in state["uids"] if u in users], users
    with open("/proc/keys") as fh:
        assert MARK not in fh.read()
    with open("/proc/self/mountinfo") as fh:
        assert fh.read().count(MARK) == mounts_before
    assert _host_files_with_mark() == files_before


def _memory_message(t) -> bool:
    return f"used more than {MEMORY_MB} MB" in t["message"]


# ---------------------------------------------------------------------------------------- engine


def test_engine_block_says_which_limits_are_in_force(kprobe, host_clean):
    res, v = kprobe("def probe(info):\n    return {}\n")
    assert res["status"] == "graded" and res["score"] == 1.0, res["message"]
    limits = res["engine"]["limits"]
    assert limits["cgroup"] in ("v1", "v2") and limits["pids"] is True and "core" in limits["cpu"]
    assert "seccomp" in limits and "keyring" in limits and limits["swap"] != ""


# ---------------------------------------------------------------------------------------- memory


def test_memfd_beyond_memory_mb_is_stopped_with_a_readable_message(kprobe, host_clean):
    # memfd pages are in no process's address space: RLIMIT_AS never sees them (each file stays
    # under RLIMIT_FSIZE); the cgroup charges them
    res, v = kprobe(f"""
import os
def probe(info):
    chunk = b"x" * (8 << 20)
    fds, held = [], 0
    for _ in range(100):                       # 100 x 24 MB = 2.4 GB
        fd = os.memfd_create("{MARK}")
        fds.append(fd)
        for _ in range(3):
            os.write(fd, chunk)
            held += 8
    return {{"held_mb": held}}
""")
    t = only_test(res)
    assert v is None and t["score"] == 0 and t["status"] in ("error", "failed")
    assert _memory_message(t), t["message"]
    assert "memory" in t["message"] and "stopped" in t["message"]


def test_memory_beyond_the_limit_while_importing_is_a_readable_error(grade_src, host_clean):
    res = grade_src(f"""
import os
_fds = [os.memfd_create("{MARK}") for _ in range(40)]
for _fd in _fds:
    for _ in range(3):
        os.write(_fd, b"i" * (8 << 20))          # 40 x 24 MB at import time
def probe(info):
    return {{}}
""", pack=KERNEL)
    assert res["status"] == "error" and res["score"] == 0
    assert "Importing your file" in res["message"] and f"used more than {MEMORY_MB} MB" in res["message"], res["message"]


def test_dev_shm_and_tmpfs_scratch_count_toward_memory(kprobe, host_clean):
    # 48 MB of SysV shared memory + 60 MB in /dev/shm + 60 MB in the /tmp scratch + 120 MB of
    # memfd: each alone is allowed, together they are beyond 256 MB
    res, v = kprobe(f"""
import ctypes, os
def probe(info):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    out = {{"big_segment": libc.shmget(0, 32 << 20, 0o1600)}}   # beyond this IPC namespace's shmmax
    for _ in range(3):
        sid = libc.shmget(0, 16 << 20, 0o1600)
        addr = libc.shmat(sid, None, 0)
        ctypes.memset(addr, 1, 16 << 20)
    chunk = b"s" * (10 << 20)
    for d in ("/dev/shm", "/tmp/work"):
        for i in range(6):
            with open(f"{{d}}/{MARK}-{{i}}", "wb") as fh:
                fh.write(chunk)
    fds = [os.memfd_create("{MARK}") for _ in range(4)]
    for fd in fds:
        for _ in range(3):
            os.write(fd, chunk)
    out["held_mb"] = 48 + 60 + 60 + 120
    return out
""")
    t = only_test(res)
    assert v is None and t["score"] == 0, v
    assert _memory_message(t), t["message"]


def test_memory_of_children_counts_together(kprobe, host_clean):
    # 6 children of 120 MB each: every one is within its own RLIMIT_AS, together 720 MB
    res, v = kprobe("""
import os, select, time
def probe(info):
    r, w = os.pipe()
    kids = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            keep = b"c" * (120 << 20)
            os.write(w, b"k")
            time.sleep(4)
            os._exit(0 if len(keep) else 1)
        kids.append(pid)
    os.close(w)
    statuses = [os.waitpid(p, 0)[1] for p in kids]
    held_together = sum(1 for s in statuses if os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0)
    return {"survivors": held_together, "killed": sum(1 for s in statuses if os.WIFSIGNALED(s))}
""")
    t = only_test(res)
    if v is None:  # the OOM kill took P itself (cgroup v2 kills the whole group)
        assert _memory_message(t), t["message"]
    else:          # children were killed while they held their memory: at most 2 x 120 MB ever coexisted
        assert v["survivors"] <= 2 and v["killed"] >= 4, v


def test_kernel_memory_of_socket_buffers_is_charged(kprobe, host_clean):
    # socket buffers are kernel memory: 16 children fill up to 120 socket pairs each (about 3 GB)
    res, v = kprobe("""
import os, socket, time
def probe(info):
    r, w = os.pipe()
    kids = []
    for _ in range(16):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            held, socks = 0, []
            try:
                for _ in range(120):
                    a, b = socket.socketpair()
                    a.setblocking(False)
                    socks.append((a, b))
                    try:
                        while True:
                            held += a.send(b"y" * 65536)
                    except BlockingIOError:
                        pass
            except OSError:
                pass
            os.write(w, f"{held}\\n".encode())
            time.sleep(3)
            os._exit(0)
        kids.append(pid)
    os.close(w)
    data = b""
    while True:
        c = os.read(r, 4096)
        if not c:
            break
        data += c
    statuses = [os.waitpid(p, 0)[1] for p in kids]
    return {"held_mb": sum(int(x) for x in data.split()) >> 20, "killed": sum(1 for s in statuses if os.WIFSIGNALED(s))}
""")
    t = only_test(res)
    if v is None:
        assert _memory_message(t), t["message"]
    else:
        assert v["held_mb"] <= MEMORY_MB, v


def test_tmpfs_inodes_and_sysv_shared_memory_are_bounded(kprobe, host_clean):
    # empty files cost no data pages but kernel memory (inodes, dentries): the scratch has nr_inodes
    res, v = kprobe(f"""
import os, errno
def probe(info):
    n, err = 0, None
    try:
        for i in range(200000):
            open(f"/tmp/work/{MARK}{{i}}", "w").close()
            n += 1
    except OSError as exc:
        err = exc.errno
    shm = 0
    try:
        for i in range(200000):
            open(f"/dev/shm/{MARK}{{i}}", "w").close()
            shm += 1
    except OSError:
        pass
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    segments = [libc.shmget(0, 32 << 20, 0o1600), libc.shmget(0, 8 << 20, 0o1600)]
    with open("/proc/sys/kernel/shmmax") as fh:
        shmmax = int(fh.read())
    return {{"files": n, "errno": err, "shm_files": shm, "segments": segments, "shmmax": shmmax}}
""")
    assert res["status"] == "graded", res["message"]
    assert v["errno"] == 28 and v["files"] < 5000, v     # ENOSPC at nr_inodes
    assert v["shm_files"] < 2000, v
    # the sandbox's IPC namespace: a SysV segment beyond 16 MB is refused, a small one is fine
    assert v["shmmax"] == 16 << 20 and v["segments"][0] == -1 and v["segments"][1] >= 0, v


# ---------------------------------------------------------------------------------------- pids


def test_fork_and_thread_bomb_is_bounded_by_the_pid_limit(kprobe, host_clean):
    res, v = kprobe("""
import os, threading, time
def probe(info):
    r, w = os.pipe()
    def spawn_threads():
        n = 0
        try:
            for _ in range(200):
                threading.Thread(target=time.sleep, args=(3,), daemon=True).start()
                n += 1
        except RuntimeError:
            pass
        return n
    forked = 0
    for _ in range(200):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            spawn_threads()
            try:
                os.fork()            # grandchildren too
            except OSError:
                pass
            time.sleep(3)
            os._exit(0)
        forked += 1
    threads = spawn_threads()
    time.sleep(1)
    tasks = sum(len(os.listdir(f"/proc/{p}/task")) for p in os.listdir("/proc") if p.isdigit())
    return {"forked": forked, "threads": threads, "tasks": tasks}
""")
    assert res["status"] == "graded", res["message"]
    assert v["tasks"] <= PROCESSES, v


# ---------------------------------------------------------------------------------------- CPU


BUSY = """
import os, time
def probe(info):
    r, w = os.pipe()
    kids = []
    t0 = time.monotonic()
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            end = time.monotonic() + 8
            while time.monotonic() < end:
                pass
            os.write(w, f"{time.process_time()}\\n".encode())
            os._exit(0)
        kids.append(pid)
    os.close(w)
    for p in kids:
        os.waitpid(p, 0)
    cpu = sum(float(x) for x in os.read(r, 65536).split())
    return {"cpu_s": cpu, "wall_s": time.monotonic() - t0}
"""


def test_busy_neighbour_gets_one_core_and_changes_no_other_grade(kprobe, grade_src, host_clean):
    alone = grade_src(REFERENCE)
    assert alone["score"] == alone["max_score"] == 10.0, alone["message"]
    busy: dict = {}

    def hostile():
        busy["res"], busy["v"] = kprobe(BUSY)

    th = threading.Thread(target=hostile)
    th.start()
    time.sleep(3)  # its 20 spinners are running
    beside = [grade_src(REFERENCE) for _ in range(3)]
    th.join(120)
    assert not th.is_alive()
    for res in beside:
        assert res["status"] == "graded" and res["score"] == 10.0, res["message"]
    v = busy["v"]
    assert v is not None, busy["res"]["message"]
    # 20 processes spinning for 8 s got at most about one core between them (the cgroup's quota)
    assert v["cpu_s"] / v["wall_s"] <= 1.25, v


# ---------------------------------------------------------------------------------------- syscalls

SYSCALLS = """
import ctypes, errno, os, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {"x86_64": dict(clone=56, clone3=435, keyctl=250, add_key=248, request_key=249, io_uring_setup=425,
                     userfaultfd=323, bpf=321, perf_event_open=298, kexec_load=246, init_module=175, setns=308,
                     pivot_root=155),
      "aarch64": dict(clone=220, clone3=435, keyctl=219, add_key=217, request_key=218, io_uring_setup=425,
                      userfaultfd=282, bpf=280, perf_event_open=241, kexec_load=104, init_module=105, setns=268,
                      pivot_root=41)}[platform.machine()]

def err(ret):
    return "ok" if ret >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

def sys_(name, *args):
    return err(libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args]))
"""


def test_user_namespace_and_mount_are_refused(kprobe, host_clean):
    res, v = kprobe(SYSCALLS + f"""
def probe(info):
    out = {{"uid": os.getuid()}}
    out["unshare_user"] = err(libc.unshare(0x10000000))
    out["unshare_user_mount"] = err(libc.unshare(0x10000000 | 0x00020000))
    out["unshare_net"] = err(libc.unshare(0x40000000))
    out["clone_user"] = sys_("clone", 0x10000000 | 17, 0, 0, 0, 0)    # CLONE_NEWUSER | SIGCHLD
    out["clone_pid"] = sys_("clone", 0x20000000 | 17, 0, 0, 0, 0)
    out["clone3"] = sys_("clone3", 0, 0)
    out["setns"] = sys_("setns", 0, 0)
    os.makedirs("/tmp/work/{MARK}", exist_ok=True)
    out["mount"] = err(libc.mount(b"{MARK}", b"/tmp/work/{MARK}", b"tmpfs", 0, b"size=1g"))
    out["pivot_root"] = sys_("pivot_root", b"/tmp", b"/tmp/work")
    # what still works: threads and processes (glibc falls back from clone3 to clone)
    import subprocess, threading
    box = []
    t = threading.Thread(target=lambda: box.append(1)); t.start(); t.join()
    out["thread"] = box == [1]
    out["subprocess"] = subprocess.run(["/bin/sh", "-c", "echo ok"], capture_output=True, text=True).stdout.strip()
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    out["fork"] = os.WEXITSTATUS(os.waitpid(pid, 0)[1])
    return out
""")
    assert res["status"] == "graded", res["message"]
    host_clean["uids"].add(v["uid"])
    for key in ("unshare_user", "unshare_user_mount", "unshare_net", "clone_user", "clone_pid", "setns", "mount",
                "pivot_root"):
        assert v[key] == "EPERM", (key, v)
    assert v["clone3"] == "ENOSYS", v
    assert v["thread"] is True and v["subprocess"] == "ok" and v["fork"] == 7, v


def test_keyrings_are_refused_and_no_key_outlives_the_sandbox(kprobe, host_clean):
    res, v = kprobe(SYSCALLS + f"""
def probe(info):
    out = {{"uid": os.getuid()}}
    KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING = -4, -3
    out["add_key_user"] = sys_("add_key", b"user", b"{MARK}", b"secret", 6, KEY_SPEC_USER_KEYRING)
    out["add_key_session"] = sys_("add_key", b"user", b"{MARK}", b"secret", 6, KEY_SPEC_SESSION_KEYRING)
    out["keyctl_read_session"] = sys_("keyctl", 0, KEY_SPEC_SESSION_KEYRING, 0)   # KEYCTL_GET_KEYRING_ID
    out["request_key"] = sys_("request_key", b"user", b"{MARK}", None, 0)
    with open("/proc/keys") as fh:
        out["visible_keys"] = [l for l in fh.read().splitlines() if l.strip()]
    return out
""")
    assert res["status"] == "graded", res["message"]
    host_clean["uids"].add(v["uid"])
    for key in ("add_key_user", "add_key_session", "keyctl_read_session", "request_key"):
        assert v[key] == "EPERM", (key, v)
    # the sandbox's own session keyring is a fresh, empty one: nothing of the worker's is visible
    assert all("_ses" in line or "keyring" in line for line in v["visible_keys"]), v["visible_keys"]


def test_io_uring_userfaultfd_ptrace_bpf_perf_and_modules_are_refused(kprobe, host_clean):
    res, v = kprobe(SYSCALLS + """
import time
def probe(info):
    out = {}
    params = ctypes.create_string_buffer(120)
    out["io_uring_setup"] = sys_("io_uring_setup", 8, params)
    out["userfaultfd"] = sys_("userfaultfd", 1)                        # UFFD_USER_MODE_ONLY
    child = os.fork()
    if child == 0:
        time.sleep(5)
        os._exit(0)
    libc.ptrace.restype = ctypes.c_long
    out["ptrace"] = err(libc.ptrace(ctypes.c_long(16), ctypes.c_long(child), None, None))   # PTRACE_ATTACH
    os.kill(child, 9)
    os.waitpid(child, 0)
    attr = ctypes.create_string_buffer(128)
    out["bpf"] = sys_("bpf", 0, attr, 128)                               # BPF_MAP_CREATE
    ctypes.memmove(attr, (1).to_bytes(4, "little") + (128).to_bytes(4, "little"), 8)  # software event
    out["perf_event_open"] = sys_("perf_event_open", attr, 0, -1, -1, 0)
    out["modules"] = [sys_("init_module", None, 0, b""), sys_("kexec_load", 0, 0, None, 0)]
    return out
""")
    assert res["status"] == "graded", res["message"]
    for call in ("io_uring_setup", "userfaultfd", "ptrace", "bpf", "perf_event_open"):
        assert v[call] == "EPERM", (call, v)
    assert v["modules"] == ["EPERM", "EPERM"], v


# ---------------------------------------------------------------------------------------- start-up


def test_without_a_usable_cgroup_the_pool_refuses_to_start_unless_rlimit_only_is_allowed(monkeypatch, tmp_path):
    from grader.sandbox import pool

    saved = dict(pool._enforced)
    monkeypatch.setenv("GRADER_CGROUP_PARENT", str(tmp_path))  # a plain directory: no cgroup can be made there
    try:
        with pytest.raises(pool.SandboxUnavailable, match="no cgroup can be used .*GRADER_ALLOW_RLIMIT_ONLY"):
            pool.Zygote("cpu", ("torch",), 1)
        assert os.listdir(tmp_path) == []
        monkeypatch.setenv("GRADER_ALLOW_RLIMIT_ONLY", "1")
        z = pool.Zygote("cpu", ("torch",), 1)
        try:
            assert z.limits["cgroup"].startswith("none") and "rlimits only" in z.limits["cgroup"], z.limits
            assert "seccomp" in z.limits and z.cgroup_bases == []
            sb = z.acquire()
            assert sb.cgroup is None
            sb.close()
        finally:
            z.shutdown()
    finally:
        pool._enforced.clear()
        pool._enforced.update(saved)


def test_another_syscall_abi_cannot_bypass_the_filter(kprobe, host_clean):
    # the i386 ABI (int 0x80) has its own syscall numbers: unshare is 310 there, not 272
    res, v = kprobe(SYSCALLS + """
import mmap
def probe(info):
    out = {"arch": platform.machine(), "uid": os.getuid()}
    if out["arch"] != "x86_64":
        return out
    # push rbx; mov eax, 310 (i386 unshare); mov ebx, CLONE_NEWUSER; int 0x80; pop rbx; ret
    code = bytes.fromhex("53b836010000bb00000010cd805bc3")
    pid = os.fork()
    if pid == 0:
        buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        buf.write(code)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        ret = ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
        os._exit(100 if ret == 0 else 101)             # 100: the user namespace was created
    status = os.waitpid(pid, 0)[1]
    out["i386"] = ("signal", os.WTERMSIG(status)) if os.WIFSIGNALED(status) else ("exit", os.WEXITSTATUS(status))
    pid = os.fork()
    if pid == 0:  # the x32 ABI: unshare is 272 | __X32_SYSCALL_BIT
        os._exit(100 if libc.syscall(ctypes.c_long(0x40000000 | 272), ctypes.c_long(0x10000000)) == 0 else 101)
    status = os.waitpid(pid, 0)[1]
    out["x32"] = ("signal", os.WTERMSIG(status)) if os.WIFSIGNALED(status) else ("exit", os.WEXITSTATUS(status))
    return out
""")
    assert res["status"] == "graded" and v is not None, (res["message"], res["tests"][0]["message"])
    host_clean["uids"].add(v["uid"])
    if v["arch"] == "x86_64":
        assert v["i386"] == ["signal", 31], v               # SIGSYS: the filter kills a foreign-ABI call
        assert v["x32"] == ["signal", 31], v
