"""Load test: a surge of submissions of the attention pack, sent over HTTP by several sender processes
(each with its own keep-alive connection and its students' sessions) to the site served by gunicorn,
graded by CPU Celery worker processes running the real grading engine. The senders send as fast as the
site answers, so the accepted rate is the site's saturation throughput, not the sender's.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/courseplatform \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/submission_load.py

Prints: saturation throughput (submissions accepted per second while the senders were sending), the
upload request's median and p95 (as the senders saw it, over HTTP), submit-to-graded median and p95,
and the grading throughput; with the machine's load average at the start and the end.
``--micro N`` first times N uploads through the upload view in this process (Django's test client,
no HTTP, no workers running): the view's own cost, median and p95 of the wall time and the median
CPU time of this process (less sensitive to a busy machine) (``--micro-only``: only that).

It creates a throw-away PostgreSQL database (<name>_bench_<pid>) next to DATABASE_URL's, its own
media and pack store in a temp folder, purges the `cpu` queue of that Redis database, and removes
everything it created at the end. Options: --students 100 --per-student 2 --workers 2 --senders 4
--web-workers 3 --threads 4 --kind py|ipynb (notebooks: each solution as a notebook's code cell).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "assignments" / "attention"


def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_notebook(source: bytes) -> bytes:
    """A solution as a format-4 notebook: a markdown cell, then the code in one code cell."""
    cells = [
        {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": ["# Attention\n", "My solution."]},
        {"cell_type": "code", "id": "solution", "metadata": {}, "execution_count": None, "outputs": [],
         "source": source.decode().splitlines(keepends=True)},
    ]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1).encode()


def load_sources(kind: str) -> tuple[str, list[bytes]]:
    files = sorted((PACK / "solutions").glob("*.py")) + sorted((PACK / "mutants").glob("*.py"))
    sources = [f.read_bytes() for f in files]
    if kind == "ipynb":
        return "attention.ipynb", [as_notebook(s) for s in sources]
    return "attention.py", sources


# --------------------------------------------------------------------------- the sender process

def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "----cpbench" + secrets.token_hex(12)
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def sender(spec_path: str, out_path: str) -> int:
    """One sender: its own connection; posts its jobs one after another, as fast as the site answers."""
    spec = json.loads(Path(spec_path).read_text())
    filename, sources = load_sources(spec["kind"])
    conn = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=120)
    csrf = secrets.token_hex(16)  # 32 characters: Django's unmasked CSRF secret
    results = []
    while time.time() < spec["start_at"]:  # every sender starts at the same instant
        time.sleep(0.001)
    for job in spec["jobs"]:
        body, ctype = multipart({"csrfmiddlewaretoken": csrf}, filename, sources[job["source"] % len(sources)])
        headers = {"Content-Type": ctype, "Cookie": f"{spec['session_cookie']}={job['session']}; {spec['csrf_cookie']}={csrf}",
                   "Referer": f"http://127.0.0.1:{spec['port']}/"}
        t0 = time.time()
        try:
            conn.request("POST", spec["url"], body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            status, location = r.status, r.getheader("Location") or ""
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            status, location = 0, repr(exc)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=120)
        results.append({"t0": t0, "t1": time.time(), "status": status, "accepted": "#submission-" in location})
    Path(out_path).write_text(json.dumps(results))
    return 0


# --------------------------------------------------------------------------- the bench

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--per-student", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (-Q cpu -c 1 each)")
    parser.add_argument("--senders", type=int, default=4, help="sender processes, each with its own connection")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--kind", choices=("py", "ipynb"), default="py")
    parser.add_argument("--micro", type=int, default=0, help="first time N uploads through the view in-process")
    parser.add_argument("--micro-only", action="store_true", help="only the in-process timing (no workers, no HTTP)")
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--sender", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sender:
        return sender(*args.sender)

    base_url = os.environ.get("DATABASE_URL", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not base_url.startswith("postgres") or not broker.startswith("redis"):
        print("Set DATABASE_URL=postgres://... and CELERY_BROKER_URL=redis://... (see the docstring).", file=sys.stderr)
        return 2
    parsed = urlparse(base_url)
    bench_db = f"{parsed.path.lstrip('/') or 'courseplatform'}_bench_{os.getpid()}"
    bench_url = urlunparse(parsed._replace(path="/" + bench_db))
    tmp = Path(tempfile.mkdtemp(prefix="cp-bench-"))
    os.environ.update({
        "DATABASE_URL": bench_url, "MEDIA_ROOT": str(tmp / "media"), "PACK_STORE": str(tmp / "packs"),
        "DEBUG": os.environ.get("DEBUG", "1"), "DJANGO_SETTINGS_MODULE": "courseplatform.settings",
        "LOG_LEVEL": "WARNING",
    })
    sys.path.insert(0, str(ROOT))

    import psycopg

    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{bench_db}"')
    procs: list[subprocess.Popen] = []
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return run(args, tmp, procs)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=30)
            except Exception:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


def wait_done(timeout: float) -> bool:
    from courseplatform.submissions.models import FINAL_STATES, Submission

    deadline = time.monotonic() + timeout
    while Submission.objects.exclude(state__in=FINAL_STATES).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def micro(url: str, users, filename: str, sources: list[bytes], n: int) -> list[float]:
    """N uploads through the view in this process, one after another (no HTTP, no workers)."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from courseplatform.celery import app
    from courseplatform.submissions.models import Submission

    times, cpu = [], []
    for i in range(n):
        c = Client()
        c.force_login(users[i % len(users)])
        t0, c0 = time.perf_counter(), time.process_time()
        r = c.post(url, {"file": SimpleUploadedFile(filename, sources[i % len(sources)])})
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert r.status_code == 302 and "#submission-" in r["Location"], (r.status_code, r.get("Location"))
        Submission.objects.all().delete()  # the queue limit never refuses
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("cpu")
    return times, cpu


def run(args, tmp: Path, procs: list) -> int:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from courseplatform.celery import app
    from courseplatform.courses.models import Course, Membership
    from courseplatform.submissions.models import Submission
    from courseplatform.submissions.sync import sync_pack

    User = get_user_model()
    course = Course.objects.create(slug="bench", title="Bench")
    assignment, _ = sync_pack(course, PACK)
    filename, sources = load_sources(args.kind)  # a correct mix: mostly right, some typical mistakes
    students = [User.objects.create(username=f"s{i:03d}") for i in range(args.students)]
    Membership.objects.bulk_create([Membership(course=course, user=u, role="student") for u in students])
    sessions = {}
    for u in students:  # a logged-in session per student, as a browser would hold it
        c = Client()
        c.force_login(u)
        sessions[u.pk] = c.cookies[settings.SESSION_COOKIE_NAME].value
    url = reverse("submissions:submit", args=[course.slug, assignment.slug])

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("cpu")
    if args.micro:
        t, cpu = micro(url, students, filename, sources, args.micro)
        print(f"upload view (in-process, {args.kind}, {args.micro} uploads, load {os.getloadavg()[0]:.1f}): "
              f"median {statistics.median(t) * 1000:.1f} ms, p95 {pct(t, .95) * 1000:.1f} ms; this process's CPU "
              f"median {statistics.median(cpu) * 1000:.1f} ms", flush=True)
    if args.micro_only:
        return 0

    env = dict(os.environ, DB_CONN_MAX_AGE="0", LOG_LEVEL="WARNING")
    for n in range(args.workers):
        log = (tmp / f"worker{n}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "courseplatform", "worker", "-Q", "cpu", "-c", "1", "-n", f"bench{n}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    port = free_port()
    web_env = dict(os.environ, DB_CONN_MAX_AGE="600", LOG_LEVEL="WARNING")
    procs.append(subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "courseplatform.wsgi", "-b", f"127.0.0.1:{port}",
         "-w", str(args.web_workers), "-k", "gthread", "--threads", str(args.threads), "--timeout", "120",
         "--log-level", "warning"],
        cwd=ROOT, env=web_env, stdout=(tmp / "web.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True))

    def send(jobs_by_sender: list[list[dict]]) -> list[dict]:
        start_at = time.time() + 1.0
        running = []
        for n, jobs in enumerate(jobs_by_sender):
            spec, out = tmp / f"sender{n}.json", tmp / f"sent{n}.json"
            spec.write_text(json.dumps({
                "port": port, "url": url, "kind": args.kind, "jobs": jobs, "start_at": start_at,
                "session_cookie": settings.SESSION_COOKIE_NAME, "csrf_cookie": settings.CSRF_COOKIE_NAME}))
            running.append((subprocess.Popen([sys.executable, __file__, "--sender", str(spec), str(out)], cwd=ROOT), out))
        results = []
        for p, out in running:
            if p.wait() != 0 or not out.exists():
                raise SystemExit(f"a sender failed; logs in {tmp}")
            results += json.loads(out.read_text())
        return results

    deadline = time.time() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.time() > deadline:
                print("gunicorn did not start; its log is in", tmp, file=sys.stderr)
                return 1
            time.sleep(0.2)

    # Warm-up (not counted): every web worker and every worker's sandbox pool.
    print(f"starting {args.workers} worker(s) and gunicorn {args.web_workers}x{args.threads}; warming up…", flush=True)
    warm = [{"session": sessions[u.pk], "source": 0} for u in students[: max(args.workers, args.web_workers * 2)]]
    warmed = send([warm])
    if not all(r["accepted"] for r in warmed):
        print("warm-up uploads were refused; logs in", tmp, file=sys.stderr)
        return 1
    if not wait_done(180):
        print("warm-up did not finish; worker logs in", tmp, file=sys.stderr)
        return 1
    Submission.objects.all().delete()

    total = args.students * args.per_student
    senders = max(1, args.senders)
    jobs_by_sender: list[list[dict]] = [[] for _ in range(senders)]
    for round_ in range(args.per_student):
        for i, u in enumerate(students):
            jobs_by_sender[i % senders].append({"session": sessions[u.pk], "source": i + round_})
    print(f"submitting {total} {args.kind} files from {args.students} students over HTTP, "
          f"{senders} sender process(es)…", flush=True)
    load_start = os.getloadavg()
    results = send(jobs_by_sender)
    load_sent = os.getloadavg()
    ok = wait_done(args.timeout)
    if not ok:
        print("timed out waiting for the workers", file=sys.stderr)
    subs = list(Submission.objects.all())
    accepted = [r for r in results if r["accepted"]]
    t_first = min(r["t0"] for r in results)
    t_last = max(r["t1"] for r in results)
    upload = [r["t1"] - r["t0"] for r in results]
    lat = [(s.finished_at - s.created_at).total_seconds() for s in subs if s.finished_at]
    grade = [(s.finished_at - s.started_at).total_seconds() for s in subs if s.finished_at and s.started_at]
    t_end = max((s.finished_at.timestamp() for s in subs if s.finished_at), default=t_last)
    states = {st: sum(1 for s in subs if s.state == st) for st in ("graded", "error", "queued", "running")}
    full = sum(1 for s in subs if s.score == s.max_score)
    print()
    print(f"machine          {os.cpu_count()} CPUs; load average (1/5/15 min) {load_start[0]:.2f} {load_start[1]:.2f} "
          f"{load_start[2]:.2f} at the start, {load_sent[0]:.2f} after sending, {os.getloadavg()[0]:.2f} at the end")
    print(f"submissions      {len(accepted)} accepted, {len(results) - len(accepted)} refused; states {states}; "
          f"{full} with full marks")
    print(f"saturation       {len(accepted) / (t_last - t_first):.1f} submissions/s accepted over {t_last - t_first:.1f} s "
          f"({senders} sender process(es); gunicorn {args.web_workers}x{args.threads})")
    print(f"upload request   median {statistics.median(upload) * 1000:.0f} ms, p95 {pct(upload, .95) * 1000:.0f} ms (HTTP)")
    if grade:
        print(f"grading (worker) median {statistics.median(grade):.2f} s, p95 {pct(grade, .95):.2f} s")
    if lat:
        print(f"submit-to-graded median {statistics.median(lat):.2f} s, p95 {pct(lat, .95):.2f} s, max {max(lat):.2f} s")
        print(f"grading rate     {len(lat) / (t_end - t_first):.2f} submissions/s over {t_end - t_first:.1f} s "
              f"({args.workers} worker(s))")
    return 0 if ok and states["graded"] + states["error"] == total and len(accepted) == total else 1


if __name__ == "__main__":
    sys.exit(main())
