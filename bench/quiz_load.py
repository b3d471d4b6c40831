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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (PY, REPO, drop_database, free_port, fresh_database, gunicorn, load_line, pct, server_env, stop,
                     wait_port)

DB_NAME = "cp_quizbench"
PASSWORD = "bench-password-" + secrets.token_hex(4)
# Goals of issue 11 (milliseconds, p95).
GOALS = {"autosave": 150, "start": 300, "quiz_page": 300, "attempt_page": 300}
KINDS = ("login_page", "login", "quiz_page", "start", "attempt_page", "autosave", "submit", "result")


def make_quiz_course(n_students: int, slug: str = "bench", users: str = "bench") -> tuple[str, str, int]:
    """In the database Django is set up on: a course ``slug`` with the attention quiz (open now, 30
    minutes, one attempt) and ``n_students`` students ``<users>0000``... with the password PASSWORD.
    Returns (course slug, quiz slug, number of students)."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connections
    from django.utils import timezone

    from courseplatform.courses.models import Course, Membership
    from courseplatform.quizzes import bank
    from courseplatform.quizzes.sync import apply_bank

    course = Course.objects.create(slug=slug, title="Bench course")
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
    User.objects.bulk_create([User(username=f"{users}{i:04d}", password=password) for i in range(n_students)])
    members = list(User.objects.filter(username__startswith=users).order_by("username"))
    Membership.objects.bulk_create([Membership(course=course, user=u, role="student") for u in members])
    connections.close_all()
    return course.slug, quiz.slug, len(members)


def start_locust(port: int, course: str, quiz: str, n_students: int, *, spawn_rate: float, run_time: str,
                 think: tuple[float, float], rounds: int = 1, users: str = "bench") -> tuple[subprocess.Popen, Path]:
    """Locust (bench/locustfile.py) in its own process against 127.0.0.1:port; returns it and the
    file it writes every request's latency to when it stops (its output is beside it, locust.log)."""
    out = Path(tempfile.mkdtemp(prefix="cp_quizbench_")) / "latency.json"
    lenv = dict(os.environ, BENCH_COURSE=course, BENCH_QUIZ=quiz, BENCH_USERS=users, BENCH_PASSWORD=PASSWORD,
                BENCH_STUDENTS=str(n_students), BENCH_ROUNDS=str(rounds), BENCH_LATENCY_OUT=str(out),
                BENCH_THINK_MIN=str(think[0]), BENCH_THINK_MAX=str(think[1]))
    logf = open(out.with_name("locust.log"), "w")
    proc = subprocess.Popen([str(Path(PY).with_name("locust")), "-f", str(REPO / "bench" / "locustfile.py"),
                             "--headless", "-u", str(n_students), "-r", str(spawn_rate), "--run-time", run_time,
                             "--host", f"http://127.0.0.1:{port}", "--only-summary", "--loglevel", "WARNING",
                             "--stop-timeout", "10"], cwd=REPO, env=lenv, stdout=logf, stderr=logf)
    return proc, out


def report(out: Path) -> tuple[list[str], list[str]]:
    """Print the latency table of a Locust run (median, p95, max per request kind, against GOALS);
    returns (the goals missed, the errors)."""
    if not out.exists():
        raise SystemExit(f"Locust wrote no latencies; its output is in {out.with_name('locust.log')}")
    data = json.loads(out.read_text())
    lat, errors = data["latencies"], data["errors"]
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
    print(f"timed-quiz students who submitted: {data['finished_students']}; errors: {len(errors)} (goal 0)")
    for e in errors[:20]:
        print("  ", e)
    return missed, errors


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
    env = server_env(pg, DB_NAME)
    t0 = time.perf_counter()
    fresh_database(pg, DB_NAME, env, static=True)
    course, quiz, n_students = make_quiz_course(args.students)
    print(f"setup: database, quiz and {n_students} students in {time.perf_counter() - t0:.1f} s", flush=True)
    port = free_port()
    server = gunicorn(port, env, args.workers, args.threads)
    try:
        wait_port(port, "gunicorn", 60)
        # Warm up every worker (imports, DB connections) outside the measurement.
        import http.client

        for _ in range(args.workers * 3):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.request("GET", "/accounts/login/")
            c.getresponse().read()
            c.close()
        load_before = os.getloadavg()
        t1 = time.perf_counter()
        locust, out = start_locust(port, course, quiz, n_students, spawn_rate=args.spawn_rate,
                                   run_time=args.run_time, think=(args.think_min, args.think_max), rounds=args.rounds)
        locust.wait()
        wall = time.perf_counter() - t1
        load_after = os.getloadavg()
    finally:
        stop(server)
    print(f"\n{n_students} students spawned at {args.spawn_rate:g}/s, think {args.think_min:g}-{args.think_max:g} s, "
          f"gunicorn {args.workers} workers x {args.threads} threads, PostgreSQL, Locust in its own process; {wall:.0f} s")
    print(load_line(load_before, load_after))
    missed, errors = report(out)
    print("goals:", "all met" if not missed and not errors else f"missed: {', '.join(missed) or 'errors'}")
    if not args.keep_db:
        drop_database(pg, DB_NAME)
    sys.exit(1 if errors or missed else 0)


if __name__ == "__main__":
    main()
