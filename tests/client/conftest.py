"""Fixtures for the client tests: a live site (gunicorn + a real Celery worker with the real engine)
on the test database, and a kernel virtual environment without torch."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "submissions"))
sys.path.insert(0, str(ROOT / "client"))


@pytest.fixture(autouse=True)
def _storage(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PACK_STORE = tmp_path / "packs"
    settings.ASSIGNMENTS_DIR = tmp_path / "assignments"
    settings.SUBMISSION_MAX_BYTES = 64 * 1024  # in-process servers only; gunicorn keeps its default


@pytest.fixture
def pack_dir(tmp_path):
    from cp_helpers import write_pack

    return write_pack(tmp_path / "assignments")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def site(transactional_db, tmp_path):
    """A real site: gunicorn serving the app and one Celery worker with the real grading engine,
    both on this test's database, media and pack store. Yields the base URL."""
    from cp_workers import kill_group, purge, start_worker, stop_worker, worker_env

    purge()
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "courseplatform.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "2",
         "--timeout", "120"],
        cwd=ROOT, env=worker_env(), stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    worker = start_worker("client", tmp_path / "worker.log")
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/api/openapi.json", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > end or web.poll() is not None:
                    raise RuntimeError("gunicorn did not start:\n" + log.read_text()[-3000:])
                time.sleep(0.3)
        yield url
    finally:
        kill_group(web)
        stop_worker(worker)
        purge()


def ipykernel_closure() -> list[Path]:
    """The files of ipykernel and everything it needs (by installed metadata), not torch."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen, todo, roots = set(), ["ipykernel"], set()
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for f in dist.files or []:
            top = Path(str(f)).parts[0]
            if top not in ("..", "bin"):
                roots.add(Path(dist.locate_file(top)))
        for req in dist.requires or []:
            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    assert "torch" not in seen
    return sorted(p for p in roots if p.exists())


@pytest.fixture(scope="session")
def kernel_env(tmp_path_factory):
    """A fresh venv (python -m venv, its own pip) that sees ipykernel and its dependencies through
    a .pth of links, and nothing else of this checkout's venv: no torch, no Django, no client."""
    base = tmp_path_factory.mktemp("kernelvenv")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site_dir = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
    links = base / "kernel-deps"
    links.mkdir()
    for src in ipykernel_closure():
        (links / src.name).symlink_to(src)
    (site_dir / "kernel_deps.pth").write_text(str(links) + "\n")
    spec = base / "jupyter" / "kernels" / "cpclient"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "courseplatform client test", "language": "python"}))
    for mod, present in (("torch", False), ("django", False), ("courseplatform_client", False), ("ipykernel", True)):
        code = subprocess.run([str(py), "-c", f"import {mod}"], capture_output=True, env={"PATH": os.environ["PATH"]}).returncode
        assert (code == 0) == present, mod
    return {"python": py, "jupyter_path": base / "jupyter", "site": site_dir}
