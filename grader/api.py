"""The engine's Python API: ``grade(pack_dir, filename, data) -> dict``.

This module is the one place that names the engine's surface for the platform (courseplatform/
imports nothing else of grader/; the import contracts in pyproject.toml check it):

- grading: ``grade``, ``trusted_ceiling``, ``error_result``; the exceptions ``GraderError``,
  ``PackError``, ``SubmissionError``;
- packs: ``load_pack``, ``pack_files``, ``pack_hash``, ``DEFAULT_LIMITS``, and ``check`` (a pack's
  self-check: ``check.expectations``, ``check.check_item``);
- uploads (the one intake): ``read_bounded`` (read once, bounded, hashed), ``take`` (decode once:
  an ``Intake``), ``Intake.decode`` / ``decode`` (the sandbox's files: a ``Decoded``, kept for the
  worker under ``decoded_key``), ``load_notebook_json``, ``MAX_SOURCE_BYTES``, ``MAX_NOTEBOOK_BYTES``,
  and the zip policy ``open_zip``, ``check_all``, ``CheckedZip``, ``ZipRefused``, ``SUBMISSIONS``,
  ``pack_policy``, ``delivery_policy``;
- the warm sandboxes of a worker process: ``pool`` (``pool.start``, ``pool.shutdown``,
  ``pool.pool_preload``);
- copy detection: ``similarity``.

A pack author's surface is ``grader.authoring`` instead.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from grader import similarity
from grader.authoring.driver import Runner
from grader.authoring.pack import DEFAULT_LIMITS, load_pack, pack_files, pack_hash
from grader.errors import GraderError, PackError, SubmissionError
from grader.intake.submission import (MAX_NOTEBOOK_BYTES, MAX_SOURCE_BYTES, Decoded, Intake, decode, decoded_key,
                                      load_notebook_json, read_bounded, take)
from grader.intake.ziparchive import SUBMISSIONS, CheckedZip, ZipRefused, check_all, delivery_policy, open_zip, pack_policy
from grader.sandbox import pool
from grader.text import clean_result

logger = logging.getLogger(__name__)


def _engine(pack, secure: bool | None) -> dict:
    info = {"pack": pack.slug, "pack_hash": pack.hash}
    if secure is not None:
        info["sandbox"] = "namespaces" if secure else "insecure"
        limits = pool.enforced(secure)
        if limits:  # which limits are in force: cgroup version and controllers, seccomp, keyring, rlimits
            info["limits"] = limits
    return info


def error_result(pack, message: str, notes: list[str] | None = None, only_visible: bool = False) -> dict:
    """A graded result for a submission that could not be run at all."""
    cases = [c for c in pack.cases() if c.visible or not only_visible]
    tests = [{"name": c.name, "id": c.id, "score": 0.0, "max_score": c.points, "status": "error",
              "message": "Not run: the submission could not be loaded.", "visible": c.visible} for c in cases]
    max_score = float(sum(c.points for c in cases)) if only_visible else float(pack.meta["points"])
    return {"score": 0.0, "max_score": max_score, "status": "error", "message": message,
            "tests": tests, "notes": list(notes or []), "output": "", "elapsed_s": 0.0, "engine": _engine(pack, None)}


def trusted_ceiling() -> int | None:
    """Put this (trusted) process under its own memory ceiling: RLIMIT_DATA at
    GRADER_TRUSTED_MEMORY_MB (default 6144; 0: none), so that no grade can take the host: an
    allocation past it raises MemoryError in the grade (a result, grade() goes on), instead of the
    kernel's OOM killer choosing a process. For the processes that grade (Celery worker processes,
    ``python -m grader``), called once at their start; not in grade() itself, which the test suite
    and other hosts call in-process. Returns the ceiling in MB (None: none set).

    RLIMIT_DATA counts the heap and private writable mappings (what the decoder, the driver and
    torch allocate), not the read-only code and files mapped in; the sandboxes get their own limits."""
    import resource

    try:
        mb = int(os.environ.get("GRADER_TRUSTED_MEMORY_MB", "6144") or 0)
    except ValueError:
        mb = 6144
    if mb <= 0:
        return None
    limit = mb * 1024 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY and hard < limit:
        limit = hard
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    return resource.getrlimit(resource.RLIMIT_DATA)[0] // (1024 * 1024)


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
        import torch  # heavy: grading processes only, not the web's imports of grader.api

        torch.set_num_threads(n)


def grade(pack_dir, filename: str, data: bytes, *, slug: str | None = None, only_visible: bool = False,
          queue: str | None = None, decoded: Decoded | None = None) -> dict:
    """Grade one submission. Raises GraderError only for infrastructure faults.

    ``slug`` names the pack in the result (``engine.pack``) when its assignment.toml has no
    ``slug`` (e.g. a trusted copy stored as ``PACK_STORE/<slug>/<hash>/``); default: the folder name.
    ``only_visible`` runs the visible cases only (a student's "check"): hidden cases are neither run
    nor listed, so the result reveals nothing about them. ``queue`` is where this grade runs when
    it is not the pack's own: a GPU pack's check runs on "cpu", with the CPU device (ctx.device) and
    so the pack's small CPU settings, and never takes the GPU from a submission. ``decoded`` is the
    upload already decoded for this pack by the trusted side (grader.intake.submission: Intake.decode, kept
    by the web as Decoded.dumps under decoded_key): ``data`` is then not decoded (nor needed); a
    decoded form for another module is an infrastructure fault (GraderError), never graded."""
    t0 = time.monotonic()
    _trusted_threads()
    try:
        pack = load_pack(Path(pack_dir), slug=slug)
        pack.cases()  # imports the driver and checks the points
    except PackError as exc:
        raise GraderError(f"invalid pack: {exc}") from exc
    try:
        if decoded is not None and decoded.module != pack.meta["module"]:
            raise GraderError(f"the decoded form is for module {decoded.module!r}, not {pack.meta['module']!r}")
        if decoded is None:
            decoded = decode(filename, bytes(data), module=pack.meta["module"], accepted=pack.meta["accepted"],
                             import_module=pack.meta["import_module"])
    except SubmissionError as exc:
        res = error_result(pack, str(exc), only_visible=only_visible)
        res["elapsed_s"] = round(time.monotonic() - t0, 4)
        return clean_result(res)
    if not pack.meta["import_module"] and decoded.notebook is None:
        res = error_result(pack, "This assignment is graded by running your notebook: please submit the .ipynb file.",
                           only_visible=only_visible)
        return clean_result(res)
    try:
        run_on = queue or pack.queue
        if run_on not in ("cpu", "gpu"):
            raise GraderError(f"unknown queue {run_on!r}")
        zygote = pool.get(run_on, pack.preload)
    except pool.SandboxUnavailable as exc:
        raise GraderError(f"sandbox unavailable: {exc}") from exc
    try:
        result = Runner(pack, decoded, zygote, only_visible=only_visible).run()
    except pool.SandboxUnavailable as exc:
        raise GraderError(f"sandbox unavailable: {exc}") from exc
    except Exception as exc:  # noqa: BLE001  what a submission sent tripped the engine: a result, not a retry
        logger.exception("grading stopped on an unexpected error (pack %s)", pack.slug)
        result = error_result(pack, "The grader stopped on something your submission did that it did not expect "
                                    f"({type(exc).__name__}). Check that your code returns the kinds of values the "
                                    "handout describes and does not touch the grader's connection; if this "
                                    "persists, ask the course staff.", only_visible=only_visible)
    result["engine"] = _engine(pack, zygote.secure)
    if not zygote.secure:
        result["notes"].append("Graded WITHOUT the sandbox (GRADER_INSECURE is set): development use only.")
    result["elapsed_s"] = round(time.monotonic() - t0, 4)
    # every string a submission could influence is cleaned here, once (grader/text.py)
    return clean_result(result)


# Last: the self-check grades through grade() above (grader.authoring.check imports it from here).
from grader.authoring import check  # noqa: E402

__all__ = ["grade", "trusted_ceiling", "error_result", "GraderError", "PackError", "SubmissionError",
           "load_pack", "pack_files", "pack_hash", "DEFAULT_LIMITS", "check",
           "read_bounded", "take", "Intake", "Decoded", "decode", "decoded_key", "load_notebook_json",
           "MAX_SOURCE_BYTES", "MAX_NOTEBOOK_BYTES", "open_zip", "check_all", "CheckedZip", "ZipRefused", "SUBMISSIONS",
           "pack_policy", "delivery_policy", "pool", "similarity"]
