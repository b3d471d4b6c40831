"""Load test: N simulated students take a quiz against gunicorn + PostgreSQL.

Each student: GET the quiz page, POST start (302), GET the attempt page, POST an autosave for every
question (htmx request), POST submit (302), GET the result. Logins are real Django sessions
(created in the database beforehand, sent as the session cookie); POSTs carry a CSRF cookie + header
like the browser does. Prints median and p95 latency per request type and the error count.

    python bench/quiz_load.py                       # 300 students, 50 at a time, 4 gunicorn workers
    python bench/quiz_load.py --students 50 --concurrency 20 --workers 2

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432) and creates/drops the
database `cp_quizbench`. The machine's other load skews the figures: report them with that note.
"""
from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
DB_NAME = "cp_quizbench"


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


def prepare(pg: str, n_students: int, env: dict) -> tuple[str, str, list[tuple[str, str]]]:
    """Create the database, migrate, load a quiz and the students; return (course, quiz, [(session, csrf)])."""
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
    from django.contrib.sessions.backends.db import SessionStore
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
    password = make_password("bench-password")
    users = User.objects.bulk_create([User(username=f"bench{i:04d}", password=password) for i in range(n_students)])
    users = list(User.objects.filter(username__startswith="bench").order_by("username"))
    Membership.objects.bulk_create([Membership(course=course, user=u, role="student") for u in users])
    creds = []
    for u in users:
        s = SessionStore()
        s["_auth_user_id"] = str(u.pk)
        s["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        s["_auth_user_hash"] = u.get_session_auth_hash()
        s.create()
        creds.append((s.session_key, secrets.token_urlsafe(24)[:32].replace("-", "a").replace("_", "b")))
    from django.db import connections

    connections.close_all()
    return course.slug, quiz.slug, creds


class Student:
    def __init__(self, port, session, csrf, record):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = f"sessionid={session}; csrftoken={csrf}"
        self.csrf = csrf
        self.record = record

    def request(self, kind, method, path, body=None, headers=None, expect=(200,)):
        h = {"Cookie": self.cookie, "Host": "127.0.0.1"}
        if method == "POST":
            h.update({"X-CSRFToken": self.csrf, "Content-Type": "application/x-www-form-urlencoded"})
        h.update(headers or {})
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=h)
            resp = self.conn.getresponse()
            data = resp.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.record(kind, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")
            return None, "", {}
        ok = resp.status in expect
        self.record(kind, time.perf_counter() - t0, None if ok else f"{method} {path} -> {resp.status}")
        return resp.status, data, dict(resp.getheaders())


FIELDSET = re.compile(r'<fieldset[^>]*hx-post="([^"]+)"[^>]*hx-params="(q\d+)"(.*?)</fieldset>', re.S)


def answer_for(field, chunk, rnd):
    """A plausible answer from the attempt page: a choice, true/false, or a number."""
    from urllib.parse import urlencode

    radios = re.findall(rf'type="radio" name="{field}" value="([^"]+)"', chunk)
    boxes = re.findall(rf'type="checkbox" name="{field}" value="([^"]+)"', chunk)
    if radios:
        return urlencode({field: rnd.choice(radios)})
    if boxes:
        picked = [v for v in boxes if rnd.random() < 0.5] or boxes[:1]
        return urlencode([(field, "")] + [(field, v) for v in picked])
    if 'type="text"' in chunk:
        return urlencode({field: f"{rnd.uniform(0, 2):.3f}" if "inputmode" in chunk else "layer norm"})
    return urlencode({field: "x"})


def run_student(port, course, quiz, cred, record, seed):
    import random

    rnd = random.Random(seed)
    st = Student(port, *cred, record)
    base = f"/courses/{course}/quizzes"
    st.request("quiz_page", "GET", f"{base}/{quiz}/")
    status, _, headers = st.request("start", "POST", f"{base}/{quiz}/start/", body="", expect=(302,))
    location = headers.get("Location", "")
    m = re.search(r"/attempt/(\d+)/", location)
    if not m:
        record("start", 0.0, f"no attempt in redirect {status} {location!r}")
        return
    attempt = m.group(1)
    _, page, _ = st.request("attempt_page", "GET", f"{base}/attempt/{attempt}/")
    for save_url, field, chunk in FIELDSET.findall(page):
        _, body, _ = st.request("autosave", "POST", urlsplit(save_url).path, body=answer_for(field, chunk, rnd),
                                headers={"HX-Request": "true"})
        if body and "Saved" not in body:
            record("autosave", 0.0, f"autosave refused: {body[:120]}")
    st.request("submit", "POST", f"{base}/attempt/{attempt}/submit/", body="", expect=(302,))
    _, result, _ = st.request("result", "GET", f"{base}/attempt/{attempt}/result/")
    if 'data-testid="score"' not in result:
        record("result", 0.0, "no score on the result page")
    st.conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=50, help="students active at the same time")
    ap.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    ap.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread)")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()
    pg = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
    env = server_env(pg)
    t0 = time.perf_counter()
    course, quiz, creds = prepare(pg, args.students, env)
    print(f"setup: database, quiz, {len(creds)} students and sessions in {time.perf_counter() - t0:.1f} s")
    port = free_port()
    server = subprocess.Popen(
        [str(Path(PY).with_name("gunicorn")), "courseplatform.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(args.workers),
         "-k", "gthread", "--threads", str(args.threads), "--timeout", "120", "--log-level", "warning"],
        cwd=REPO, env=env, start_new_session=True)
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
        lat, errors, lock = defaultdict(list), [], threading.Lock()

        def record(kind, seconds, error):
            with lock:
                if error:
                    errors.append(f"{kind}: {error}")
                else:
                    lat[kind].append(seconds * 1000)

        # Warm up every worker (imports, DB connections) outside the measurement.
        warm = Student(port, *creds[0], lambda *a: None)
        for _ in range(args.workers * 2):
            warm.request("warm", "GET", f"/courses/{course}/quizzes/")
        t1 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            futures = [pool.submit(run_student, port, course, quiz, cred, record, i) for i, cred in enumerate(creds)]
            for f in futures:
                f.result()
        wall = time.perf_counter() - t1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    total = sum(len(v) for v in lat.values())
    print(f"\n{args.students} students, {args.concurrency} concurrent, gunicorn {args.workers} workers x "
          f"{args.threads} threads, PostgreSQL; {total} requests in {wall:.1f} s ({total / wall:.0f} req/s)")
    print(f"{'request':<14}{'count':>7}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}")
    for kind in ("quiz_page", "start", "attempt_page", "autosave", "submit", "result"):
        v = sorted(lat.get(kind, []))
        if v:
            p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
            print(f"{kind:<14}{len(v):>7}{statistics.median(v):>11.1f}{p95:>9.1f}{v[-1]:>9.1f}")
    print(f"errors: {len(errors)}")
    for e in errors[:20]:
        print("  ", e)
    if not args.keep_db:
        import psycopg
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
