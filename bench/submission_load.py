"""Load test: 200 submissions of the attention pack from 100 simulated students, through Django
(the real upload view, via Django's test client), Redis and two CPU Celery worker processes
running the real grading engine. Prints submit-to-graded latency (median, p95) and throughput.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/courseplatform \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/submission_load.py

It creates a throw-away PostgreSQL database (<name>_bench_<pid>) next to DATABASE_URL's, its own
media and pack store in a temp folder, purges the `cpu` queue of that Redis database, and removes
everything it created at the end. Options: --students 100 --per-student 2 --workers 2.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--per-student", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()

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
    workers: list[subprocess.Popen] = []
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return run(args, tmp, workers)
    finally:
        for w in workers:
            try:
                os.killpg(w.pid, signal.SIGTERM)
                w.wait(timeout=30)
            except Exception:
                try:
                    os.killpg(w.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp: Path, workers: list) -> int:
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from django.urls import reverse

    from courseplatform.celery import app
    from courseplatform.courses.models import Course, Membership
    from courseplatform.submissions.models import FINAL_STATES, Submission
    from courseplatform.submissions.sync import sync_pack

    User = get_user_model()
    course = Course.objects.create(slug="bench", title="Bench")
    assignment, _ = sync_pack(course, PACK)
    # A correct mix: mostly right, some typical mistakes.
    files = sorted((PACK / "solutions").glob("*.py")) + sorted((PACK / "mutants").glob("*.py"))
    sources = [f.read_bytes() for f in files]
    students = []
    for i in range(args.students):
        u = User.objects.create(username=f"s{i:03d}")
        Membership.objects.create(course=course, user=u, role="student")
        students.append(u)

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("cpu")
    env = dict(os.environ, DB_CONN_MAX_AGE="0", LOG_LEVEL="WARNING")
    for n in range(args.workers):
        log = (tmp / f"worker{n}.log").open("wb")
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "courseplatform", "worker", "-Q", "cpu", "-c", "1", "-n", f"bench{n}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    url = reverse("submissions:submit", args=[course.slug, assignment.slug])

    def submit(user, k):
        c = Client()
        c.force_login(user)
        t0 = time.perf_counter()
        r = c.post(url, {"file": SimpleUploadedFile("attention.py", sources[k % len(sources)])})
        return r.status_code, time.perf_counter() - t0

    # Warm-up: one submission per worker, so that each worker's sandbox pool exists (not counted).
    print(f"starting {args.workers} worker(s); warming up…", flush=True)
    warm = students[: args.workers]
    for u in warm:
        submit(u, 0)
    deadline = time.monotonic() + 180
    while Submission.objects.exclude(state__in=FINAL_STATES).exists():
        if time.monotonic() > deadline:
            print("warm-up did not finish; worker logs in", tmp, file=sys.stderr)
            return 1
        time.sleep(0.2)
    Submission.objects.all().delete()

    total = args.students * args.per_student
    print(f"submitting {total} files from {args.students} students through the upload view…", flush=True)
    upload_times, refused = [], 0
    t_start = time.time()
    for round_ in range(args.per_student):
        for i, u in enumerate(students):
            status, dt = submit(u, i + round_)
            upload_times.append(dt)
            refused += status != 302
    t_submitted = time.time()
    deadline = time.monotonic() + args.timeout
    while Submission.objects.exclude(state__in=FINAL_STATES).exists():
        if time.monotonic() > deadline:
            print("timed out waiting for the workers", file=sys.stderr)
            break
        time.sleep(0.25)
    t_end = max(Submission.objects.values_list("finished_at", flat=True)).timestamp()
    subs = list(Submission.objects.all())
    lat = [(s.finished_at - s.created_at).total_seconds() for s in subs if s.finished_at]
    grade = [(s.finished_at - s.started_at).total_seconds() for s in subs if s.finished_at and s.started_at]
    states = {st: sum(1 for s in subs if s.state == st) for st in ("graded", "error", "queued", "running")}
    full = sum(1 for s in subs if s.score == s.max_score)
    print()
    print(f"submissions      {len(subs)} accepted, {refused} refused; states {states}; {full} with full marks")
    print(f"upload request   median {statistics.median(upload_times) * 1000:.0f} ms, p95 {pct(upload_times, .95) * 1000:.0f} ms")
    print(f"grading (worker) median {statistics.median(grade):.2f} s, p95 {pct(grade, .95):.2f} s")
    print(f"submit-to-graded median {statistics.median(lat):.2f} s, p95 {pct(lat, .95):.2f} s, max {max(lat):.2f} s")
    print(f"throughput       {len(lat) / (t_end - t_start):.2f} submissions/s over {t_end - t_start:.1f} s "
          f"({args.workers} worker(s); all uploads sent in {t_submitted - t_start:.1f} s)")
    return 0 if states["graded"] + states["error"] == total and not refused else 1


if __name__ == "__main__":
    sys.exit(main())
