"""Kernel-enforced resource limits: one cgroup per sandbox (cgroup v1 or v2).

The zygote detects the hierarchy once at start (``setup()``), then creates one group per spare
sandbox while it prepares it (``Manager.new_group()``): the directories and the static settings
(CPU quota and share, no swap, the OOM policy) are written there, not while a submission waits.

A ``Group`` travels by fork: the zygote opens every file the sandbox will need before it forks S,
because S and P pivot into a root where /sys is not visible.

- P (the single-use sandbox process) calls ``enter()`` first thing: it and every descendant (the
  Jupyter kernel included) are then in the group. In ``configure()`` it calls ``apply()`` with the
  pack's limits (memory, pids) and ``close_child_fds()`` before any student code runs, so the
  submission holds no descriptor of the group.
- S (P's parent, outside the group) calls ``report()`` after P died (OOM kills, limit) and
  ``remove()`` (rmdir through directory descriptors).
- The zygote calls ``forget()`` after forking S (it keeps only the paths, to remove leftovers).

Memory is charged by the kernel to the group whoever maps it: anonymous memory of every process,
page cache, shared memory (memfd, /dev/shm, the tmpfs scratch, SysV shm), and kernel memory
(socket buffers, inodes, dentries, pipes, page tables). Swap is not allowed (v1: memsw = limit;
v2: memory.swap.max = 0).
"""
from __future__ import annotations

import errno
import os
import time

CPU_PERIOD_US = 100_000
CONTROLLERS = ("memory", "pids", "cpu")


class CgroupError(OSError):
    """No usable cgroup hierarchy (the message says why and what to do)."""


def _write(path: str, value) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def _pwrite(fd: int, value) -> None:
    os.pwrite(fd, str(value).encode(), 0)


def _pread(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode(errors="replace")


def _weight(nice: int, base: int, lo: int, hi: int) -> int:
    """The scheduler's weight of a nice value (about 1.25x per step), scaled to a cgroup weight."""
    return max(lo, min(hi, round(base / 1.25 ** max(-20, min(19, int(nice))))))


def _keyed(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount point, root inside the hierarchy, fstype, super options) of every cgroup mount."""
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            lf, rf = left.split(), right.split()
            if len(rf) >= 3 and rf[0] in ("cgroup", "cgroup2"):
                found.append((lf[4].replace("\\040", " "), lf[3], rf[0], set(rf[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """Controller name (or "" for the unified hierarchy) -> this process's cgroup path."""
    out = {}
    with open("/proc/self/cgroup") as fh:
        for line in fh:
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            if hid == "0" and ctrls == "":
                out[""] = path
            for c in ctrls.split(","):
                if c:
                    out[c] = path
    return out


def _join(mount: str, root: str, path: str) -> str:
    if root != "/" and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return os.path.join(mount, path.lstrip("/")).rstrip("/")


class Group:
    """One sandbox's cgroup: directories per hierarchy and the descriptors P and S need."""

    def __init__(self, manager: "Manager", name: str):
        self.manager = manager
        self.name = name
        self.version = manager.version
        self.dirs = {h: os.path.join(base, name) for h, base in manager.bases.items()}
        self.fds: dict[str, int] = {}      # opened before fork; P uses procs/limits, S the rest
        self.parent_fds: dict[str, int] = {}

    # ------------------------------------------------------------------ zygote
    def create(self, memory_mb: int, pids: int, spare_nice: int = 0) -> None:
        """mkdir, static settings and conservative limits for the spare (P applies the pack's).

        A spare's CPU weight follows GRADER_SPARE_NICE (nice means nothing across groups), until
        P takes a submission and apply() gives it a full share."""
        try:
            for d in self.dirs.values():
                os.mkdir(d, 0o700)
            m = self.manager
            if self.version == 2:
                d = self.dirs[""]
                _write(f"{d}/cpu.max", f"{int(CPU_PERIOD_US * m.cpu_cores)} {CPU_PERIOD_US}")
                _write(f"{d}/cpu.weight", _weight(spare_nice, 100, 1, 10000))
                if m.memsw:  # absent where the kernel has no swap accounting (then there is no swap to use)
                    _write(f"{d}/memory.swap.max", 0)
                if os.path.exists(f"{d}/memory.oom.group"):  # 4.19+: an OOM kill ends the whole sandbox
                    _write(f"{d}/memory.oom.group", 1)
            else:
                _write(f"{self.dirs['cpu']}/cpu.cfs_period_us", CPU_PERIOD_US)
                _write(f"{self.dirs['cpu']}/cpu.cfs_quota_us", int(CPU_PERIOD_US * m.cpu_cores))
                _write(f"{self.dirs['cpu']}/cpu.shares", _weight(spare_nice, 1024, 2, 262144))
                try:
                    _write(f"{self.dirs['memory']}/memory.swappiness", 0)
                except OSError:
                    pass
            self._open()
            self.apply(memory_mb, pids, full_share=False)
        except BaseException:
            self.close_all()
            self.remove()
            raise

    def _open(self) -> None:
        if self.version == 2:
            d = self.dirs[""]
            names = {"procs": "cgroup.procs", "mem": "memory.max", "pids": "pids.max", "events": "memory.events",
                     "peak": "memory.peak"}
            names["cpu"] = "cpu.weight"
            for key, fname in names.items():
                path = f"{d}/{fname}"
                if key == "peak" and not os.path.exists(path):
                    continue
                self.fds[key] = os.open(path, os.O_RDONLY if key in ("events", "peak") else os.O_RDWR)
        else:
            mem, pids, cpu = self.dirs["memory"], self.dirs["pids"], self.dirs["cpu"]
            self.fds["procs.memory"] = os.open(f"{mem}/cgroup.procs", os.O_WRONLY)
            self.fds["procs.pids"] = os.open(f"{pids}/cgroup.procs", os.O_WRONLY)
            self.fds["procs.cpu"] = os.open(f"{cpu}/cgroup.procs", os.O_WRONLY)
            if "cpuacct" in self.dirs:  # a cpuacct hierarchy of its own (not co-mounted with cpu)
                self.fds["procs.cpuacct"] = os.open(f"{self.dirs['cpuacct']}/cgroup.procs", os.O_WRONLY)
            self.fds["mem"] = os.open(f"{mem}/memory.limit_in_bytes", os.O_RDWR)
            if self.manager.memsw:
                self.fds["memsw"] = os.open(f"{mem}/memory.memsw.limit_in_bytes", os.O_RDWR)
            if self.manager.tcp:
                self.fds["tcp"] = os.open(f"{mem}/memory.kmem.tcp.limit_in_bytes", os.O_RDWR)
            self.fds["pids"] = os.open(f"{pids}/pids.max", os.O_RDWR)
            self.fds["cpu"] = os.open(f"{cpu}/cpu.shares", os.O_RDWR)
            self.fds["events"] = os.open(f"{mem}/memory.oom_control", os.O_RDONLY)
            self.fds["failcnt"] = os.open(f"{mem}/memory.failcnt", os.O_RDONLY)
            self.fds["peak"] = os.open(f"{mem}/memory.max_usage_in_bytes", os.O_RDONLY)
        for h, base in self.manager.bases.items():
            self.parent_fds[h] = os.open(base, os.O_RDONLY | os.O_DIRECTORY)

    def keep_fds(self) -> set[int]:
        return set(self.fds.values()) | set(self.parent_fds.values())

    def forget(self) -> None:
        """Zygote, after forking S: close its copies (S and P hold theirs); the paths stay."""
        self.close_all()

    # ------------------------------------------------------------------ P
    def enter(self) -> None:
        """P: move the calling process (and so all it will start) into the group."""
        for key, fd in self.fds.items():
            if key.startswith("procs"):
                os.write(fd, b"0")
        for fd in self.parent_fds.values():
            os.close(fd)
        self.parent_fds = {}
        for key in [k for k in self.fds if k in ("events", "failcnt", "peak")]:
            os.close(self.fds.pop(key))

    def apply(self, memory_mb: int, pids: int, full_share: bool = True) -> None:
        """Memory (all kinds, no swap) and pid limits, and a full CPU share; P calls it in
        configure() while still root."""
        limit = int(memory_mb) * 1024 * 1024
        if self.version == 2:
            _pwrite(self.fds["mem"], limit)
        else:
            order = [k for k in ("mem", "memsw") if k in self.fds]
            try:
                for k in order:
                    _pwrite(self.fds[k], limit)
            except OSError as exc:  # memsw must stay >= limit: raising goes the other way round
                if exc.errno != errno.EINVAL:
                    raise
                for k in reversed(order):
                    _pwrite(self.fds[k], limit)
            if "tcp" in self.fds:
                _pwrite(self.fds["tcp"], limit)
        _pwrite(self.fds["pids"], int(pids))
        if full_share:  # the spare's weight (GRADER_SPARE_NICE) ends when it takes a submission
            _pwrite(self.fds["cpu"], 100 if self.version == 2 else 1024)

    def close_child_fds(self) -> None:
        """P: before student code runs, no descriptor of the group may stay open."""
        self.close_all()

    def close_all(self) -> None:
        for fd in list(self.fds.values()) + list(self.parent_fds.values()):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds, self.parent_fds = {}, {}

    # ------------------------------------------------------------------ S
    def report(self) -> dict:
        """S, after P died: OOM kills, the memory limit and the peak (MB)."""
        out = {"oom": 0, "limit_mb": 0, "peak_mb": 0}
        try:
            if self.version == 2:
                ev = _keyed(_pread(self.fds["events"]))
                out["oom"] = ev.get("oom_kill", 0) or ev.get("oom_group_kill", 0)
                out["failcnt"] = ev.get("max", 0)
            else:
                ev = _keyed(_pread(self.fds["events"]))
                out["oom"] = ev.get("oom_kill", 0)
                out["failcnt"] = int(_pread(self.fds["failcnt"]).strip() or 0)
            raw = _pread(self.fds["mem"]).strip()
            out["limit_mb"] = int(raw) // (1024 * 1024) if raw.isdigit() else 0
            if "peak" in self.fds:
                out["peak_mb"] = int(_pread(self.fds["peak"]).strip() or 0) // (1024 * 1024)
        except (OSError, ValueError, KeyError):
            pass
        return out

    def remove(self, timeout: float = 5.0) -> bool:
        """rmdir the group in every hierarchy (waits while exiting tasks still count)."""
        deadline = time.monotonic() + timeout
        left = dict(self.dirs)
        while left:
            for h, d in list(left.items()):
                try:
                    pfd = self.parent_fds.get(h)
                    if pfd is not None:
                        os.rmdir(self.name, dir_fd=pfd)
                    else:
                        os.rmdir(d)
                    del left[h]
                except FileNotFoundError:
                    del left[h]
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        del left[h]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        return not left


def cpu_usage_path(version: int, dirs: dict) -> str | None:
    """The file of a sandbox's group that counts the CPU time of every process and thread in it,
    waited for or not, exited or running (v1: ``cpuacct.usage``, nanoseconds; v2: ``cpu.stat``
    ``usage_usec``); None where the hierarchy has no CPU accounting. Read by the trusted process
    (it sees /sys; the sandbox does not), never by anything inside the sandbox."""
    if version == 2 and "" in dirs:
        return os.path.join(dirs[""], "cpu.stat")
    for h in ("cpuacct", "cpu"):
        if h in dirs and os.path.exists(os.path.join(dirs[h], "cpuacct.usage")):
            return os.path.join(dirs[h], "cpuacct.usage")
    return None


def read_cpu_seconds(path: str) -> float:
    """CPU seconds from ``cpu_usage_path``'s file (OSError when the group is gone)."""
    text = _read(path)
    if path.endswith("cpu.stat"):
        usec = _keyed(text).get("usage_usec")
        if usec is None:
            raise OSError(errno.ENODATA, f"{path} has no usage_usec")
        return usec / 1e6
    return int(text.strip()) / 1e9


def memory_peak_path(version: int, dirs: dict) -> str | None:
    """The file holding the group's memory high-water mark (v1 ``memory.max_usage_in_bytes``, v2
    ``memory.peak``, kernel 5.19+), or None."""
    path = os.path.join(dirs[""], "memory.peak") if version == 2 and "" in dirs else \
        (os.path.join(dirs["memory"], "memory.max_usage_in_bytes") if "memory" in dirs else None)
    return path if path and os.path.exists(path) else None


class Manager:
    """The hierarchy in use and this zygote's base group (one directory per hierarchy)."""

    def __init__(self, version: int, bases: dict[str, str], *, memsw: bool = False, tcp: bool = False,
                 cpu_cores: float = 1.0, cpuacct_with_cpu: bool = False):
        self.cpuacct_with_cpu = cpuacct_with_cpu  # v1: cpuacct co-mounted with cpu (cpu,cpuacct)
        self.version = version
        self.bases = bases
        self.memsw = memsw
        self.tcp = tcp
        self.cpu_cores = cpu_cores

    def describe(self) -> dict:
        return {"cgroup": f"v{self.version}", "memory": "all (anonymous, shared, tmpfs, kernel)",
                "swap": "none" if self.memsw else "not accounted by this kernel (no swap limit)",
                "pids": True, "cpu": f"at most {self.cpu_cores:g} core, equal share",
                "cpu_time": self.cpu_accounting()}

    def cpu_accounting(self) -> str:
        """How budgets read the sandbox's CPU time (the result's engine block says it)."""
        if self.version == 2:
            return "cgroup cpu.stat usage_usec (every process and thread of the sandbox)"
        if "cpuacct" in self.bases or self.cpuacct_with_cpu:
            return "cgroup cpuacct.usage (every process and thread of the sandbox)"
        return "/proc of the sandbox's uid, sampled by the trusted process (no cpuacct controller)"

    def new_group(self, name: str, memory_mb: int = 1024, pids: int = 64, spare_nice: int = 0) -> Group:
        g = Group(self, name)
        g.create(memory_mb, pids, spare_nice)
        return g

    def remove_base(self) -> None:
        for base in self.bases.values():
            _remove_group_dir(base)


def _remove_group_dir(base: str) -> None:
    """Remove a base group: its child groups, then itself (a group still in use stays)."""
    for name in os.listdir(base):
        if os.path.isdir(os.path.join(base, name)):
            try:
                os.rmdir(os.path.join(base, name))
            except OSError:
                pass
    try:
        os.rmdir(base)
    except OSError:
        pass


def _remove_stale(parent: str, prefix: str) -> None:
    """Base groups of zygotes that died without cleaning up (their pid is in the name)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            _remove_group_dir(os.path.join(parent, name))


def _setup_v2(prefix: str, cpu_cores: float, sandboxes: int) -> Manager:
    mounts = [m for m in _mounts() if m[2] == "cgroup2"]
    explicit = os.environ.get("GRADER_CGROUP_PARENT", "")
    if explicit:
        parent = explicit
    else:
        own = _own_paths().get("")
        mnt = next((m for m in mounts if m[0] == "/sys/fs/cgroup"), mounts[0] if mounts else None)
        if own is None or mnt is None:
            raise CgroupError(errno.ENOENT, "no cgroup v2 hierarchy is mounted")
        parent = _join(mnt[0], mnt[1], own)
    need = {"memory", "pids", "cpu"}
    have = set(_read(f"{parent}/cgroup.controllers").split())
    if not need <= have:
        raise CgroupError(errno.ENOTSUP, f"cgroup v2 at {parent} lacks the controllers {sorted(need - have)} "
                                         "(delegate them, or set GRADER_CGROUP_PARENT to a delegated group)")
    enabled = set(_read(f"{parent}/cgroup.subtree_control").split())
    if not need <= enabled:
        try:
            _write(f"{parent}/cgroup.subtree_control", " ".join("+" + c for c in sorted(need - enabled)))
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            # "no internal processes": a group with member processes cannot enable controllers for
            # its children. Move its processes (this worker, as in a container's root group) into a leaf.
            leaf = f"{parent}/grader-host"
            os.makedirs(leaf, exist_ok=True)
            for _ in range(3):
                pids = _read(f"{parent}/cgroup.procs").split()
                if not pids:
                    break
                for pid in pids:
                    try:
                        _write(f"{leaf}/cgroup.procs", pid)
                    except OSError:
                        pass
            _write(f"{parent}/cgroup.subtree_control", " ".join("+" + c for c in sorted(need - enabled)))
    _remove_stale(parent, prefix)
    base = f"{parent}/{prefix}{os.getpid()}"
    os.mkdir(base, 0o700)
    try:
        _write(f"{base}/cgroup.subtree_control", "+memory +pids +cpu")
        # the base holds all of this zygote's sandboxes (spares and the one grading): each must weigh
        # as much as one process of the worker, not share one process's weight with the others
        _write(f"{base}/cpu.weight", min(10000, 100 * sandboxes))
    except BaseException:
        os.rmdir(base)
        raise
    return Manager(2, {"": base}, memsw=os.path.exists(f"{base}/memory.swap.max"), cpu_cores=cpu_cores)


def _setup_v1(prefix: str, cpu_cores: float, sandboxes: int) -> Manager:
    own = _own_paths()
    bases: dict[str, str] = {}
    for ctrl in CONTROLLERS:
        mnt = next((m for m in _mounts() if m[2] == "cgroup" and ctrl in m[3]), None)
        if mnt is None or ctrl not in own:
            raise CgroupError(errno.ENOENT, f"the cgroup v1 '{ctrl}' controller is not mounted")
        parent = _join(mnt[0], mnt[1], own[ctrl])
        if not os.access(parent, os.W_OK):
            raise CgroupError(errno.EACCES, f"cannot create cgroups under {parent} (a read-only cgroup mount, "
                                            "or no CAP_DAC_OVERRIDE/delegation)")
        _remove_stale(parent, prefix)
        bases[ctrl] = f"{parent}/{prefix}{os.getpid()}"
    # CPU accounting for budgets (cpuacct.usage): co-mounted with cpu ("cpu,cpuacct", most hosts) it is
    # in the cpu group already; mounted on its own it gets a group of its own; absent, the trusted
    # side falls back to /proc (pool.CpuMeter)
    acct = next((m for m in _mounts() if m[2] == "cgroup" and "cpuacct" in m[3]), None)
    cpu_mnt = next((m for m in _mounts() if m[2] == "cgroup" and "cpu" in m[3]), None)
    with_cpu = acct is not None and cpu_mnt is not None and acct[0] == cpu_mnt[0]
    if acct is not None and not with_cpu and "cpuacct" in own:
        parent = _join(acct[0], acct[1], own["cpuacct"])
        if os.access(parent, os.W_OK):
            _remove_stale(parent, prefix)
            bases["cpuacct"] = f"{parent}/{prefix}{os.getpid()}"
    made = []
    try:
        for d in bases.values():
            os.mkdir(d, 0o700)
            made.append(d)
    except BaseException:
        for d in made:
            os.rmdir(d)
        raise
    mem = bases["memory"]
    try:  # as for v2: every sandbox weighs one process (1024) against the worker's processes
        _write(f"{bases['cpu']}/cpu.shares", min(262144, 1024 * sandboxes))
    except BaseException:
        for d in made:
            os.rmdir(d)
        raise
    return Manager(1, bases, memsw=os.path.exists(f"{mem}/memory.memsw.limit_in_bytes"),
                   tcp=os.path.exists(f"{mem}/memory.kmem.tcp.limit_in_bytes"), cpu_cores=cpu_cores,
                   cpuacct_with_cpu=with_cpu)


def detect() -> int | None:
    """2 for a unified hierarchy with controllers, 1 for v1 memory/pids/cpu, None for neither."""
    mounts = _mounts()
    if any(m[2] == "cgroup2" and m[0] == "/sys/fs/cgroup" for m in mounts) or os.environ.get("GRADER_CGROUP_PARENT"):
        return 2
    v1 = {c for m in mounts if m[2] == "cgroup" for c in m[3]}
    if set(CONTROLLERS) <= v1:
        return 1
    return None


def setup(prefix: str = "grader-", cpu_cores: float = 1.0, sandboxes: int = 3) -> Manager:
    """Detect the hierarchy and create this process's base group; CgroupError when none is usable."""
    version = detect()
    if version is None:
        raise CgroupError(errno.ENOENT, "no cgroup hierarchy with the memory, pids and cpu controllers is mounted")
    try:
        if version == 2:
            return _setup_v2(prefix, cpu_cores, sandboxes)
        return _setup_v1(prefix, cpu_cores, sandboxes)
    except CgroupError:
        raise
    except OSError as exc:
        raise CgroupError(exc.errno or errno.EIO, f"cgroup v{version} setup failed: {exc}") from exc
