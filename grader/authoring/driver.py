"""The trusted driver API used by a pack's tests.py, and the runner that grades one submission.

tests.py declares cases with ``@case``; each receives a ``Context`` whose ``sub`` proxies the
submission in the sandbox. See grader/README.md for the API.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import tempfile
import json
import math
import time
from dataclasses import dataclass

from grader.intake import forbid, nbshim, notebook

from grader.sandbox import protocol
from grader.sandbox.pool import SandboxUnavailable


class Fail(Exception):
    """Fail the current case with a student-facing message (and an optional hint)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class StudentError(Fail):
    """The student's code raised an exception (message already formatted for the student)."""

    def __init__(self, message: str, error: dict):
        super().__init__(message)
        self.error = error


class SandboxCrash(Exception):
    """The sandbox died (crash, os._exit, killed) or sent garbage."""


class SandboxTimeout(Exception):
    """The sandbox did not answer before the case's deadline."""


@dataclass
class Case:
    fn: object
    id: str
    name: str
    points: float
    visible: bool
    timeout: float | None
    hint: str | None
    seed: int | None


def case(points: float = 1, *, visible: bool = True, timeout: float | None = None, name: str | None = None,
         hint: str | None = None, seed: int | None = None):
    """Declare a graded case; see grader/README.md."""
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
        raise TypeError("@case(points=...) must be a non-negative number")

    def deco(fn):
        doc = (fn.__doc__ or "").strip().splitlines()
        fn._grader_case = Case(fn=fn, id=fn.__name__, name=name or (doc[0].strip() if doc else fn.__name__),
                               points=float(points), visible=visible, timeout=timeout, hint=hint, seed=seed)
        return fn

    return deco


def collect_cases(module) -> list[Case]:
    return [v._grader_case for v in vars(module).values() if callable(v) and hasattr(v, "_grader_case")]


MAX_EXECUTED_NOTEBOOK = 16 * 1024 * 1024


def _garbled(what: str, exc: Exception) -> str:
    """The message for a reply that is not a valid frame (the submission wrote to the grader's
    connection, or sent something over its limits)."""
    return (f"{what} failed: the sandbox sent an invalid reply ({str(exc)[:200]}). Your code must not write "
            "to file descriptors it did not open, and values it returns must stay within the limits.")
_ERROR_FIELDS = ("type", "message", "traceback", "kind")


def _error_fields(err) -> dict:
    """The fields of an error reply from the sandbox, as bounded strings (anything else is dropped)."""
    if not isinstance(err, dict):
        raise protocol.ProtocolError("malformed error reply")
    out = {}
    for k in _ERROR_FIELDS:
        v = err.get(k)
        if v is not None:
            out[k] = (v if isinstance(v, str) else _json_text(v))[:4000]
    return out


def _json_text(v) -> str:
    try:
        return json.dumps(v)[:4000]
    except (TypeError, ValueError, RecursionError):
        return "?"


def _format_student_error(what: str, err: dict) -> str:
    kind = err.get("kind", "exception")
    msg = err.get("message", "")
    if kind == "exit":
        text = f"{what}: {msg}; a graded function must return, not exit."
    elif kind == "memory":
        text = f"{what} ran out of memory ({err.get('type')}: {msg[:300]})."
    elif kind == "encode":
        text = f"{what}: {msg}"
    else:
        text = f"{what} raised {err.get('type', 'an exception')}: {msg}"
    tb = err.get("traceback")
    if tb:
        text += "\n" + tb
    return text


# --------------------------------------------------------------------------- proxy

class Handle:
    """A remote object living in the sandbox (a module instance, a model, ...)."""

    def __init__(self, sub: "Submission", hid: int, type_name: str, generation: int):
        self._sub, self._id, self.type_name, self._gen = sub, hid, type_name, generation

    def __repr__(self) -> str:
        return f"<remote {self.type_name} #{self._id}>"

    def __call__(self, *args, **kwargs):
        return self._sub._op({"op": "hcall", "h": self._id, "method": "__call__"}, args, kwargs,
                             what=f"{self.type_name}(...) (forward)", handle=self)

    def call(self, method: str, *args, **kwargs):
        return self._sub._op({"op": "hcall", "h": self._id, "method": method}, args, kwargs,
                             what=f"{self.type_name}.{method}", handle=self)

    def call_with_args(self, method: str, *args, **kwargs) -> tuple:
        """Like ``call`` (``"__call__"``: forward), but returns ``(result, args_after, kwargs_after)``:
        the arguments as the method left them, so an in-place change of an input is visible."""
        return self._sub._unpack_with_args(
            self._sub._op({"op": "hcall_args", "h": self._id, "method": method}, args, kwargs,
                          what=f"{self.type_name}.{method}" if method != "__call__" else f"{self.type_name}(...) (forward)",
                          handle=self))

    def get(self, attr: str):
        return self._sub._op({"op": "hget", "h": self._id, "attr": attr}, what=f"reading {self.type_name}.{attr}", handle=self)

    def set(self, attr: str, value) -> None:
        self._sub._op({"op": "hset", "h": self._id, "attr": attr}, extra={"value": value},
                      what=f"setting {self.type_name}.{attr}", handle=self)

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> dict:
        return self._sub._op({"op": "load_state_dict", "h": self._id, "strict": strict},
                             extra={"state": dict(state_dict)}, what=f"{self.type_name}.load_state_dict", handle=self)

    def state_dict(self) -> dict:
        return self._sub._op({"op": "state_dict", "h": self._id}, what=f"{self.type_name}.state_dict", handle=self)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return self._sub._op({"op": "num_parameters", "h": self._id, "trainable_only": trainable_only},
                             what=f"counting the parameters of {self.type_name}", handle=self)

    def release(self) -> None:
        self._sub._op({"op": "release", "h": self._id}, what="release", handle=self)


class Submission:
    """The driver's view of the submission: every method is one round trip to the sandbox."""

    def __init__(self, runner: "Runner"):
        self._runner = runner
        self._deadline = None

    # -- internals
    def _encode_handle(self, obj):
        if isinstance(obj, Handle):
            if obj._gen != self._runner.generation:
                raise Fail("internal: a handle from a previous sandbox was used")
            return {"$h": obj._id}
        raise protocol.EncodeError(f"the driver cannot send a {type(obj).__name__}")

    def _op(self, header: dict, args=(), kwargs=None, *, extra: dict | None = None, what: str = "", handle=None,
            timeout: float | None = None):
        runner = self._runner
        sandbox = runner.ensure_sandbox()
        tensors: dict = {}
        header = dict(header)
        header["args"] = protocol.encode(list(args), on_unknown=self._encode_handle, _tensors=tensors)
        header["kwargs"] = protocol.encode(dict(kwargs or {}), on_unknown=self._encode_handle, _tensors=tensors)
        for k, v in (extra or {}).items():
            header[k] = protocol.encode(v, on_unknown=self._encode_handle, _tensors=tensors)
        blob = protocol.pack_tensors(tensors)
        left = runner.time_left(timeout)
        deadline = time.monotonic() + left
        try:
            reply, rblob = sandbox.request(header, blob, left, runner.max_reply)
            rtensors = protocol.unpack_tensors(rblob)
            protocol.check_deadline(deadline)
            if reply.get("ok") is True:
                gen = runner.generation
                value = protocol.decode(reply.get("value"), rtensors,
                                        on_handle=lambda hid, t: Handle(self, hid, t, gen))
                protocol.check_deadline(deadline)
                return value
            err = _error_fields(reply.get("error"))
        except protocol.FrameTimeout:
            runner.sandbox_lost(timeout=True)
            raise SandboxTimeout(f"{what or 'the call'} did not finish within the time limit") from None
        except protocol.PeerClosed:
            why = runner.sandbox_lost()
            raise SandboxCrash(f"{what or 'the call'} crashed: {why}") from None
        except protocol.ProtocolError as exc:
            runner.sandbox_lost()
            raise SandboxCrash(f"{what or 'the call'}: the sandbox sent an invalid reply ({exc})") from None
        linemap = getattr(runner.decoded, "linemap", None)
        err = notebook.map_error(err, linemap, runner.decoded.main)  # a notebook's lines as "cell N, line M"
        tip = notebook.advice(err, linemap, runner.decoded.main)
        raise StudentError(_format_student_error(what or "your code", err) + (f"\n{tip}" if tip else ""), err)

    # -- public API
    def call(self, name: str, *args, **kwargs):
        return self._op({"op": "call", "name": name}, args, kwargs, what=name)

    def call_with_args(self, name: str, *args, **kwargs) -> tuple:
        """Like ``call``, but returns ``(result, args_after, kwargs_after)``: the arguments as the
        function left them (the driver sends copies, so an in-place change is otherwise invisible)."""
        return self._unpack_with_args(self._op({"op": "call_args", "name": name}, args, kwargs, what=name))

    @staticmethod
    def _unpack_with_args(reply) -> tuple:
        if not (isinstance(reply, (list, tuple)) and len(reply) == 3 and isinstance(reply[1], (list, tuple))
                and isinstance(reply[2], dict)):
            raise SandboxCrash("the sandbox sent an invalid reply to a call")
        return reply[0], tuple(reply[1]), dict(reply[2])

    def has(self, name: str) -> bool:
        return bool(self._op({"op": "has", "name": name}, what=f"looking up {name}"))

    def get(self, name: str):
        return self._op({"op": "get", "name": name}, what=f"reading {name}")

    def new(self, class_name: str, *args, **kwargs) -> Handle:
        h = self._op({"op": "call", "name": class_name}, args, kwargs, what=f"{class_name}(...)")
        if not isinstance(h, Handle):
            raise Fail(f"{class_name}(...) did not create an object")
        return h

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the whole sandbox: every process and thread the submission
        started, waited for or not, running or exited. Measured on the trusted side (the sandbox's
        cgroup counter, else /proc of the sandbox's uid; see ``pool.Sandbox.cpu_seconds``), never
        asked of the sandbox. Take the difference around a call to budget the work it did; keep the
        case's wall clock as a safety net only."""
        sandbox = self._runner.ensure_sandbox()
        try:
            return float(sandbox.cpu_seconds())
        except OSError:
            why = self._runner.sandbox_lost()
            raise SandboxCrash(f"reading the CPU time used failed: {why}") from None

    def memory_peak_mb(self) -> float | None:
        """The sandbox's memory high-water mark in MB (every process, shared memory and /tmp files
        included) from its cgroup, read on the trusted side; None where no cgroup records it."""
        return self._runner.ensure_sandbox().memory_peak_mb()

    def construct(self, dotted: str, *args, **kwargs):
        return self._op({"op": "construct", "path": dotted}, args, kwargs, what=dotted)

    def execute_notebook(self, timeout: float = 120, append: list[str] | None = None, cell_timeout: float = 60) -> dict:
        nb = self._runner.decoded.notebook
        if nb is None:
            raise Fail("This part needs a Jupyter notebook (.ipynb) submission.")
        # the executed notebook comes back as one JSON string in the header: a larger header cap
        with protocol.header_limit(min(self._runner.max_reply, MAX_EXECUTED_NOTEBOOK)):
            text = self._op({"op": "execute_notebook"}, extra={"nb": nb, "append": list(append or []),
                                                            "cell_timeout": int(cell_timeout)},
                            what="executing the notebook", timeout=timeout)
        if not isinstance(text, str):
            raise SandboxCrash("executing the notebook: the sandbox sent an invalid reply")
        try:
            executed = json.loads(text)
        except (ValueError, RecursionError):
            raise SandboxCrash("executing the notebook: the executed notebook is not valid JSON") from None
        meta = executed.get("metadata") if isinstance(executed, dict) else None
        reported = meta.pop(nbshim.NOTES_MIME, None) if isinstance(meta, dict) else None
        if isinstance(reported, dict):  # the Colab stand-ins the notebook called (keys; notes from templates)
            runner = self._runner
            runner.notes += [n for n in nbshim.notes_for(reported.get("used")) if n not in runner.notes]
        return executed


class Context:
    def __init__(self, runner: "Runner", case: Case):
        import torch  # heavy (~1 s): only a trusted grading process pays it, never a pack load on the web

        self._runner = runner
        self.case = case
        self.sub = runner.proxy
        self.ref = runner.pack.reference()
        self.meta = runner.pack.meta
        self.pack_dir = runner.pack.dir
        base = f"{runner.pack.meta['seed']}:{case.id}" if case.seed is None else f"explicit:{case.seed}"
        self.seed = int.from_bytes(hashlib.sha256(base.encode()).digest()[:4], "big") & 0x7FFFFFFF
        self.rng = torch.Generator().manual_seed(self.seed)
        self._np_rng = None
        # the worker's own device, decided here (never asked of the sandbox): "cuda" on a GPU pool
        # whose worker sees a GPU, else "cpu"
        self.device = runner.device

    @property
    def source_files(self) -> dict[str, str]:
        """The submitted Python source, as the sandbox imports it: {relative path: text} of every
        ``.py`` file (a notebook's code cells appear as ``<module>.py``). Read-only for drivers."""
        return {name: data.decode("utf-8", "replace") for name, data in self._runner.decoded.files.items()
                if name.endswith(".py")}

    @property
    def np_rng(self):
        """A numpy Generator seeded like ``rng`` (created on first use)."""
        if self._np_rng is None:
            import numpy as np  # only drivers that ask for np_rng need numpy

            self._np_rng = np.random.default_rng(self.seed)
        return self._np_rng

    @contextlib.contextmanager
    def hold_device(self):
        """While the block runs, this grade is the only one using the worker's GPU: every grade on a
        GPU worker holds the device's lock shared for each of its cases, this takes it exclusively
        (waiting for the cases of other grades on the device to end), so the wall clock of a call
        made inside measures what this sandbox's work took on the device, not a neighbour's. On the
        CPU it does nothing (budgets there are the sandbox's CPU seconds)."""
        fd = self._runner._device_fd
        if fd is None:
            yield
            return
        waited = time.monotonic()
        fcntl.flock(fd, fcntl.LOCK_EX)
        waited = time.monotonic() - waited
        runner = self._runner  # waiting for the device is not the submission's time
        if runner.case_deadline is not None:
            runner.case_deadline += waited
        if runner.wall_deadline is not None:
            runner.wall_deadline += waited
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_SH)

    def metric(self, name: str, value: float) -> None:
        self._runner.metrics[str(name)] = float(value)

    def note(self, text: str) -> None:
        self._runner.notes.append(str(text))

    def artifact(self, name: str, content_type: str, data: bytes) -> None:
        self._runner.artifacts.append({"name": name, "content_type": content_type,
                                       "data_b64": base64.b64encode(bytes(data)).decode()})


# --------------------------------------------------------------------------- runner

MAX_RESTARTS = 3


class Runner:
    """Grades one decoded submission: acquires sandboxes, loads the submission, runs the cases."""

    def __init__(self, pack, decoded, zygote, only_visible: bool = False):
        self.pack, self.decoded, self.zygote = pack, decoded, zygote
        self.only_visible = only_visible  # a "check": the visible cases only, hidden ones are not run at all
        lim = pack.meta["limits"]
        self.limits = lim
        self.max_reply = int(lim["result_mb"]) * 1024 * 1024
        self.sandbox = None
        self.generation = 0
        self.restarts = 0
        self.proxy = Submission(self)
        self.metrics: dict = {}
        self.notes: list[str] = list(decoded.notes)
        self.artifacts: list[dict] = []
        self.outputs: list[bytes] = []     # what the student sees (hidden cases' output withheld)
        self.output_total = 0
        self._pending_out = b""
        self.hidden_started = False      # a hidden case has started: no output is shown from then on
        self._withheld_marked = False
        self.wall_deadline = None
        self.case_deadline = None
        self.load_error: str | None = None
        self.defined: list[str] = []
        self.secure = zygote.secure
        self.device = getattr(zygote, "device", "cpu")
        self._device_fd: int | None = None  # the GPU's lock while a case runs (Context.hold_device)
        self.review: list[str] = []  # reasons for staff review, from the trusted side's own reading

    def time_left(self, timeout: float | None = None) -> float:
        now = time.monotonic()
        ends = [self.wall_deadline, self.case_deadline]
        if timeout is not None:
            ends.append(now + timeout)
        ends = [e for e in ends if e is not None] or [now + float(self.limits["wall_s"])]
        return max(0.0, min(ends) - now)

    def _set_aside(self, checks: dict, forbid_cfg: dict) -> None:
        """Top-level statements that only compare with the forbidden library (forbid.sanity_checks)
        are allowed: they are not run (replaced line for line by ``pass``), and a note names them."""
        labels = forbid_cfg.get("labels", {})
        linemap = getattr(self.decoded, "linemap", None)
        files = dict(self.decoded.files)
        for path, found in checks.items():
            files[path] = forbid.without_lines(files[path], found)
            places: list[str] = []
            for c in found:
                loc = linemap.locate(c["first"]) if linemap is not None and path == self.decoded.main else None
                place = linemap.where(loc[0]) if loc else (
                    f"line {c['first']}" + ("" if path == self.decoded.main else f" of {path}"))
                if place not in places:
                    places.append(place)
            names = sorted({labels.get(u, u) for c in found for u in c["uses"]})
            self.notes.append(f"{', '.join(places[:8])}{' ...' if len(places) > 8 else ''}: "
                              f"{'uses' if len(places) == 1 else 'use'} {', '.join(names)} outside your functions, "
                              "to compare with your own code: allowed, and not run by the grader (only your "
                              "functions are graded; inside them the library is not allowed).")
        self.decoded.files = files

    def _check_review(self) -> None:
        """Read the sandbox's review channel (forbid.guard): every report becomes a reason for staff
        review, and so does the channel closed while the sandbox still runs (the submission closed
        it so that nothing more could be reported)."""
        sb = self.sandbox
        if sb is None:
            return
        lines, closed = sb.read_review()
        if closed and sb.alive():
            lines.append("closed the grader's review channel")
        for line in lines:
            reason = f"During grading the submission {line}: a way to reach the forbidden-API guard; review the code."
            if reason not in self.review and len(self.review) < 20:
                self.review.append(reason)

    def _retire(self) -> None:
        self._check_review()
        sb, self.sandbox = self.sandbox, None
        if sb is not None:
            self._pending_out += sb.take_output()
            sb.close()
            self.output_total += sb.output_total

    def _collect_output(self, hidden: bool = False) -> None:
        """Attribute what was printed since the last call to the current step. Once a hidden case
        has started, everything printed afterwards is withheld (it could reveal the hidden inputs),
        whenever it is read: the visible cases run before the hidden ones, so their output is kept."""
        if self.sandbox is not None:
            self._pending_out += self.sandbox.take_output()
        data, self._pending_out = self._pending_out, b""
        if not data:
            return
        if hidden or self.hidden_started:
            if not self._withheld_marked:
                self._withheld_marked = True
                self.outputs.append(b"[output printed during a hidden test is not shown]\n")
            return
        self.outputs.append(data)

    def sandbox_lost(self, timeout: bool = False) -> str:
        sb = self.sandbox
        if sb is None:
            return "the sandbox is gone"
        sb.kill()
        why = "it ran past the time limit and was stopped" if timeout else sb.describe_death()
        self._retire()
        return why

    def ensure_sandbox(self):
        if self.sandbox is not None:
            return self.sandbox
        if self.generation > 0:
            if self.restarts >= MAX_RESTARTS:
                raise SandboxCrash("not run: the submission crashed its sandbox too many times")
            self.restarts += 1
        self.generation += 1
        sb = self.zygote.acquire(forbid=self.pack.meta.get("forbid"))
        sb.output_cap = int(self.limits["output_kb"]) * 1024
        self.sandbox = sb
        cfg = {k: self.limits[k] for k in ("memory_mb", "processes", "cpu_s", "file_mb", "scratch_mb", "open_files", "threads")}
        cfg["gpu"] = self.zygote.queue == "gpu"  # the queue this grade runs on (a GPU pack's check: cpu)
        tensors: dict = {}
        header = {"op": "load", "module": self.decoded.module, "main": self.decoded.main, "config": cfg,
                  "required": self.pack.meta["required"], "import_module": self.pack.meta["import_module"],
                  "forbid": self.pack.meta.get("forbid"),
                  "files": protocol.encode(self.decoded.files, _tensors=tensors)}
        timeout = min(self.time_left(), float(self.limits["case_s"]))
        header["import_s"] = timeout  # the sandbox stops the import a moment before and says where it was
        sb_deadline = time.monotonic() + timeout
        try:
            reply, rblob = sb.request(header, protocol.pack_tensors(tensors), timeout, self.max_reply)
        except protocol.FrameTimeout:
            self.sandbox_lost(timeout=True)
            raise LoadFailed(f"Importing your file did not finish within {timeout:.0f} s "
                             "(is there an infinite loop or a long computation at the top level?).") from None
        except protocol.PeerClosed:
            why = self.sandbox_lost()
            raise LoadFailed(f"Importing your file crashed: {why}.") from None
        except protocol.ProtocolError as exc:
            self.sandbox_lost()
            raise LoadFailed(_garbled("Importing your file", exc)) from None
        try:
            protocol.check_deadline(sb_deadline)
            if reply.get("ok") is not True:
                err = _error_fields(reply.get("error"))
            else:
                err = None
                info = protocol.decode(reply.get("value"), {}) if reply.get("value") is not None else {}
                if not isinstance(info, dict):
                    raise protocol.ProtocolError("malformed load reply")
                missing, defined = info.get("missing", []), info.get("defined", [])
                if not isinstance(missing, list) or not isinstance(defined, list):
                    raise protocol.ProtocolError("malformed load reply")
                missing = [str(x)[:200] for x in missing[:50]]
                self.defined = [str(x)[:200] for x in defined[:50]]
                protocol.check_deadline(sb_deadline)
                self.notes += [n for n in nbshim.notes_for(info.get("colab")) if n not in self.notes]
        except protocol.FrameTimeout:
            self.sandbox_lost(timeout=True)
            raise LoadFailed(f"Importing your file did not finish within {timeout:.0f} s "
                             "(is there an infinite loop or a long computation at the top level?).") from None
        except protocol.ProtocolError as exc:
            self.sandbox_lost()
            raise LoadFailed(_garbled("Importing your file", exc)) from None
        if err is not None:
            kind = err.get("kind", "")
            self.sandbox_lost()
            explained = notebook.explain_load(err, getattr(self.decoded, "linemap", None), self.decoded.main, timeout)
            if explained:  # a notebook's error names its cell; GPU code, data, downloads and timeouts say what to do
                raise LoadFailed(explained)
            if "SyntaxError" in err.get("type", "") or "IndentationError" in err.get("type", ""):
                raise LoadFailed(f"Your file has a syntax error: {err.get('type')}: {err.get('message')}")
            raise LoadFailed(_format_student_error("Importing your file", dict(err, kind=kind.split(":")[-1])))
        if missing:
            self.sandbox_lost()
            found = ", ".join(self.defined[:15]) or "nothing"
            hint = notebook.missing_hint(missing, getattr(self.decoded, "linemap", None))  # a notebook: which cell
            raise LoadFailed(f"Your file does not define {', '.join(missing)} (it defines: {found}). "
                             + (hint or "Check the name and that it is defined at the top level, not inside another function."))
        return sb

    def run(self) -> dict:
        t0 = time.monotonic()
        self.wall_deadline = t0 + float(self.limits["wall_s"])
        cases = self.pack.cases()
        if self.only_visible:
            cases = [c for c in cases if c.visible]
        results = []
        status = "graded"
        message = None
        refused = None
        forbid_cfg = self.pack.meta.get("forbid")
        if forbid_cfg:
            used, checks = forbid.plan_files(self.decoded.files, forbid_cfg)
            if used:
                refused = forbid.refusal(used, forbid_cfg)
            elif checks:
                self._set_aside(checks, forbid_cfg)
        try:
            if refused is None:
                try:
                    self.case_deadline = None
                    self.ensure_sandbox()
                except (LoadFailed, SandboxCrash, SandboxTimeout) as exc:
                    status, message = "error", str(exc)
                self._collect_output()
            else:
                message = f"0/{_fmt(sum(c.points for c in cases))} points. {refused}"
            # visible cases run first, hidden ones last: nothing a hidden case lets the submission
            # see can come back in a later visible case's message or output
            by_id: dict[int, dict] = {}
            for i in sorted(range(len(cases)), key=lambda i: (not cases[i].visible, i)):
                c = cases[i]
                if status == "error":
                    by_id[i] = _result(c, 0.0, "error", "Not run: " + _first_line(message))
                elif refused is not None:
                    by_id[i] = _result(c, 0.0, "failed", refused)
                else:
                    by_id[i] = self._run_case(c)
            results.extend(by_id[i] for i in range(len(cases)))
        finally:
            self._retire()
            self._collect_output()
        score = sum(r["score"] for r in results)
        max_score = sum(r["max_score"] for r in results)
        if message is None:
            failed = sum(1 for r in results if r["status"] != "passed")
            message = f"{_fmt(score)}/{_fmt(max_score)} points." + (
                f" {failed} of {len(results)} tests did not pass." if failed else f" All {len(results)} tests passed.")
        output = b"".join(self.outputs)[: int(self.limits["output_kb"]) * 1024 + 4096]
        out_text = output.decode("utf-8", errors="replace")
        kept = sum(len(o) for o in self.outputs)
        if self.output_total > int(self.limits["output_kb"]) * 1024 and self.output_total > kept:
            out_text += f"\n[output truncated: {self.output_total} bytes printed, the first {int(self.limits['output_kb'])} KiB kept]"
        res = {
            "score": round(score, 6) if status == "graded" else 0.0,
            "max_score": max_score,
            "status": status,
            "message": message,
            "tests": results,
            "notes": self.notes,
            "output": out_text,
            "elapsed_s": round(time.monotonic() - t0, 4),
        }
        if self.review:  # for staff only (the platform shows it as "flagged for review")
            res["review"] = list(self.review)
        if self.metrics:
            res["metrics"] = self.metrics
        if self.artifacts:
            res["artifacts"] = self.artifacts
        return res

    def _run_case(self, c: Case) -> dict:
        if not c.visible and not self.hidden_started:
            # From here on nothing the sandbox prints is shown, even if it arrives later (a thread
            # or child process that keeps printing, a late drain): what was printed before is kept.
            self._collect_output()
            self.hidden_started = True
        res = self._run_case_inner(c)
        if not c.visible and res["status"] != "passed" and not res.pop("_trusted", False):
            res["message"] = _with_hint(_HIDDEN_MESSAGES.get(res.pop("_why", ""), _HIDDEN_MESSAGES[""]), c.hint)
        res.pop("_why", None)
        res.pop("_trusted", None)
        return res

    def _run_case_inner(self, c: Case) -> dict:
        if time.monotonic() >= self.wall_deadline:
            return _result(c, 0.0, "timeout", "Not run: the submission used up its total time limit "
                                              f"({self.limits['wall_s']:g} s).")
        timeout = float(c.timeout if c.timeout is not None else self.limits["case_s"])
        if self.device == "cuda":  # shared with the other grades on this GPU; before the case's clock starts
            self._device_fd = _device_lock()
        self.case_deadline = time.monotonic() + timeout
        try:
            ctx = Context(self, c)
            frac = c.fn(ctx)
            if frac is None or frac is True:
                frac = 1.0
            frac = float(frac)
            if not math.isfinite(frac):
                frac = 0.0
            frac = min(1.0, max(0.0, frac))
            if frac >= 1.0:
                return _result(c, c.points, "passed", "Passed.")
            return dict(_result(c, c.points * frac, "failed",
                                f"Partial credit: {_fmt(c.points * frac)}/{_fmt(c.points)}."), _trusted=True)
        except StudentError as exc:
            kind = exc.error.get("kind", "") if isinstance(exc.error, dict) else ""
            return dict(_result(c, 0.0, "failed", _with_hint(exc.message, exc.hint or c.hint)),
                        _why="student_" + (kind if kind in ("exit", "memory", "recursion", "encode") else "exception"))
        except Fail as exc:
            return dict(_result(c, 0.0, "failed", _with_hint(exc.message, exc.hint or c.hint)), _why="fail")
        except SandboxTimeout as exc:
            return dict(_result(c, 0.0, "timeout", f"Timed out after {timeout:g} s: {exc}. "
                                                   "Look for an infinite loop or a much slower algorithm than needed."),
                        _why="timeout")
        except SandboxCrash as exc:
            return dict(_result(c, 0.0, "error", str(exc).rstrip(".") + "."), _why="crash")
        except LoadFailed as exc:
            return dict(_result(c, 0.0, "error", str(exc)), _why="reload")
        except protocol.EncodeError as exc:
            return dict(_result(c, 0.0, "error", f"The grader could not send the inputs: {exc}"), _why="driver")
        except SandboxUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001  a driver that tripped over an unexpected value
            return dict(_result(c, 0.0, "error",
                                f"The grader could not check your result ({type(exc).__name__}: {str(exc)[:300]}). "
                                "Check the return type and shapes against the handout."), _why="driver")
        finally:
            self.case_deadline = None
            if self._device_fd is not None:
                os.close(self._device_fd)  # releases the lock
                self._device_fd = None
            self._check_review()
            self._collect_output(hidden=not c.visible)


class LoadFailed(Exception):
    pass


def _device_lock() -> int:
    """A descriptor holding the worker's GPU lock shared (one lock file per visible device, on the
    trusted side: the sandboxes never see it)."""
    dev = "".join(ch for ch in os.environ.get("CUDA_VISIBLE_DEVICES", "0") if ch.isalnum() or ch in ",-")[:64] or "0"
    fd = os.open(os.path.join(tempfile.gettempdir(), f"grader-device-{dev}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


# A hidden case's message when it does not pass: written from trusted words only. The student's
# exception text and type, printed output, the driver's own message (it may quote the inputs or
# the reference values) and Fail hints computed at run time are never shown for a hidden case;
# the case's static hint from @case(hint=...) is.
_HIDDEN_MESSAGES = {
    "": "Not passed (hidden test: its details are not shown).",
    "fail": "Your result was not correct on this hidden test (its inputs and expected values are not shown).",
    "student_exception": "Your code raised an exception during this hidden test (its details are not shown).",
    "student_exit": "Your code called exit() during this hidden test; a graded function must return, not exit.",
    "student_memory": "Your code ran out of memory during this hidden test.",
    "student_recursion": "Your code exceeded the maximum recursion depth during this hidden test.",
    "student_encode": "Your code returned a value that cannot be checked during this hidden test "
                      "(check the return type against the handout).",
    "timeout": "Your code did not finish this hidden test within its time limit "
               "(look for an infinite loop or a much slower algorithm than needed).",
    "crash": "Your code crashed the sandbox during this hidden test.",
    "reload": "Your file could not be imported again after an earlier crash.",
    "driver": "The grader could not check your result on this hidden test; "
              "check the return type and shapes against the handout.",
}


def _with_hint(message: str, hint: str | None) -> str:
    return f"{message}\nHint: {hint}" if hint else message


def _first_line(s: str) -> str:
    return (s or "").splitlines()[0] if s else ""


def _fmt(x: float) -> str:
    return f"{x:g}" if x != int(x) else str(int(x))


def _result(c: Case, score: float, status: str, message: str) -> dict:
    return {"name": c.name, "id": c.id, "score": round(float(score), 6), "max_score": c.points, "status": status,
            "message": message[:6000], "visible": c.visible}
