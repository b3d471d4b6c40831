"""Warm sandbox pools: started in each worker process for the queues it serves, stopped at its
shutdown; never in the web process."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from courseplatform.submissions import warm

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_pool(monkeypatch, settings):
    from grader.sandbox import pool

    started = []
    monkeypatch.setattr(pool, "start", lambda queue="cpu", preload=("torch",): started.append((queue, tuple(preload))))
    settings.WARM_POOL = True
    settings.GRADE_FUNCTION = "grader.api.grade"
    return started


def test_pools_follow_the_queues_and_the_packs_preloads(fake_pool, course, tmp_path):
    from cp_helpers import write_pack
    from courseplatform.submissions.sync import sync_pack

    gpu = write_pack(tmp_path / "p", slug="big", queue="gpu")
    toml = gpu / "assignment.toml"
    toml.write_text(toml.read_text().replace('module = "tiny"', 'module = "tiny"\npreload = ["torch", "transformers"]'))
    sync_pack(course, gpu)
    sync_pack(course, write_pack(tmp_path / "p", slug="small", queue="cpu"))
    assert warm.warm_pools(("gpu",)) == [("gpu", ("torch", "transformers"))]
    assert fake_pool == [("gpu", ("torch", "transformers"))]
    # The trusted modules (tests.py, reference.py) of the queue's packs are imported too.
    assert warm.preload_trusted(("gpu",)) == ["big"]
    from grader.authoring.pack import _module_cache, load_pack
    from courseplatform.submissions.models import Assignment

    assert load_pack(Assignment.objects.get(slug="big").pack_path).hash in _module_cache
    fake_pool.clear()
    assert warm.warm_pools(("cpu", "celery")) == [("cpu", ("torch",))]  # unknown queues are ignored
    assert fake_pool == [("cpu", ("torch",))]


def test_a_queue_without_packs_gets_the_plain_pool_and_failures_do_not_raise(fake_pool, monkeypatch):
    assert warm.warm_targets(("gpu",)) == [("gpu", ("torch",))]
    from grader.sandbox import pool

    def broken(*a, **k):
        raise pool.SandboxUnavailable("no namespaces here")

    monkeypatch.setattr(pool, "start", broken)
    assert warm.warm_pools(("cpu",)) == []  # logged; the first grade reports it


def test_switches(settings):
    settings.GRADE_FUNCTION = "grader.api.grade"
    settings.WARM_POOL = True
    assert warm.warm_enabled()
    settings.WARM_POOL = False
    assert not warm.warm_enabled()
    settings.WARM_POOL = True
    settings.GRADE_FUNCTION = "cp_fake_grader.grade"
    assert not warm.warm_enabled()


def test_the_web_process_starts_no_pool(client_for, student, instructor, assignment, monkeypatch):
    from django.urls import reverse

    from grader.sandbox import pool

    calls = []
    monkeypatch.setattr(pool, "get", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(pool, "start", lambda *a, **k: calls.append(a))
    for user in (student, instructor):
        client_for(user).get(reverse("submissions:detail", args=[assignment.course.slug, assignment.slug]))
        client_for(user).get(reverse("submissions:index", args=[assignment.course.slug]))
    assert calls == [] and warm.WARM_STATE["thread"] is None


def _zygotes_under(pid: int) -> list[int]:
    """Pids of `grader.sandbox.zygote` processes descending from pid."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    children, args = {}, {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        p, pp = int(parts[0]), int(parts[1])
        children.setdefault(pp, []).append(p)
        args[p] = parts[2]
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            if "grader.sandbox.zygote" in args.get(c, ""):
                found.append(c)  # its own children (the sandboxes it forked) carry the same args
            else:
                todo.append(c)
    return found


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_real_worker_starts_its_pool_at_boot_and_stops_it(tmp_path, settings):
    """A real prefork worker on queue cpu: its child has a zygote before any task arrives; a warm
    shutdown stops it."""
    from cp_workers import start_worker, stop_worker, wait_for

    log = tmp_path / "worker.log"
    proc = start_worker("warm", log, queues="cpu", concurrency=1, GRADER_POOL_SIZE="1", COURSEPLATFORM_WARM_POOL="1")
    try:
        wait_for(lambda: "warm sandbox pool ready: queue cpu" in log.read_text(errors="replace"), 90, 0.5,
                 "the warm pool to start")
        zygotes = _zygotes_under(proc.pid)
        assert len(zygotes) == 1, log.read_text()
        # Started in the forked child (worker_process_init), not in the parent.
        text = log.read_text()
        child_pid = int(text.split("warm sandbox pool ready: queue cpu, preload torch (pid ")[1].split(")")[0])
        assert child_pid != proc.pid
    finally:
        stop_worker(proc)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{z}").exists() and "zygote" in Path(f"/proc/{z}/cmdline").read_text(errors="replace") for z in zygotes):
        time.sleep(0.2)
    alive = [z for z in zygotes if Path(f"/proc/{z}").exists() and "zygote" in Path(f"/proc/{z}/cmdline").read_text(errors="replace")]
    for z in alive:  # never leave one behind, even when the test fails
        os.kill(z, 9)
    assert not alive, "the zygote outlived its worker"
