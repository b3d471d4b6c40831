"""Load test of the in-lecture quiz: N students log in, open the same quiz and answer it, driven by
Locust (bench/locustfile.py) in its own process against gunicorn + PostgreSQL.

Each student: GET the login page, POST the login form (the real Argon2 hasher), GET the quiz page,
POST start (302), GET the attempt page, POST an autosave for every question (htmx request) with a
think time between them, POST submit (302), GET the result. Users are spawned at --spawn-rate per
second (300 at 10/s: everyone has opened the quiz within 30 s). Prints the median and p95 latency per
request type (exact, from every request) and the error count, and compares them with the goals.

    python bench/quiz_load.py                         # 300 students, spawn 10/s, 3 workers x 4 threads
    python bench/quiz_load.py --students 50 --run-time 60

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432) and creates/drops the
database `cp_quizbench`. Loopback only. The machine's other load skews the figures: report them
with that note. Exit status 1 when there were errors or a goal was missed.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
DB_NAME = "cp_quizbench"
PASSWORD = "bench-password-" + secrets.token_hex(4)
# Goals of issue 11 (milliseconds, p95).
GOALS = {"autosave": 150, "start": 300, "quiz_page": 300, "attempt_page": 300}
KINDS = ("login_page", "login", "quiz_page", "start", "attempt_page", "autosave", "submit", "result")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(pg: str) -> dict:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"{pg}/{DB_NAME}", "DEBUG": "0", "SECRET_KEY": "bench-" + secrets.token_hex(24),
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0", "SECURE_HSTS_SECONDS": "0", "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/3"),
        "DJANGO_SETTINGS_MODULE": "courseplatform.settings", "DB_CONN_MAX_AGE": "600",
        "STATIC_ROOT": str(Path(os.environ.get("TMPDIR", "/tmp")) / "cp_quizbench_static"),
    })
    return env


def prepare(pg: str, n_students: int, env: dict) -> tuple[str, str, int]:
    """Create the database, migrate, load a quiz and the students; return (course, quiz, students)."""
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    # DEBUG=0 serves static files through whitenoise's manifest, as in production.
    subprocess.run([PY, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS",
                                           "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT")})
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from courseplatform.courses.models import Course, Membership
    from courseplatform.quizzes import bank
    from courseplatform.quizzes.sync import apply_bank

    course = Course.objects.create(slug="bench", title="Bench course")
    parsed = bank.load_bank_file(REPO / "assignments" / "quizzes" / "attention.toml")
    parsed["questions"] = [q for q in parsed["questions"] if q["type"] != "code"]
    parsed["quiz"].update(slug="bench-quiz", max_attempts=1, time_limit_minutes=30)
    quiz = apply_bank(course, parsed)["quiz_obj"]
    quiz.opens_at, quiz.closes_at = timezone.now() - timedelta(minutes=1), timezone.now() + timedelta(hours=2)
    quiz.published = True
    quiz.save()
    User = get_user_model()
    # The site's own hasher (Argon2id): the bench logs in through the login form like a student.
    password = make_password(PASSWORD)
    User.objects.bulk_create([User(username=f"bench{i:04d}", password=password) for i in range(n_students)])
    users = list(User.objects.filter(username__startswith="bench").order_by("username"))
    Membership.objects.bulk_create([Membership(course=course, user=u, role="student") for u in users])
    from django.db import connections

    connections.close_all()
    return course.slug, quiz.slug, len(users)


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=300)
    ap.add_argument("--spawn-rate", type=float, default=10, help="students arriving per second")
    ap.add_argument("--run-time", default="150s", help="Locust --run-time (the run is bounded)")
    ap.add_argument("--think-min", type=float, default=4, help="seconds between a student's requests, min")
    ap.add_argument("--think-max", type=float, default=10, help="seconds between a student's requests, max")
    ap.add_argument("--rounds", type=int, default=1, help="times each student answers every question")
    ap.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    ap.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread)")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()
    pg = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
    env = server_env(pg)
    t0 = time.perf_counter()
    course, quiz, n_students = prepare(pg, args.students, env)
    print(f"setup: database, quiz and {n_students} students in {time.perf_counter() - t0:.1f} s", flush=True)
    port = free_port()
    server = subprocess.Popen(
        [str(Path(PY).with_name("gunicorn")), "courseplatform.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(args.workers),
         "-k", "gthread", "--threads", str(args.threads), "--timeout", "120", "--log-level", "warning"],
        cwd=REPO, env=env, start_new_session=True)
    out = Path(tempfile.mkdtemp(prefix="cp_quizbench_")) / "latency.json"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("gunicorn did not start")
        # Warm up every worker (imports, DB connections) outside the measurement.
        import http.client

        for _ in range(args.workers * 3):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.request("GET", "/accounts/login/")
            c.getresponse().read()
            c.close()
        lenv = dict(os.environ, BENCH_COURSE=course, BENCH_QUIZ=quiz, BENCH_USERS="bench", BENCH_PASSWORD=PASSWORD,
                    BENCH_STUDENTS=str(n_students), BENCH_ROUNDS=str(args.rounds), BENCH_LATENCY_OUT=str(out),
                    BENCH_THINK_MIN=str(args.think_min), BENCH_THINK_MAX=str(args.think_max))
        load_before = os.getloadavg()[0]
        t1 = time.perf_counter()
        log = out.with_name("locust.log")
        with open(log, "w") as logf:
            subprocess.run([str(Path(PY).with_name("locust")), "-f", str(REPO / "bench" / "locustfile.py"), "--headless",
                            "-u", str(n_students), "-r", str(args.spawn_rate), "--run-time", args.run_time,
                            "--host", f"http://127.0.0.1:{port}", "--only-summary", "--loglevel", "WARNING",
                            "--stop-timeout", "10"], cwd=REPO, env=lenv, check=False, stdout=logf, stderr=logf)
        wall = time.perf_counter() - t1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    if not out.exists():
        raise SystemExit(f"Locust wrote no latencies; its output is in {log}")
    data = json.loads(out.read_text())
    lat, errors = data["latencies"], data["errors"]
    total = sum(len(v) for v in lat.values())
    print(f"\n{n_students} students spawned at {args.spawn_rate:g}/s, think {args.think_min:g}-{args.think_max:g} s, "
          f"gunicorn {args.workers} workers x {args.threads} threads, PostgreSQL, Locust in its own process; "
          f"{total} requests in {wall:.0f} s ({total / wall:.0f} req/s); "
          f"{data['finished_students']} students submitted; machine load average (1 min, {os.cpu_count()} CPUs) "
          f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"{'request':<14}{'count':>7}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}{'goal p95':>10}")
    missed = []
    for kind in KINDS:
        v = lat.get(kind, [])
        if not v:
            continue
        p95 = pct(v, 0.95)
        goal = GOALS.get(kind)
        verdict = "" if goal is None else f"{'<=' if p95 <= goal else '> '}{goal} {'ok' if p95 <= goal else 'MISSED'}"
        if goal is not None and p95 > goal:
            missed.append(kind)
        print(f"{kind:<14}{len(v):>7}{statistics.median(v):>11.1f}{p95:>9.1f}{max(v):>9.1f}  {verdict}")
    print(f"errors: {len(errors)} (goal 0)")
    for e in errors[:20]:
        print("  ", e)
    print("goals:", "all met" if not missed and not errors else f"missed: {', '.join(missed) or 'errors'}")
    if not args.keep_db:
        import psycopg
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    sys.exit(1 if errors or missed else 0)


if __name__ == "__main__":
    main()
