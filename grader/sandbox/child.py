"""The sandboxed side: what runs in P, the single-use process that imports the submission.

Everything here is imported by the zygote before it forks (the grader's own source is not visible
inside the sandbox). The trusted process drives P with request frames; P answers each with
``{"ok": true, "value": ...}`` or ``{"ok": false, "error": {...}}``.
"""
from __future__ import annotations

import importlib
import importlib.util
import io  # noqa: F401  (preloaded for submissions)
import os
import resource
import signal
import sys
import traceback

from grader.intake import forbid, nbshim
from grader.sandbox import isolation, protocol, seccomp

WORK = "/tmp/work"


def _describe(exc: BaseException, files_prefix: str) -> dict:
    """A student-facing description of an exception raised by their code (never trusts __str__)."""
    try:
        tname = type.__dict__["__name__"].__get__(type(exc))  # the class's own name, not a metaclass property
    except BaseException:
        tname = "Exception"
    try:
        msg = str(exc)
        if type(msg) is not str:  # a str subclass: its plain characters, never its methods
            msg = str.__str__(msg)
    except BaseException:
        msg = "<the exception's message could not be read>"
    kind = "exception"
    if isinstance(exc, SystemExit):
        kind, msg = "exit", f"the code called sys.exit({msg})" if msg else "the code called sys.exit()"
    elif isinstance(exc, MemoryError) or "can't allocate memory" in msg or "not enough memory" in msg:
        kind = "memory"
    elif isinstance(exc, RecursionError):
        kind = "recursion"
    lines: list[str] = []
    try:
        for fs in traceback.extract_tb(exc.__traceback__):
            if fs.filename.startswith(files_prefix):
                rel = fs.filename[len(files_prefix):].lstrip("/")
                lines.append(f'  File "{rel}", line {fs.lineno}, in {fs.name}' + (f"\n    {fs.line}" if fs.line else ""))
        if isinstance(exc, SyntaxError) and exc.filename:
            fn = str(exc.filename)
            rel = fn[len(files_prefix):].lstrip("/") if fn.startswith(files_prefix) else fn
            lines.append(f'  File "{rel}", line {exc.lineno}' + (f"\n    {exc.text.rstrip()}" if exc.text else ""))
            msg = f"{exc.msg} ({rel}, line {exc.lineno})"
    except BaseException:  # a hostile traceback or SyntaxError attribute: keep what was read
        pass
    try:
        tb = "\n".join(str.__str__(line) for line in lines[-12:])[:4000]
    except BaseException:
        tb = ""
    return {"type": str.__str__(tname)[:100], "message": str.__str__(msg)[:4000], "traceback": tb, "kind": kind}


def _fresh_global_rng() -> None:
    """Seed the global generators (random, numpy, torch) from the OS for every submission: every
    sandbox is forked from one zygote, so they would otherwise all start from the same state, and a
    grade could silently depend on that particular state. Drivers pass explicit seeds; a pack's
    grade of correct code must not depend on this (``python -m grader check --repeat`` verifies it)."""
    seed = int.from_bytes(os.urandom(8), "little") & 0x7FFF_FFFF_FFFF_FFFF
    import random

    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed & 0xFFFF_FFFF)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


class Server:
    def __init__(self, sock, secure: bool, uid: int):
        self.sock = sock
        self.secure = secure
        self.uid = uid
        self.handles: dict[int, object] = {}
        self.next_handle = 1
        self.module = None
        self.required: list[str] = []
        self.forbid: dict | None = None
        self.primed: str | None = None  # forbid.key() of the stubs installed while a spare (prime)
        self.review_fd: int | None = None  # write end of the review channel (forbid.guard)

    def prepare_spare(self) -> None:
        """What every submission needs, done while this sandbox is a spare (off the grading path):
        the notebook stand-ins and fresh global random generators (this process's own seed)."""
        nbshim.install()  # google.colab, get_ipython(), display(), tqdm.notebook: stand-ins (grader/intake/nbshim.py)
        _fresh_global_rng()

    def prime(self, header) -> None:
        """The zygote's ``prime`` frame, while a spare: install the forbidden-API stubs of the pack
        it expects next (no reply). ``load`` checks that they are the pack's; if the install failed
        half-way the sandbox is never used for a submission."""
        cfg = header.get("forbid")
        if not cfg or self.primed is not None:
            return
        try:
            forbid.install(cfg)
            self.primed = forbid.key(cfg)
        except BaseException:
            self.primed = "broken"

    # -------------------------------------------------------------- value conversion
    def _on_unknown(self, obj):
        hid = self.next_handle
        self.next_handle += 1
        self.handles[hid] = obj
        try:
            tname = type(obj).__name__
        except Exception:
            tname = "object"
        return {"$h": hid, "type": str(tname)[:100]}

    def _handle(self, hid, _t):
        if hid not in self.handles:
            raise KeyError(f"unknown handle {hid}")
        return self.handles[hid]

    def _args(self, header, tensors):
        args = protocol.decode(header.get("args", []), tensors, on_handle=self._handle)
        kwargs = protocol.decode(header.get("kwargs", {"$dict": []}), tensors, on_handle=self._handle)
        return args, kwargs

    def reply(self, value) -> None:
        try:
            obj, tensors = protocol.encode(value, on_unknown=self._on_unknown)
            blob = protocol.pack_tensors(tensors)
        except BaseException as exc:
            err = _describe(exc, WORK)
            err["kind"] = "encode"
            err["message"] = f"the returned value cannot be checked: {err['message']}"
            self.send({"ok": False, "error": err})
            return
        self.send({"ok": True, "value": obj}, blob)

    def send(self, header, blob=b"") -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        protocol.send_frame(self.sock, header, blob)

    # -------------------------------------------------------------- setup
    def configure(self, cfg: dict) -> None:
        """Apply the pack's limits, then drop privileges (P is still root until here)."""
        mb = 1024 * 1024
        try:
            os.setpriority(os.PRIO_PROCESS, 0, 0)  # spares are prepared at nice 19
        except OSError:
            pass
        if self.secure and int(cfg["scratch_mb"]) != 64:  # S mounted it with 64m
            isolation.mount("tmpfs", "/tmp", "tmpfs", isolation.MS_REMOUNT | isolation.MS_NOSUID | isolation.MS_NODEV,
                            f"size={int(cfg['scratch_mb'])}m,nr_inodes={isolation.tmp_inodes(int(cfg['scratch_mb']))},"
                            "mode=1777")
        group = getattr(self, "cgroup", None)
        if group is not None:
            # the kernel's limits for P and every descendant: all memory (anonymous, shared, tmpfs,
            # kernel) at memory_mb without swap, and the pid limit; then no descriptor of the group
            # may stay open where student code runs
            # (GPU sandboxes: the same 512 MB of headroom for the CUDA context as RLIMIT_DATA below)
            group.apply(int(cfg["memory_mb"]) + (512 if cfg.get("gpu") else 0), int(cfg["processes"]))
            group.close_child_fds()
        vm = 0
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    vm = int(line.split()[1]) * 1024
        mem = vm + int(cfg["memory_mb"]) * mb
        if cfg.get("gpu"):
            resource.setrlimit(resource.RLIMIT_DATA, (int(cfg["memory_mb"]) * mb + 512 * mb,) * 2)
        else:
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (int(cfg["cpu_s"]), int(cfg["cpu_s"]) + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(cfg["file_mb"]) * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(cfg["open_files"]),) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write fails with EFBIG instead
        if self.secure:
            resource.setrlimit(resource.RLIMIT_NPROC, (int(cfg["processes"]),) * 2)
            os.setgroups([])
            os.setresgid(self.uid, self.uid, self.uid)
            os.setresuid(self.uid, self.uid, self.uid)
            isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by the uid change
        isolation.prctl(isolation.PR_SET_NO_NEW_PRIVS, 1)
        os.makedirs(WORK, exist_ok=True)
        os.chdir(WORK)
        env = {"HOME": WORK, "TMPDIR": "/tmp", "JUPYTER_RUNTIME_DIR": WORK + "/.jupyter/runtime",
               "JUPYTER_DATA_DIR": WORK + "/.jupyter/data", "IPYTHONDIR": WORK + "/.ipython",
               "MPLCONFIGDIR": WORK + "/.matplotlib", "USER": "student", "LOGNAME": "student"}
        os.environ.update(env)
        try:
            import torch

            torch.set_num_threads(int(cfg.get("threads", 1)))
        except Exception:
            pass
        flt = getattr(self, "syscall_filter", None)
        if flt is not None:  # last, on every thread: from here on only student code and this server run
            seccomp.join_session_keyring(flt)
            seccomp.install(flt)

    def load(self, header, tensors) -> None:
        from time import monotonic

        started = monotonic()  # the import's budget counts from here, like the trusted side's deadline
        try:
            self.configure(header["config"])
        except BaseException as exc:  # never run a submission with half-applied limits or as root
            self.send({"ok": False, "error": {"type": "SandboxSetupError", "kind": "setup",
                                              "message": f"the sandbox could not be set up: {exc}"}})
            os._exit(70)
        files = protocol.decode(header["files"], tensors)
        for rel, content in files.items():
            path = os.path.normpath(os.path.join(WORK, rel))
            if not path.startswith(WORK + "/"):
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(content)
        sys.path[:] = [WORK] + [p for p in sys.path if p and p.startswith(("/usr", sys.prefix, sys.base_prefix))]
        self.required = list(header.get("required", []))
        self.forbid = header.get("forbid") or None
        want = forbid.key(self.forbid) if self.forbid else None
        if self.primed != want:
            if self.primed is not None:  # the zygote primed it for another pack (or the install failed)
                self.send({"ok": False, "error": {"type": "SandboxSetupError", "kind": "setup",
                                                  "message": "the sandbox was prepared for another assignment"}})
                os._exit(70)
            # before anything of the submission runs, so an import-time look-up gets the stub too
            forbid.install(self.forbid)
        if self.forbid:  # after configure() (its ctypes calls are the grader's), before the submission
            forbid.guard(self.forbid, self.review_fd)
        if not header.get("import_module", True):
            self.send({"ok": True, "value": {"$dict": []}})
            return
        name = header["module"]
        watchdog = None
        budget = header.get("import_s")
        if isinstance(budget, (int, float)) and budget > 0:
            # stop a long import here, a moment before the trusted deadline, and say where it was
            left = budget - min(1.5, 0.25 * budget) - (monotonic() - started)
            try:
                watchdog = nbshim.Watchdog(left, self._import_timed_out)
            except RuntimeError:  # no thread could be started: the trusted deadline still holds
                watchdog = None
        try:
            spec = importlib.util.spec_from_file_location(name, os.path.join(WORK, header["main"]))
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
        except BaseException as exc:
            if watchdog is not None:
                watchdog.stop()
            err = _describe(exc, WORK)
            err["kind"] = "import:" + err["kind"]
            self.send({"ok": False, "error": err})
            return
        if watchdog is not None:
            watchdog.stop()
        self.module = mod
        missing = [n for n in self.required if not hasattr(mod, n)]
        defined = sorted(n for n in vars(mod) if not n.startswith("_"))[:200]
        self.reply({"missing": missing, "defined": defined, "colab": nbshim.used()})

    def _import_timed_out(self, frames) -> None:
        """The watchdog's report (its thread; the process exits after it): where the main thread was."""
        import linecache

        lines = []
        for filename, lineno, func in frames:
            if isinstance(filename, str) and filename.startswith(WORK + "/"):
                rel = filename[len(WORK):].lstrip("/")
                code = linecache.getline(filename, lineno).strip()
                lines.append(f'  File "{rel}", line {lineno}, in {func}' + (f"\n    {code}" if code else ""))
        err = {"type": "TimeoutError", "kind": "import:timeout", "message": "the import ran out of time",
               "traceback": "\n".join(lines[:3] + lines[3:][-9:])[:4000]}
        protocol.send_frame(self.sock, {"ok": False, "error": err})

    # -------------------------------------------------------------- operations
    def _member(self, name):
        if self.module is None:
            raise RuntimeError("the submission was not imported")
        if not isinstance(name, str) or not hasattr(self.module, name):
            raise NameError(f"your file does not define '{name}'")
        return getattr(self.module, name)

    def dispatch(self, header, tensors):
        op = header.get("op")
        if op == "call":
            args, kwargs = self._args(header, tensors)
            return self._member(header["name"])(*args, **kwargs)
        if op in ("call_args", "hcall_args"):  # the call's value and its arguments afterwards (in-place changes)
            args, kwargs = self._args(header, tensors)
            if op == "call_args":
                fn = self._member(header["name"])
            else:
                obj = self._handle(header["h"], None)
                fn = obj if header["method"] == "__call__" else getattr(obj, header["method"])
            value = fn(*args, **kwargs)
            return [value, list(args), dict(kwargs)]
        if op == "has":
            return self.module is not None and hasattr(self.module, header["name"])
        if op == "get":
            return self._member(header["name"])
        if op == "construct":
            args, kwargs = self._args(header, tensors)
            modname, _, attr = header["path"].rpartition(".")
            target = importlib.import_module(modname)
            for part in attr.split(":"):
                target = getattr(target, part)
            return target(*args, **kwargs)
        if op == "hcall":
            args, kwargs = self._args(header, tensors)
            obj = self._handle(header["h"], None)
            fn = obj if header["method"] == "__call__" else getattr(obj, header["method"])
            return fn(*args, **kwargs)
        if op == "hget":
            return getattr(self._handle(header["h"], None), header["attr"])
        if op == "hset":
            value = protocol.decode(header["value"], tensors, on_handle=self._handle)
            setattr(self._handle(header["h"], None), header["attr"], value)
            return None
        if op == "load_state_dict":
            state = protocol.decode(header["state"], tensors, on_handle=self._handle)
            res = self._handle(header["h"], None).load_state_dict(state, strict=bool(header.get("strict", True)))
            return {"missing": list(getattr(res, "missing_keys", [])), "unexpected": list(getattr(res, "unexpected_keys", []))}
        if op == "state_dict":
            return {str(k): v for k, v in self._handle(header["h"], None).state_dict().items()}
        if op == "num_parameters":
            params = self._handle(header["h"], None).parameters()
            only = bool(header.get("trainable_only"))
            return int(sum(p.numel() for p in params if (p.requires_grad or not only)))
        if op == "release":
            self.handles.pop(header["h"], None)
            return None
        if op == "execute_notebook":
            return self.execute_notebook(header)
        raise ValueError(f"unknown operation {op!r}")

    def execute_notebook(self, header):
        import nbclient
        import nbformat

        nb = nbformat.reads(header["nb"], as_version=4)
        for code in header.get("append", []):
            nb.cells.append(nbformat.v4.new_code_cell(code))
        # the kernel is its own process: the Colab stand-ins (grader/intake/nbshim.py) and the pack's forbidden
        # APIs are installed there by a hidden first cell; a hidden last cell reports the stand-ins used
        stubs = "\n".join(c for c in (nbshim.kernel_cell(), forbid.kernel_cell(self.forbid) if self.forbid else None) if c)
        if stubs:
            nb.cells.insert(0, nbformat.v4.new_code_cell(stubs))
        nb.cells.append(nbformat.v4.new_code_cell(nbshim.kernel_report_cell()))
        client = nbclient.NotebookClient(
            nb, timeout=int(header.get("cell_timeout", 120)), kernel_name="python3", allow_errors=True,
            resources={"metadata": {"path": WORK}})
        try:
            client.execute()
        finally:
            used = nbshim.kernel_reported(nb.cells.pop())
        nb.metadata[nbshim.NOTES_MIME] = {"used": used}  # read (and removed) by the driver
        if stubs:  # the student's notebook as they wrote it, numbered from 1
            failed = [o for o in nb.cells.pop(0).get("outputs", []) if o.get("output_type") == "error"]
            if failed:  # never report a notebook as run under the pack's rules when it was not
                raise RuntimeError(f"the grader could not prepare the kernel (stand-ins, forbidden-API stubs): "
                                   f"{failed[0].get('ename')}: {failed[0].get('evalue')}")
            for cell in nb.cells:
                if cell.get("cell_type") == "code" and isinstance(cell.get("execution_count"), int):
                    cell["execution_count"] -= 1
                    for out in cell.get("outputs", []):
                        if isinstance(out.get("execution_count"), int):
                            out["execution_count"] -= 1
        return nbformat.writes(nb)

    def serve(self) -> None:
        while True:
            try:
                # the trusted side's frames (the submission's files travel in the header)
                header, blob = protocol.recv_frame(self.sock, None, max_bytes=1 << 40, max_header=1 << 40)
            except protocol.ProtocolError:
                os._exit(0)
            op = header.get("op")
            if op == "bye":
                os._exit(0)
            if op == "prime":
                self.prime(header)
                continue
            try:
                tensors = protocol.unpack_tensors(blob)
                if op == "load":
                    self.load(header, tensors)
                    continue
                value = self.dispatch(header, tensors)
            except BaseException as exc:  # SystemExit and KeyboardInterrupt are the student's errors too
                self.send({"ok": False, "error": _describe(exc, WORK)})
                continue
            self.reply(value)
