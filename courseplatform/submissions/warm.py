"""Warm sandbox pools in Celery workers (the signals below are connected when this module is
imported: SubmissionsConfig.ready()).

A worker process grades with the engine's process-wide pool (grader.sandbox.pool). Started lazily, the
first grade of each worker process pays the sandbox parent's start-up (importing torch, and
transformers for some packs: seconds). So each process that executes tasks starts its pools as
soon as it exists, for the queues this worker consumes:
  - prefork (the default): in worker_process_init, i.e. in each forked child. Never in the
    parent before the fork: a pool there would be one zygote socket shared by every child, and
    the parent must stay free of torch threads when it forks (see grader/README.md).
    worker_process_init must return within 4 s (worker_proc_alive_timeout), so the start runs
    in a background thread; a grade arriving meanwhile waits for the same pool (pool.get locks).
  - solo/threads pools (no fork): in worker_ready, in the worker process itself.
Pools stop in worker_process_shutdown (and at exit). The web process never receives these
signals. COURSEPLATFORM_WARM_POOL=0 turns it off; it is off as well when a stand-in engine is
configured (COURSEPLATFORM_GRADE_FUNCTION).
"""
from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from pathlib import Path

from celery import signals
from celery.concurrency import get_implementation
from django.conf import settings
from django.db import connection

from courseplatform.grading import engine

from grader.api import load_pack, pool

from .models import Assignment

logger = logging.getLogger(__name__)

WARM_STATE: dict = {"queues": (), "prefork": True, "started": [], "thread": None}
MAX_WARM_POOLS = 3


def warm_enabled() -> bool:
    return bool(settings.WARM_POOL) and engine.is_real_engine()


def warm_targets(queues) -> list[tuple[str, tuple[str, ...]]]:
    """(queue, preload) pools to start: one per distinct preload among the course packs on each
    queue this worker serves (the most used first), at most MAX_WARM_POOLS; plain torch if none."""
    targets: Counter = Counter()
    for queue in queues:
        if queue not in ("cpu", "gpu"):
            continue
        found = False
        for path in set(Assignment.objects.filter(queue=queue).exclude(pack_path="").values_list("pack_path", flat=True)):
            try:
                pack = load_pack(Path(path))
            except Exception as exc:
                logger.warning("warm pool: cannot load the pack at %s: %s", path, exc)
                continue
            targets[(queue, pool.pool_preload(pack.preload))] += 1
            found = True
        if not found:
            targets[(queue, ("torch",))] += 1
    ordered = sorted(targets.items(), key=lambda kv: (-kv[1], kv[0]))
    return [key for key, _ in ordered[:MAX_WARM_POOLS]]


def warm_pools(queues=None) -> list:
    """Start the engine's pools for this worker's queues (blocking). Returns what was started."""
    queues = tuple(queues if queues is not None else WARM_STATE["queues"]) or ("cpu",)
    started = []
    try:
        targets = warm_targets(queues)
    except Exception as exc:  # no database yet: warm the plain pools
        logger.warning("warm pool: cannot read the assignments (%s); starting plain pools", exc)
        targets = [(q, ("torch",)) for q in queues if q in ("cpu", "gpu")]
    for queue, preload in targets:
        try:
            pool.start(queue, preload)
        except Exception as exc:  # the first grade will retry and report it
            logger.warning("warm pool for queue %s (%s) did not start: %s", queue, ",".join(preload), exc)
            continue
        started.append((queue, preload))
        logger.info("warm sandbox pool ready: queue %s, preload %s (pid %s)", queue, ",".join(preload), os.getpid())
    WARM_STATE["started"] = started
    # The trusted side too: the first grade of a pack imports its tests.py and reference.py (and
    # with them torch) in this process; do it now, after the fork, never in the prefork parent.
    loaded = preload_trusted(queues)
    if loaded:
        logger.info("trusted pack modules loaded: %s (pid %s)", ", ".join(loaded), os.getpid())
    return started


def preload_trusted(queues) -> list[str]:
    loaded = []
    try:
        paths = sorted(set(
            Assignment.objects.filter(queue__in=list(queues)).exclude(pack_path="").values_list("pack_path", flat=True)
        ))
    except Exception:
        return loaded
    for path in paths:
        try:
            pack = load_pack(Path(path))
            pack.driver()
            loaded.append(Path(path).parent.name)  # PACK_STORE/<slug>/<hash>
        except Exception as exc:  # the grade will report a broken pack properly
            logger.warning("warm pool: cannot load the pack at %s: %s", path, exc)
    return loaded


def _warm_in_background() -> None:
    if not warm_enabled():
        return
    def run():
        try:
            warm_pools()
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=run, name="grader-warm-pool", daemon=True)
    WARM_STATE["thread"] = thread
    thread.start()


@signals.celeryd_after_setup.connect
def _remember_worker(sender=None, instance=None, **kwargs):
    """Main worker process, after -Q is applied and before any fork: note the queues and pool type."""
    try:
        WARM_STATE["queues"] = tuple(sorted(instance.app.amqp.queues.consume_from.keys()))
        impl = get_implementation(instance.pool_cls) if isinstance(instance.pool_cls, str) else instance.pool_cls
        WARM_STATE["prefork"] = impl.__module__.endswith("prefork")
    except Exception as exc:  # pragma: no cover - defensive
        logger.warning("warm pool: cannot read the worker's queues: %s", exc)


def _trusted_ceiling() -> None:
    """The process that grades gets its own memory ceiling (grader.api.trusted_ceiling)."""
    from grader.api import trusted_ceiling

    try:
        mb = trusted_ceiling()
    except (OSError, ValueError) as exc:
        logger.warning("trusted memory ceiling not set: %s", exc)
        return
    if mb:
        logger.info("trusted process memory ceiling: %s MB (RLIMIT_DATA, pid %s)", mb, os.getpid())


@signals.worker_process_init.connect
def _warm_child(**kwargs):
    _trusted_ceiling()
    _warm_in_background()


@signals.worker_ready.connect
def _warm_solo(**kwargs):
    if not WARM_STATE["prefork"]:
        _trusted_ceiling()
        _warm_in_background()


@signals.worker_process_shutdown.connect
def _shutdown_pool(**kwargs):
    try:
        pool.shutdown()
    except Exception:  # the engine may be absent or already down
        pass


@signals.worker_shutdown.connect
def _shutdown_pool_solo(**kwargs):
    if not WARM_STATE["prefork"]:
        _shutdown_pool()

