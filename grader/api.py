"""The engine's Python API: ``grade(pack_dir, filename, data) -> dict``."""
from __future__ import annotations

import os
import time
from pathlib import Path

from grader import pool
from grader.driver import Runner
from grader.pack import PackError, load_pack
from grader.submission import SubmissionError, decode


class GraderError(Exception):
    """An infrastructure fault (sandbox unavailable, invalid pack): retry or alert, never blame the student."""


def _engine(pack, secure: bool | None) -> dict:
    info = {"pack": pack.slug, "pack_hash": pack.hash}
    if secure is not None:
        info["sandbox"] = "namespaces" if secure else "insecure"
        limits = pool.enforced(secure)
        if limits:  # which limits are in force: cgroup version and controllers, seccomp, keyring, rlimits
            info["limits"] = limits
    return info


def error_result(pack, message: str, notes: list[str] | None = None) -> dict:
    """A graded result for a submission that could not be run at all."""
    tests = [{"name": c.name, "id": c.id, "score": 0.0, "max_score": c.points, "status": "error",
              "message": "Not run: the submission could not be loaded.", "visible": c.visible} for c in pack.cases()]
    return {"score": 0.0, "max_score": float(pack.meta["points"]), "status": "error", "message": message,
            "tests": tests, "notes": list(notes or []), "output": "", "elapsed_s": 0.0, "engine": _engine(pack, None)}


_threads_set = False


def _trusted_threads() -> None:
    """Drivers compute references on small tensors: one intra-op thread is fastest and keeps a busy
    worker from oversubscribing its cores (GRADER_TRUSTED_THREADS, default 1; 0 leaves torch alone)."""
    global _threads_set
    if _threads_set:
        return
    _threads_set = True
    n = int(os.environ.get("GRADER_TRUSTED_THREADS", "1") or 0)
    if n > 0:
        import torch

        torch.set_num_threads(n)


def grade(pack_dir, filename: str, data: bytes, *, slug: str | None = None) -> dict:
    """Grade one submission. Raises GraderError only for infrastructure faults.

    ``slug`` names the pack in the result (``engine.pack``) when its assignment.toml has no
    ``slug`` (e.g. a trusted copy stored as ``PACK_STORE/<slug>/<hash>/``); default: the folder name."""
    t0 = time.monotonic()
    _trusted_threads()
    try:
        pack = load_pack(Path(pack_dir), slug=slug)
        pack.cases()  # imports the driver and checks the points
    except PackError as exc:
        raise GraderError(f"invalid pack: {exc}") from exc
    try:
        decoded = decode(filename, bytes(data), module=pack.meta["module"], accepted=pack.meta["accepted"],
                         import_module=pack.meta["import_module"])
    except SubmissionError as exc:
        res = error_result(pack, str(exc))
        res["elapsed_s"] = round(time.monotonic() - t0, 4)
        return res
    if not pack.meta["import_module"] and decoded.notebook is None:
        res = error_result(pack, "This assignment is graded by running your notebook: please submit the .ipynb file.")
        return res
    try:
        zygote = pool.get(pack.queue, pack.preload)
        result = Runner(pack, decoded, zygote).run()
    except pool.SandboxUnavailable as exc:
        raise GraderError(f"sandbox unavailable: {exc}") from exc
    result["engine"] = _engine(pack, zygote.secure)
    if not zygote.secure:
        result["notes"].append("Graded WITHOUT the sandbox (GRADER_INSECURE is set): development use only.")
    result["elapsed_s"] = round(time.monotonic() - t0, 4)
    return result
