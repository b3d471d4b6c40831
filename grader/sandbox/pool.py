"""Trusted side of the sandbox: the process-wide pools of warm sandboxes and one sandbox's channel.

``start()``/``shutdown()`` are for Celery worker signals; ``grade()`` starts pools lazily.
A pool is keyed by (queue, preload): a zygote per key, each keeping GRADER_POOL_SIZE sandboxes
ready.
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from grader.sandbox import protocol

GRADER_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the grader package
ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TZ", "CUDA_VISIBLE_DEVICES", "GRADER_SPARE_NICE", "GRADER_ALLOW_RLIMIT_ONLY",
            "GRADER_CGROUP_PARENT")


class SandboxUnavailable(Exception):
    """The sandbox cannot be created (not root, namespaces refused, the zygote died)."""


def insecure_mode() -> bool:
    return os.environ.get("GRADER_INSECURE", "") not in ("", "0", "false", "no")


def _scrubbed_env(queue: str) -> dict:
    env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    if queue != "gpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    env.update({
        "HOME": "/tmp/work", "PYTHONPATH": str(GRADER_ROOT), "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "Agg", "TOKENIZERS_PARALLELISM": "false",
    })
    return env


class CpuMeter:
    """CPU seconds of every process of one sandbox, read from /proc by the trusted process: the
    fallback where the sandbox has no cgroup CPU counter (no cpuacct/cpu.stat, GRADER_ALLOW_RLIMIT_ONLY,
    GRADER_INSECURE). Nothing the sandbox reports is used: the processes are found by their owner
    (each sandbox has a uid of its own, which its processes cannot change) or, in insecure mode
    (development only), by P's session. A thread samples them every ``interval`` seconds while a
    measurement is open, so a process that exits, waited for or not, keeps the CPU time it was last
    seen with (at most one interval per process is missed)."""

    def __init__(self, uid: int | None, sid: int | None, interval: float = 0.05):
        self.uid, self.sid, self.interval = uid, sid, interval
        self.tick = os.sysconf("SC_CLK_TCK")
        self.seen: dict[tuple[int, int], int] = {}  # (pid, start time) -> utime + stime (ticks)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def _sample(self) -> None:
        found = {}
        try:
            names = os.listdir("/proc")
        except OSError:
            return
        for name in names:
            if not name.isdigit():
                continue
            try:
                if self.uid is not None and os.stat(f"/proc/{name}").st_uid != self.uid:
                    continue
                with open(f"/proc/{name}/stat", "rb") as fh:
                    raw = fh.read()
            except OSError:
                continue
            fields = raw[raw.rfind(b")") + 2:].split()  # after "(comm)": state is fields[0]
            try:
                sid, utime, stime, start = int(fields[3]), int(fields[11]), int(fields[12]), int(fields[19])
            except (IndexError, ValueError):
                continue
            if self.uid is None and sid != self.sid:
                continue
            found[(int(name), start)] = utime + stime
        with self.lock:
            for key, ticks in found.items():
                if ticks > self.seen.get(key, -1):
                    self.seen[key] = ticks

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            self._sample()

    def seconds(self) -> float:
        if self.thread is None:
            self.thread = threading.Thread(target=self._loop, name="grader-cpu-meter", daemon=True)
            self.thread.start()
        self._sample()
        with self.lock:
            return sum(self.seen.values()) / self.tick

    def close(self) -> None:
        self.stop.set()


class Sandbox:
    """One single-use sandbox handed out by a zygote: P's control socket, its output, S's status."""

    def __init__(self, sock: socket.socket, out_fd: int, status_fd: int, p_pid: int, s_pid: int, secure: bool):
        self.sock = sock
        self.sock.setblocking(False)
        self.status_fd = status_fd
        self.p_pid = p_pid
        self.s_pid = s_pid
        self.secure = secure
        self.dead = False
        self.exit_status: int | None = None
        self.death: dict[str, int] = {}  # what S reported with P's status: OOM kills, memory limit (MB)
        self.cgroup: dict | None = None   # the sandbox's cgroup directories (removed by S when P ended)
        self.primed = False               # the zygote primed it with the pack's forbidden-API stubs
        self.uid: int | None = None       # the sandbox's own uid (every process in it runs as this uid)
        self._meter: CpuMeter | None = None
        self.output = bytearray()      # kept output not yet taken (take_output)
        self.output_total = 0          # bytes printed in total
        self.output_kept = 0           # bytes kept in total (at most output_cap)
        self.output_cap = 64 * 1024
        try:
            self.pidfd = os.pidfd_open(p_pid)
        except OSError:
            self.pidfd = None
        self._out_fd = out_fd
        os.set_blocking(out_fd, False)
        self._drain_spec = [out_fd, self.drain_output]  # mutable: the fd becomes None at EOF

    def drain_output(self) -> None:
        """Read whatever the sandbox printed so far (non-blocking); keep the first output_cap bytes."""
        fd = self._out_fd
        if fd is None:
            return
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                os.close(fd)
                self._out_fd = None
                self._drain_spec[0] = None
                return
            self.output_total += len(chunk)
            room = self.output_cap - self.output_kept
            if room > 0:
                self.output += chunk[:room]
                self.output_kept += min(room, len(chunk))

    def take_output(self) -> bytes:
        """The kept output printed since the last call (everything flushed before the last reply)."""
        self.drain_output()
        data = bytes(self.output)
        self.output.clear()
        return data

    def request(self, header: dict, blob: bytes, timeout: float, max_bytes: int) -> tuple[dict, bytes]:
        deadline = time.monotonic() + max(timeout, 0.001)
        protocol.send_frame(self.sock, header, blob, deadline, drain=self._drain_spec)
        return protocol.recv_frame(self.sock, deadline, max_bytes=max_bytes, drain=self._drain_spec)

    def kill(self) -> None:
        if self.dead:
            return
        self.dead = True
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            else:
                os.kill(self.p_pid, signal.SIGKILL)
        except OSError:
            pass

    def alive(self) -> bool:
        """P has not exited (its pidfd is not readable yet)."""
        if self.dead:
            return False
        if self.pidfd is None:
            try:
                os.kill(self.p_pid, 0)
                return True
            except OSError:
                return False
        import select

        r, _, _ = select.select([self.pidfd], [], [], 0)
        return not r

    def wait_status(self, timeout: float = 2.0) -> int | None:
        """P's wait status as reported by S (None if S did not report in time)."""
        if self.exit_status is not None:
            return self.exit_status
        import select

        deadline = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.status_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            c = os.read(self.status_fd, 64)
            if not c:
                break
            buf += c
            if buf.endswith(b"\n"):
                break
        for line in buf.decode(errors="replace").splitlines():
            if line.startswith("X "):
                try:
                    self.exit_status = int(line.split()[1])
                except ValueError:
                    pass
                for token in line.split()[2:]:
                    key, _, value = token.partition("=")
                    if value.lstrip("-").isdigit():
                        self.death[key] = int(value)
        return self.exit_status

    def out_of_memory(self) -> bool:
        """The kernel's memory limit ended (part of) the sandbox: an OOM kill in its cgroup."""
        self.wait_status()
        return self.death.get("oom", 0) > 0

    def describe_death(self) -> str:
        status = self.wait_status()
        if self.out_of_memory():
            limit = self.death.get("limit_mb", 0)
            return (f"it used more than {limit} MB of memory (this assignment's limit, counting every process "
                    "it started and the files it wrote to /tmp or shared memory) and was stopped") if limit else \
                "it used more memory than this assignment allows and was stopped"
        if status is None or status < 0:
            return "the sandbox process ended unexpectedly"
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            extra = {"SIGSEGV": " (a segmentation fault: invalid memory access)", "SIGXCPU": " (CPU time limit exceeded)",
                     "SIGKILL": " (killed)", "SIGABRT": " (aborted)", "SIGBUS": " (bus error)",
                     "SIGSYS": " (a system call the sandbox does not allow)"}.get(name, "")
            return f"the sandbox process was killed by {name}{extra}"
        if os.WIFEXITED(status):
            return f"the sandbox process exited with code {os.WEXITSTATUS(status)} (os._exit or a crash)"
        return "the sandbox process ended unexpectedly"

    # ---------------------------------------------------------------- review channel
    def set_review(self, fd: int) -> None:
        self._review_fd = fd
        os.set_blocking(fd, False)

    def read_review(self) -> tuple[list[str], bool]:
        """What the sandbox's forbid guard reported since the last call (lines), and whether the
        channel is closed (every copy of its write end gone: the sandbox ended, or the submission
        closed it). Anything on it that the guard does not write is itself a reason for review."""
        fd = getattr(self, "_review_fd", None)
        if fd is None:
            return [], False
        data, closed = b"", False
        while len(data) < 65536:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                closed = True
                break
            data += chunk
        lines = []
        for raw in data.split(b"\n"):
            if not raw:
                continue
            text = raw.decode("ascii", "replace")
            ok = text.startswith(("refused gc.", "used ctypes.", "tried to import ")) and len(text) <= 200 \
                and all(ch.isprintable() for ch in text)
            lines.append(text if ok else "wrote to the grader's review channel")
        return lines, closed

    # ---------------------------------------------------------------- trusted measurements
    def cpu_seconds(self) -> float:
        """CPU seconds used so far by every process and thread of this sandbox (waited for or not,
        running or exited), read here, on the trusted side: the sandbox's cgroup counter, else the
        /proc fallback (CpuMeter). Raises OSError when the sandbox is gone."""
        from grader.sandbox import cgroups

        path = cgroups.cpu_usage_path(2 if "" in (self.cgroup or {}) else 1, self.cgroup or {}) if self.cgroup else None
        if path is not None:
            return cgroups.read_cpu_seconds(path)
        if self.dead:
            raise OSError("the sandbox is gone")
        if self._meter is None:
            self._meter = CpuMeter(self.uid if self.secure else None, None if self.secure else self.p_pid)
        return self._meter.seconds()

    def cpu_accounting(self) -> str:
        from grader.sandbox import cgroups

        if self.cgroup and cgroups.cpu_usage_path(2 if "" in self.cgroup else 1, self.cgroup):
            return "cgroup"
        return "proc"

    def memory_peak_mb(self) -> float | None:
        """The sandbox's memory high-water mark (every process, shared memory and tmpfs included) from
        its cgroup, read on the trusted side; None where the cgroup does not record one."""
        from grader.sandbox import cgroups

        path = cgroups.memory_peak_path(2 if "" in (self.cgroup or {}) else 1, self.cgroup or {}) if self.cgroup else None
        if path is None:
            return None
        try:
            with open(path) as fh:
                return int(fh.read().strip()) / (1024 * 1024)
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if self._meter is not None:
            self._meter.close()
        fd = getattr(self, "_review_fd", None)
        if fd is not None:
            self._review_fd = None
            try:
                os.close(fd)
            except OSError:
                pass
        # every reply is preceded by a flush, so what the submission printed is already in the pipe
        self.drain_output()
        self.kill()
        for closer in (self.sock.close, lambda: os.close(self.status_fd),
                       (lambda: os.close(self.pidfd)) if self.pidfd is not None else (lambda: None)):
            try:
                closer()
            except OSError:
                pass
        if self._out_fd is not None:
            os.close(self._out_fd)
            self._out_fd = None
            self._drain_spec[0] = None


class Zygote:
    def __init__(self, queue: str, preload: tuple[str, ...], size: int, start: bool = True):
        self.queue, self.preload, self.size = queue, preload, size
        self.secure = not insecure_mode()
        self.limits: dict = {}  # what the zygote enforces (cgroup version, seccomp, ...), from its hello
        self.cgroup_bases: list[str] = []
        self.lock = threading.Lock()
        self.proc = None
        self.sock = None
        self._cancelled = False
        self.started = threading.Event()  # set when get() finished starting it (or failed to)
        self._proc_lock = threading.Lock()  # between a start in progress and cancel() from another thread
        if start:
            self._start()

    def cancel(self) -> None:
        """Stop a start in progress, from another thread (shutdown while a pool is starting: the
        parent's start-up, importing torch, takes long on a loaded machine and must not hold up a
        worker's exit). The starting thread sees the parent exit and raises SandboxUnavailable."""
        with self._proc_lock:
            self._cancelled = True
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cmd = [os.environ.get("GRADER_PYTHON", sys.executable), "-m", "grader.sandbox.zygote", "--fd", str(theirs.fileno()),
               "--size", str(self.size), "--queue", self.queue, "--preload", ",".join(self.preload),
               "--uid-base", os.environ.get("GRADER_UID_BASE", "200000")]
        if not self.secure:
            cmd.append("--insecure")
        with self._proc_lock:
            if self._cancelled:
                ours.close()
                theirs.close()
                raise SandboxUnavailable("the pool was shut down while it was starting")
            self.proc = subprocess.Popen(cmd, pass_fds=[theirs.fileno()], env=_scrubbed_env(self.queue), cwd="/",
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        self.sock = ours
        self.sock.settimeout(float(os.environ.get("GRADER_START_TIMEOUT", "180")))
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, OSError) as exc:
            self._kill()
            raise SandboxUnavailable(f"the sandbox parent did not start: {exc}") from None
        if not data:
            self._kill()
            raise SandboxUnavailable("the sandbox parent exited during start-up")
        msg = json.loads(data)
        if not msg.get("ok"):
            self._kill()
            raise SandboxUnavailable(msg.get("error", "the sandbox parent failed to start"))
        self.limits = dict(msg.get("limits") or {})
        self.cgroup_bases = list(msg.get("cgroup_bases") or [])  # this zygote's base groups (one per hierarchy)
        self.device = worker_device(self.queue)
        _enforced[self.secure] = self.limits

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.sock:
            self.sock.close()

    def acquire(self, timeout: float = 60.0, forbid: dict | None = None) -> Sandbox:
        """A ready sandbox. ``forbid``: the pack's forbidden APIs; the zygote hands out a spare that
        already installed them when it has one (and primes the next spares for them), so the
        per-grade load skips that step (grader/sandbox/zygote.py, "priming")."""
        request = json.dumps({"op": "get", "forbid": forbid or None}).encode()
        with self.lock:
            for attempt in (1, 2):
                try:
                    if self.proc.poll() is not None:
                        raise OSError("the sandbox parent died")
                    self.sock.settimeout(timeout)
                    self.sock.send(request)
                    data, fds, _, _ = socket.recv_fds(self.sock, 65536, 4)
                    if not data:
                        raise OSError("the sandbox parent closed the connection")
                    msg = json.loads(data)
                    if not msg.get("ok"):
                        for fd in fds:
                            os.close(fd)
                        raise SandboxUnavailable(msg.get("error", "no sandbox"))
                    if len(fds) != 4:
                        for fd in fds:
                            os.close(fd)
                        raise OSError("the sandbox parent sent a malformed reply")
                    sock = socket.socket(fileno=fds[0])
                    sb = Sandbox(sock, fds[1], fds[2], int(msg["p_pid"]), int(msg["s_pid"]), self.secure)
                    sb.cgroup = msg.get("cgroup")
                    sb.set_review(fds[3])
                    sb.uid = int(msg["uid"]) if isinstance(msg.get("uid"), int) else None
                    sb.primed = bool(msg.get("primed"))  # it installed the pack's forbidden-API stubs while a spare
                    return sb
                except (OSError, ValueError) as exc:
                    if attempt == 2:
                        raise SandboxUnavailable(f"the sandbox parent failed twice: {exc}") from None
                    self._kill()
                    self._start()
        raise SandboxUnavailable("no sandbox")

    def status(self, timeout: float = 5.0) -> dict:
        """{"size", "ready", "pending", "primed"}: the spares of this pool right now."""
        with self.lock:
            self.sock.settimeout(timeout)
            self.sock.send(b'{"op": "status"}')
            data = self.sock.recv(65536)
        if not data:
            raise SandboxUnavailable("the sandbox parent closed the connection")
        return json.loads(data)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until every spare is ready (a warm pool, as a submission arriving at an idle worker
        finds it); False when that did not happen within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status()
            if st.get("ready", 0) >= st.get("size", 1):
                return True
            time.sleep(0.01)
        return False

    def shutdown(self) -> None:
        with self.lock:
            try:
                self.sock.send(b'{"op": "stop"}')
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            self._kill()


_devices: dict[str, str] = {}


def worker_device(queue: str) -> str:
    """The device this worker grades on, decided on the trusted side (drivers read it as
    ``ctx.device``; nothing the sandbox says about itself is used): "cuda" for the gpu queue when
    this process sees a CUDA device (one worker per GPU, CUDA_VISIBLE_DEVICES), else "cpu"."""
    if queue != "gpu":
        return "cpu"
    if queue not in _devices:
        try:
            import torch

            _devices[queue] = "cuda" if torch.cuda.is_available() and torch.cuda.device_count() > 0 else "cpu"
        except Exception:
            _devices[queue] = "cpu"
    return _devices[queue]


_pools: dict[tuple, Zygote] = {}
_starting: dict[tuple, Zygote] = {}  # pools whose start is in progress (shutdown cancels them)
_enforced: dict[bool, dict] = {}  # secure? -> what the latest zygote reported in force


def enforced(secure: bool = True) -> dict:
    """The limits in force in this worker's sandboxes (for the result's engine block)."""
    return dict(_enforced.get(secure, {}))
_pools_lock = threading.Lock()


def pool_size() -> int:
    try:
        return max(1, int(os.environ.get("GRADER_POOL_SIZE", "2")))
    except ValueError:
        return 2


def pool_preload(preload) -> tuple[str, ...]:
    """The modules a pool preloads for a pack's ``preload``: sorted, torch always among them (two
    packs with the same set share one pool)."""
    return tuple(sorted(set(preload) | {"torch"}))


def get(queue: str = "cpu", preload=("torch",)) -> Zygote:
    """The pool for (queue, preload), started on first use. The start (seconds: the parent imports
    torch) runs outside the module lock, so shutdown() never waits for it: it cancels it."""
    key = (queue, pool_preload(preload), insecure_mode())
    while True:
        with _pools_lock:
            z = _pools.get(key)
            if z is not None:
                return z
            other = _starting.get(key)
            if other is None:
                z = _starting[key] = Zygote(queue, key[1], pool_size(), start=False)
                break
        other.started.wait()  # another thread is starting this pool: take it (or try again)
    try:
        z._start()
        with _pools_lock:
            if z._cancelled:  # shut down between the start and here
                raise SandboxUnavailable("the pool was shut down while it was starting")
            _pools[key] = z
        return z
    except BaseException:
        z._kill()
        raise
    finally:
        with _pools_lock:
            _starting.pop(key, None)
        z.started.set()


def start(queue: str = "cpu", preload=("torch",)) -> Zygote:
    """Start (or return) the pool for a queue; for Celery's worker_process_init."""
    return get(queue, preload)


def shutdown() -> None:
    """Stop every pool of this process; for Celery's worker_process_shutdown and atexit."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
        starting = list(_starting.values())
    for z in starting:
        z.cancel()
    for z in pools:
        z.shutdown()


atexit.register(shutdown)
