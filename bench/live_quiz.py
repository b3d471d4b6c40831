"""Load test of the live quiz: 300 phones, 1 projector and 1 control, over real sockets on loopback.

The servers are the production shape on one machine: gunicorn (the pages, the answer POSTs and the
instructor's steps) and uvicorn serving courseplatform.asgi (the WebSockets), joined by the Redis
channel layer, on PostgreSQL. The clients run in a separate process (this script with --client):
asyncio, one WebSocket per phone (the `websockets` package) and plain HTTP/1.1 POSTs.

Per question: the control POSTs "next"; every phone waits for the question on its socket (open ->
shown), thinks 1-6 s, POSTs its answer (answer POST latency, "received" only after the database
has it); the projector's count reaches 300 (last answer -> projector count); the control closes it.
After 10 questions the database must hold every acknowledged answer. Prints p50/p95/max, errors,
the push server's memory with all sockets held, and the machine's load.

    python bench/live_quiz.py                     # 300 phones, 10 questions
    python bench/live_quiz.py --phones 50 --questions 3

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432; creates and drops the
database `cp_livebench`) and Redis (BENCH_BROKER, default redis://127.0.0.1:6379/3). The machine's
other load skews the figures: report them with that note. Exit status 1 when a goal is missed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
DB_NAME = "cp_livebench"
GOALS = {"open_to_phone": 1000, "answer_post": 150, "last_answer_to_projector": 1000}  # ms, p95
MEMORY_GOAL_MB = 300

BANK = r'''
[quiz]
title = "Live bench"
slug = "live-bench"

[[question]]
id = "q1"
type = "single"
text = "How many heads does BERT-base have?"
choices = [{ text = "8" }, { text = "12", correct = true }, { text = "16" }]

[[question]]
id = "q2"
type = "multiple"
text = "Which models are encoder-only?"
choices = [{ text = "BERT", correct = true }, { text = "GPT-2" }, { text = "RoBERTa", correct = true }]

[[question]]
id = "q3"
type = "truefalse"
text = "Layer norm normalises over the feature dimension."
answer = true

[[question]]
id = "q4"
type = "numeric"
text = "Head dimension of BERT-base?"
answer = 64
tolerance = 0.5

[[question]]
id = "q5"
type = "numeric"
text = "A score of {{s}} divided by sqrt(4)?"
answer = "s / 2"
tolerance = 0.01
[question.params]
s = { int = [10, 99] }

[[question]]
id = "q6"
type = "short"
text = "Which token starts every BERT input?"
answers = ["[CLS]"]
'''


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the server side
def server_env(pg: str) -> dict:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"{pg}/{DB_NAME}", "DEBUG": "0", "SECRET_KEY": "bench-" + secrets.token_hex(24),
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0", "SECURE_HSTS_SECONDS": "0", "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/3"),
        "CHANNEL_LAYER_PREFIX": "cp-livebench-" + secrets.token_hex(4),
        "DJANGO_SETTINGS_MODULE": "courseplatform.settings", "DB_CONN_MAX_AGE": "600",
        "PYTHONPATH": str(REPO),
    })
    return env


def prepare(pg: str, n_phones: int, n_questions: int, env: dict) -> dict:
    """Database, course, lecture, 300 students joined to a live session; logged-in session cookies."""
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CELERY_BROKER_URL",
                                           "CHANNEL_LAYER_PREFIX", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT")})
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connections
    from django.utils import timezone

    from courseplatform.courses.models import Course, LectureSession, Membership
    from courseplatform.live import services
    from courseplatform.live.models import Participant
    from courseplatform.quizzes import bank
    from courseplatform.quizzes.sync import apply_bank

    course = Course.objects.create(slug="livebench", title="Live bench")
    lecture = LectureSession.objects.create(course=course, date=timezone.localdate(), title="Lecture")
    quiz = apply_bank(course, bank.parse_bank(BANK, where="bench.toml"))["quiz_obj"]
    User = get_user_model()
    prof = User.objects.create_user("prof", password=None)
    Membership.objects.create(course=course, user=prof, role="instructor")
    User.objects.bulk_create([User(username=f"phone{i:04d}") for i in range(n_phones)])
    users = list(User.objects.filter(username__startswith="phone").order_by("username"))
    Membership.objects.bulk_create([Membership(course=course, user=u, role="student") for u in users])
    base = list(quiz.active_questions())
    questions = [base[i % len(base)] for i in range(n_questions)]  # the bank's 6 kinds, round the clock
    # Question keys repeat when n > 6: copy them under distinct positions (start copies each spec).
    live = services.start(course, lecture, questions, title="Live bench", user=prof, quiz=quiz, mark_attendance=True)
    Participant.objects.bulk_create([Participant(live=live, user=u) for u in users])

    def cookie(user):
        s = SessionStore()
        s[SESSION_KEY] = str(user.pk)
        s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        s[HASH_SESSION_KEY] = user.get_session_auth_hash()
        s.create()
        return s.session_key

    out = {"course": course.slug, "live": live.pk, "prof": cookie(prof), "phones": [cookie(u) for u in users],
           "n_questions": n_questions}
    connections.close_all()
    return out


def rss_mb(pid: int) -> float:
    import psutil

    try:
        p = psutil.Process(pid)
        return sum(x.memory_info().rss for x in [p, *p.children(recursive=True)]) / 2**20
    except psutil.NoSuchProcess:
        return 0.0


def wait_port(port: int, what: str):
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not start")


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main():
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phones", type=int, default=300)
    ap.add_argument("--questions", type=int, default=10)
    ap.add_argument("--web-workers", type=int, default=3, help="gunicorn worker processes")
    ap.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread)")
    ap.add_argument("--think-min", type=float, default=1.0)
    ap.add_argument("--think-max", type=float, default=6.0)
    ap.add_argument("--client", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        return client_main(args)
    pg = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
    env = server_env(pg)
    t0 = time.perf_counter()
    setup = prepare(pg, args.phones, args.questions, env)
    print(f"setup: database, live session of {args.questions} questions and {args.phones} joined students in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    web_port, push_port = free_port(), free_port()
    web = subprocess.Popen(
        [str(Path(PY).with_name("gunicorn")), "courseplatform.wsgi", "-b", f"127.0.0.1:{web_port}",
         "-w", str(args.web_workers), "-k", "gthread", "--threads", str(args.threads), "--timeout", "120",
         "--log-level", "warning"], cwd=REPO, env=env, start_new_session=True)
    push = subprocess.Popen(
        [PY, "-m", "uvicorn", "courseplatform.asgi:application", "--host", "127.0.0.1", "--port", str(push_port),
         "--ws", "websockets", "--lifespan", "off", "--no-access-log", "--log-level", "warning",
         "--timeout-graceful-shutdown", "5"],
        cwd=REPO, env=env, start_new_session=True)
    out = Path(tempfile.mkdtemp(prefix="cp_livebench_"))
    peak = {"rss": 0.0, "held": 0.0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], rss_mb(push.pid))
            stop.wait(0.5)

    try:
        wait_port(web_port, "gunicorn")
        wait_port(push_port, "uvicorn")
        import http.client

        for i in range(args.web_workers * 3):  # warm up the workers outside the measurement (JSON only)
            c = http.client.HTTPConnection("127.0.0.1", web_port, timeout=60)
            c.request("GET", f"/courses/{setup['course']}/live/{setup['live']}/me.json",
                      headers={"Cookie": f"sessionid={setup['phones'][i % len(setup['phones'])]}"})
            c.getresponse().read()
            c.close()
        rss_idle = rss_mb(push.pid)
        (out / "setup.json").write_text(json.dumps({**setup, "web_port": web_port, "push_port": push_port,
                                                    "think": [args.think_min, args.think_max]}))
        threading.Thread(target=sample, daemon=True).start()
        load_before = os.getloadavg()
        t1 = time.perf_counter()
        client = subprocess.Popen([PY, __file__, "--client", str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        for line in client.stdout:
            if line.startswith("HELD"):  # every socket is open: the push server's memory now
                time.sleep(1.0)
                peak["held"] = rss_mb(push.pid)
            print(line, end="", flush=True)
        client.wait()
        wall = time.perf_counter() - t1
        load_after = os.getloadavg()
    finally:
        stop.set()
        for p in (web, push):
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
    result = json.loads((out / "result.json").read_text())
    from courseplatform.live.models import Response

    stored = Response.objects.filter(question__live_id=setup["live"]).count()
    acked = result["acked"]
    lost = acked - stored
    print(f"\n{args.phones} phones + 1 projector + 1 control, {args.questions} questions, think "
          f"{args.think_min:g}-{args.think_max:g} s; gunicorn {args.web_workers}x{args.threads} (answers, steps) + "
          f"uvicorn 1 process (sockets), Redis channel layer, PostgreSQL; clients in their own process; {wall:.0f} s")
    print(f"machine: {os.cpu_count()} CPUs, load average (1/5/15 min) {load_before[0]:.2f}/{load_before[1]:.2f}/"
          f"{load_before[2]:.2f} at the start, {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f} at the end "
          "(other engineers' work included)")
    print(f"{'measure':<28}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  goal p95")
    missed = []
    for key, goal in GOALS.items():
        v = result[key]
        p95 = pct(v, 0.95)
        ok = p95 <= goal
        missed += [] if ok else [key]
        print(f"{key:<28}{len(v):>7}{statistics.median(v) if v else float('nan'):>9.1f}{p95:>9.1f}"
              f"{max(v) if v else float('nan'):>9.1f}  <= {goal} {'ok' if ok else 'MISSED'}")
    print(f"socket handshakes retried: {result.get('retries', 0)}")
    print(f"answers acknowledged {acked}, stored {stored}, lost {lost} (goal 0); errors {len(result['errors'])} (goal 0)")
    for e in result["errors"][:15]:
        print("  ", e)
    print(f"push server memory: {rss_idle:.0f} MB idle, {peak['held']:.0f} MB holding {result['held']} sockets, "
          f"peak {peak['rss']:.0f} MB (goal < {MEMORY_GOAL_MB} MB)")
    mem_ok = peak["rss"] < MEMORY_GOAL_MB
    good = not missed and lost == 0 and not result["errors"] and mem_ok and result["held"] == args.phones + 2
    print("goals:", "all met" if good else "MISSED: " + ", ".join(missed + ([] if mem_ok else ["memory"]) +
                                                               (["lost answers"] if lost else []) +
                                                               (["errors"] if result["errors"] else [])))
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    sys.exit(0 if good else 1)


# --------------------------------------------------------------------------- the client process
async def http_post(port: int, path: str, cookie: str, data: dict, timeout: float = 30) -> tuple[int, dict]:
    """One HTTP/1.1 POST on a fresh loopback connection (a phone's request), JSON back."""
    csrf = secrets.token_hex(16)  # 32 characters: an unmasked CSRF secret, cookie and header alike
    body = urlencode(data, doseq=True).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: sessionid={cookie}; csrftoken={csrf}\r\n"
            f"X-CSRFToken: {csrf}\r\nAccept: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()

    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + body)
        await writer.drain()
        raw = await reader.read()
        writer.close()
        return raw

    raw = await asyncio.wait_for(go(), timeout)
    header, _, payload = raw.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    try:
        return status, json.loads(payload or b"{}")
    except ValueError:
        return status, {"raw": payload[:200].decode(errors="replace")}


def answer_for(q: dict) -> dict:
    kind = q["kind"]
    if kind == "single":
        return {"choice": random.choice(q["choices"])["id"]}
    if kind == "multiple":
        return {"choice": [c["id"] for c in q["choices"] if random.random() < 0.5] or [q["choices"][0]["id"]]}
    if kind == "truefalse":
        return {"value": random.choice(["true", "false"])}
    if kind == "numeric":
        return {"value": str(random.choice([64, 63.8, 50, 12.5]))}
    return {"text": random.choice(["[CLS]", "CLS", "SEP", "start token"])}


def client_main(args):
    out = Path(args.client)
    setup = json.loads((out / "setup.json").read_text())
    try:
        result = asyncio.run(run_clients(setup))
    except Exception as exc:  # noqa: BLE001 - reported as the run's error, with what was measured
        result = {k: [] for k in GOALS} | {"acked": 0, "held": 0, "errors": [f"client crashed: {exc!r}"]}
    (out / "result.json").write_text(json.dumps(result))


async def run_clients(s: dict) -> dict:
    from websockets.asyncio.client import connect

    web, push = s["web_port"], s["push_port"]
    course, live = s["course"], s["live"]
    ws_base = f"ws://127.0.0.1:{push}/ws/live/{live}/"
    origin = f"http://127.0.0.1:{push}"
    think_min, think_max = s["think"]
    errors: list[str] = []
    res = {"open_to_phone": [], "answer_post": [], "last_answer_to_projector": [], "acked": 0, "errors": errors}
    opened = {}  # position -> (time the control sent "next")
    shown: dict[int, asyncio.Event] = {}
    projector_full: dict[int, float] = {}
    last_ack: dict[int, float] = {}
    n = len(s["phones"])
    done_answering: dict[int, asyncio.Event] = {}

    async def phone(cookie: str, ready: asyncio.Event, go: asyncio.Event):
        try:
            async with connect(ws_base + "?as=phone", additional_headers={"Cookie": f"sessionid={cookie}", "Origin": origin},
                               open_timeout=60, ping_interval=None) as ws:
                first = json.loads(await ws.recv())
                if first.get("type") != "state":
                    errors.append(f"phone: first message {first}")
                ready.set()
                answered = set()
                async for raw in ws:
                    m = json.loads(raw)
                    if m.get("type") != "state":
                        continue
                    if m.get("ended"):
                        return
                    pos = m.get("position")
                    if m.get("phase") == "open" and pos is not None and pos not in answered and pos in opened:
                        answered.add(pos)
                        res["open_to_phone"].append((time.perf_counter() - opened[pos]) * 1000)
                        asyncio.get_running_loop().create_task(answer(cookie, m["question"], pos))
        except Exception as exc:  # noqa: BLE001 - every failure is a reported error
            errors.append(f"phone socket: {type(exc).__name__}: {exc}")
            ready.set()

    async def answer(cookie, q, pos):
        await asyncio.sleep(random.uniform(think_min, think_max))
        t = time.perf_counter()
        try:
            status, body = await http_post(web, f"/courses/{course}/live/{live}/answer/", cookie,
                                           {"question": q["id"], **answer_for(q)})
        except Exception as exc:  # noqa: BLE001
            errors.append(f"answer POST: {type(exc).__name__}: {exc}")
            return
        res["answer_post"].append((time.perf_counter() - t) * 1000)
        if status != 200 or not body.get("ok"):
            errors.append(f"answer POST {status}: {body}")
        else:
            res["acked"] += 1
            last_ack[pos] = time.perf_counter()
        answered_count[pos] = answered_count.get(pos, 0) + 1
        if answered_count[pos] == n:
            done_answering[pos].set()

    answered_count: dict[int, int] = {}
    projector_seen: dict[int, asyncio.Event] = {}

    async def projector(ready: asyncio.Event):
        try:
            async with connect(ws_base + "?as=screen", additional_headers={"Cookie": f"sessionid={s['prof']}",
                                                                         "Origin": origin}, open_timeout=60) as ws:
                await ws.recv()
                ready.set()
                current = {"q": None, "pos": None}
                async for raw in ws:
                    m = json.loads(raw)
                    if m.get("type") == "state":
                        if m.get("ended"):
                            return
                        current = {"q": (m.get("question") or {}).get("id"), "pos": m.get("position")}
                    elif m.get("type") == "counts" and m.get("question") == current["q"] and m["answered"] >= n:
                        pos = current["pos"]
                        if pos not in projector_full:
                            projector_full[pos] = time.perf_counter()
                            projector_seen.setdefault(pos, asyncio.Event()).set()
        except Exception as exc:  # noqa: BLE001
            errors.append(f"projector socket: {type(exc).__name__}: {exc}")
            ready.set()

    readies = [asyncio.Event() for _ in range(n)]
    go = asyncio.Event()
    tasks = []
    proj_ready = asyncio.Event()
    tasks.append(asyncio.create_task(projector(proj_ready)))
    for i, cookie in enumerate(s["phones"]):
        tasks.append(asyncio.create_task(phone(cookie, readies[i], go)))
        if i % 25 == 24:
            await asyncio.sleep(0.5)  # 300 phones within 6 s: a storm (a lecture joins over a minute)
    await asyncio.wait_for(asyncio.gather(proj_ready.wait(), *(r.wait() for r in readies)), 180)
    print(f"HELD {n + 1} sockets (+ the control's POSTs)", flush=True)
    await asyncio.sleep(2)
    res["held"] = n + 2  # phones, projector and (below) the control page's socket
    res["retries"] = 0
    for attempt in range(5):  # the control page's socket; a failed handshake is retried as the page does
        try:
            control_ws = await connect(ws_base + "?as=screen", open_timeout=60,
                                       additional_headers={"Cookie": f"sessionid={s['prof']}", "Origin": origin})
            await control_ws.recv()
            break
        except Exception as exc:  # noqa: BLE001
            res["retries"] += 1
            print(f"control socket: {type(exc).__name__}: {exc}; retrying", flush=True)
            await asyncio.sleep(1)
    else:
        raise RuntimeError("the control socket could not connect")
    for pos in range(s["n_questions"]):
        done_answering[pos] = asyncio.Event()
        projector_seen.setdefault(pos, asyncio.Event())
        opened[pos] = time.perf_counter()
        status, body = await http_post(web, f"/courses/{course}/live/{live}/action/", s["prof"], {"action": "next"})
        if status != 200:
            errors.append(f"control next {status}: {body}")
        try:
            await asyncio.wait_for(done_answering[pos].wait(), 60)
            await asyncio.wait_for(projector_seen[pos].wait(), 30)
            res["last_answer_to_projector"].append(max(0.0, (projector_full[pos] - last_ack[pos]) * 1000))
        except asyncio.TimeoutError:
            errors.append(f"question {pos + 1}: {answered_count.get(pos, 0)} answers, projector "
                          f"{'saw' if pos in projector_full else 'did not see'} all")
        status, body = await http_post(web, f"/courses/{course}/live/{live}/action/", s["prof"], {"action": "close"})
        if status != 200:
            errors.append(f"control close {status}: {body}")
        print(f"question {pos + 1}: open->phones p95 "
              f"{pct(res['open_to_phone'][-n:], 0.95):.0f} ms, answer POST p95 {pct(res['answer_post'][-n:], 0.95):.0f} ms, "
              f"last answer->projector {res['last_answer_to_projector'][-1] if res['last_answer_to_projector'] else -1:.0f} ms",
              flush=True)
    await http_post(web, f"/courses/{course}/live/{live}/action/", s["prof"], {"action": "end"})
    await control_ws.close()
    await asyncio.wait(tasks, timeout=30)
    for t in tasks:
        t.cancel()
    return res


if __name__ == "__main__":
    main()
