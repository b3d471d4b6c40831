"""Load test of the live quiz: 300 phones, 1 projector and 1 control, over real sockets on loopback.

The servers are the production shape on one machine: gunicorn (the pages, the POSTs of a phone or a
control page whose socket is down) and uvicorn serving courseplatform.asgi (the
WebSockets, and the answers the phones send on them), joined by the Redis channel layer, on
PostgreSQL. The clients run in a separate process (this script with --client): asyncio, one
WebSocket per phone (the `websockets` package) and plain HTTP/1.1 POSTs.

Per question: the control sends "next" on its socket, as the control page does (the POST when the
socket is down or gives no reply within 5 s); every phone waits for the question on its socket (open ->
shown), thinks 1-6 s, sends its answer as the phone page does, on its socket (--answer-via post:
the POST instead), and times it until "received" (sent only after the database has it); the
projector's count reaches 300 (last answer -> projector count); the control closes it. After 10
questions the database must hold every acknowledged answer. Prints p50/p95/max, errors, the push
server's memory with all sockets held, and the machine's load (os.getloadavg).

With --timed-students N the timed-quiz bench (bench/quiz_load.py's Locust scenario: login, quiz
page, start, attempt page, autosaves, submit) runs at the same time in another course of the same
site, against the same gunicorn, and its autosave and page latencies are compared with their goals.

    python bench/live_quiz.py                     # 300 phones, 10 questions
    python bench/live_quiz.py --phones 50 --questions 3
    python bench/live_quiz.py --timed-students 300   # and the timed-quiz bench beside it

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432; creates and drops the
database `cp_livebench`, or BENCH_DB) and Redis (BENCH_BROKER, default redis://127.0.0.1:6379/3). The machine's
other load skews the figures: report them with that note. Exit status 1 when a goal is missed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import (PY, REPO, LivePhone, drop_database, free_port, fresh_database, gunicorn, http_post, load_line, pct,
                     rss_mb, server_env, stop, wait_port)

DB_NAME = os.environ.get("BENCH_DB", "cp_livebench")
GOALS = {"open_to_phone": 1000, "answer": 150, "last_answer_to_projector": 1000}  # ms, p95 (answer: sent -> "received")
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


def prepare(pg: str, n_phones: int, n_questions: int, env: dict, timed_students: int = 0) -> dict:
    """Database, course, lecture, the students joined to a live session; logged-in session cookies.
    With ``timed_students``: another course with the timed quiz and its students (quiz_load.py)."""
    fresh_database(pg, DB_NAME, env, static=bool(timed_students))
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
    if timed_students:
        from quiz_load import make_quiz_course

        out["timed"] = make_quiz_course(timed_students, slug="timed", users="timed")
    return out


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main():
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phones", type=int, default=300)
    ap.add_argument("--questions", type=int, default=10)
    ap.add_argument("--web-workers", type=int, default=3, help="gunicorn worker processes")
    ap.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread)")
    ap.add_argument("--push-workers", type=int, default=1,
                    help="uvicorn processes (one event loop holds the sockets and stores the answers)")
    ap.add_argument("--answer-via", choices=("socket", "post"), default="socket",
                    help="how phones send answers: on their socket (as the page does) or by POST")
    ap.add_argument("--think-min", type=float, default=1.0)
    ap.add_argument("--think-max", type=float, default=6.0)
    ap.add_argument("--timed-students", type=int, default=0,
                    help="run the timed-quiz bench (quiz_load.py) with this many students in another course")
    ap.add_argument("--timed-run-time", default="180s", help="its Locust --run-time")
    ap.add_argument("--client", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        return client_main(args)
    pg = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
    env = server_env(pg, DB_NAME)
    t0 = time.perf_counter()
    setup = prepare(pg, args.phones, args.questions, env, args.timed_students)
    print(f"setup: database, live session of {args.questions} questions and {args.phones} joined students"
          f"{f', timed quiz with {args.timed_students} students' if args.timed_students else ''} in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    web_port, push_port = free_port(), free_port()
    web = gunicorn(web_port, env, args.web_workers, args.threads)
    push = subprocess.Popen(
        [PY, "-m", "uvicorn", "courseplatform.asgi:application", "--host", "127.0.0.1", "--port", str(push_port),
         "--workers", str(args.push_workers), "--ws", "websockets", "--lifespan", "off", "--no-access-log",
         "--log-level", "warning", "--timeout-graceful-shutdown", "5"],
        cwd=REPO, env=env, start_new_session=True)
    out = Path(tempfile.mkdtemp(prefix="cp_livebench_"))
    peak = {"rss": 0.0, "held": 0.0}
    done = threading.Event()
    locust = None

    def sample():
        while not done.is_set():
            peak["rss"] = max(peak["rss"], rss_mb(push.pid))
            done.wait(0.5)

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
                                                    "think": [args.think_min, args.think_max],
                                                    "answer_via": args.answer_via}))
        threading.Thread(target=sample, daemon=True).start()
        load_before = os.getloadavg()
        t1 = time.perf_counter()
        if args.timed_students:
            from quiz_load import start_locust

            course, quiz, n = setup["timed"]
            locust, timed_out = start_locust(web_port, course, quiz, n, spawn_rate=10, run_time=args.timed_run_time,
                                             think=(4, 10), users="timed")
        client = subprocess.Popen([PY, __file__, "--client", str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        for line in client.stdout:
            if line.startswith("HELD"):  # every socket is open: the push server's memory now
                time.sleep(1.0)
                peak["held"] = rss_mb(push.pid)
            print(line, end="", flush=True)
        client.wait()
        wall = time.perf_counter() - t1
        if locust is not None:
            locust.wait()
        load_after = os.getloadavg()
    finally:
        done.set()
        if locust is not None and locust.poll() is None:
            locust.terminate()
        for p in (web, push):
            stop(p)
    result = json.loads((out / "result.json").read_text())
    from courseplatform.live.models import Response

    stored = Response.objects.filter(question__live_id=setup["live"]).count()
    acked = result["acked"]
    lost = acked - stored
    print(f"\n{args.phones} phones + 1 projector + 1 control, {args.questions} questions, think "
          f"{args.think_min:g}-{args.think_max:g} s, answers sent by {args.answer_via}; gunicorn "
          f"{args.web_workers}x{args.threads} (pages{', POSTed answers' if args.answer_via == 'post' else ''}"
          f"{', the timed quiz' if args.timed_students else ''}) + uvicorn {args.push_workers} process(es) (sockets, control steps"
          f"{', answers' if args.answer_via == 'socket' else ''}), Redis channel layer, PostgreSQL; clients in their "
          f"own process; {wall:.0f} s")
    print(load_line(load_before, load_after))
    print(f"{'measure':<28}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  goal p95")
    missed = []
    for key, goal in GOALS.items():
        v = result[key]
        p95 = pct(v, 0.95)
        ok = p95 <= goal
        missed += [] if ok else [key]
        print(f"{key:<28}{len(v):>7}{statistics.median(v) if v else float('nan'):>9.1f}{p95:>9.1f}"
              f"{max(v) if v else float('nan'):>9.1f}  <= {goal} {'ok' if ok else 'MISSED'}")
    print(f"control steps sent by POST (socket down or silent): {result.get('retries', 0)}; phone reconnects: "
          f"{result.get('reconnects', 0)} (goal 0)")
    print(f"answers acknowledged {acked}, stored {stored}, lost {lost} (goal 0); errors {len(result['errors'])} (goal 0)")
    for e in result["errors"][:15]:
        print("  ", e)
    print(f"push server memory: {rss_idle:.0f} MB idle, {peak['held']:.0f} MB holding {result['held']} sockets, "
          f"peak {peak['rss']:.0f} MB (goal < {MEMORY_GOAL_MB} MB)")
    mem_ok = peak["rss"] < MEMORY_GOAL_MB
    timed_missed, timed_errors = [], []
    if args.timed_students:
        from quiz_load import report

        print(f"timed quiz in another course, beside the live quiz: {args.timed_students} students, spawn 10/s, "
              f"think 4-10 s, Locust in its own process, {args.timed_run_time}")
        timed_missed, timed_errors = report(timed_out)
    good = (not missed and lost == 0 and not result["errors"] and mem_ok and result["held"] == args.phones + 2
            and not timed_missed and not timed_errors)
    print("goals:", "all met" if good else "MISSED: " + ", ".join(
        missed + ([] if mem_ok else ["memory"]) + (["lost answers"] if lost else []) +
        (["errors"] if result["errors"] else []) + [f"timed {k}" for k in timed_missed] +
        (["timed-quiz errors"] if timed_errors else [])))
    drop_database(pg, DB_NAME)
    sys.exit(0 if good else 1)


# --------------------------------------------------------------------------- the client process
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
    result = {k: [] for k in GOALS} | {"acked": 0, "held": 0, "errors": []}
    try:
        asyncio.run(run_clients(setup, result))
    except Exception as exc:  # noqa: BLE001 - reported as the run's error, with what was measured
        result["errors"].append(f"client crashed: {exc!r}")
    (out / "result.json").write_text(json.dumps(result))


async def run_clients(s: dict, res: dict) -> dict:
    """Fills ``res`` (the measures, "acked", "held", "errors") as the run goes."""
    from websockets.asyncio.client import connect

    web, push = s["web_port"], s["push_port"]
    course, live = s["course"], s["live"]
    ws_base = f"ws://127.0.0.1:{push}/ws/live/{live}/"
    origin = f"http://127.0.0.1:{push}"
    think_min, think_max = s["think"]
    errors: list[str] = res["errors"]
    opened = {}  # position -> (time the control sent "next")
    projector_full: dict[int, float] = {}
    last_ack: dict[int, float] = {}
    n = len(s["phones"])
    done_answering: dict[int, asyncio.Event] = {}

    via_socket = s.get("answer_via", "socket") == "socket"
    loop = asyncio.get_running_loop()

    def phone(cookie: str) -> LivePhone:
        answered = set()

        def on_state(p: LivePhone, m: dict) -> None:
            pos = m.get("position")
            if m.get("phase") == "open" and pos is not None and pos not in answered and pos in opened:
                answered.add(pos)
                res["open_to_phone"].append((time.perf_counter() - opened[pos]) * 1000)
                loop.create_task(answer(cookie, m["question"], pos, p))

        return LivePhone(ws_base + "?as=phone", cookie, origin, on_state=on_state)

    async def answer(cookie, q, pos, p: LivePhone):
        await asyncio.sleep(random.uniform(think_min, think_max))
        t = time.perf_counter()
        try:
            if via_socket:
                body = await p.answer(q["id"], answer_for(q))
                status = body.get("status", 200)
            else:
                status, body = await http_post(web, f"/courses/{course}/live/{live}/answer/", cookie,
                                               {"question": q["id"], **answer_for(q)})
        except Exception as exc:  # noqa: BLE001
            errors.append(f"answer: {type(exc).__name__}: {exc}")
            return
        res["answer"].append((time.perf_counter() - t) * 1000)
        if status != 200 or not body.get("ok"):
            errors.append(f"answer {status}: {body}")
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

    tasks = []
    proj_ready = asyncio.Event()
    tasks.append(asyncio.create_task(projector(proj_ready)))
    phones = [phone(cookie) for cookie in s["phones"]]
    starts = []
    for i, p in enumerate(phones):
        starts.append(asyncio.create_task(p.start()))
        if i % 25 == 24:
            await asyncio.sleep(0.5)  # 300 phones within 6 s: a storm (a lecture joins over a minute)
    await asyncio.wait_for(asyncio.gather(proj_ready.wait(), *starts), 180)
    for p in phones:
        if p.state.get("type") != "state":
            errors.append(f"phone: first message {p.state}")
    print(f"HELD {n + 1} sockets (+ the control's)", flush=True)
    await asyncio.sleep(2)
    res["held"] = n + 2  # phones, projector and (below) the control page's socket
    # The control page's socket (reconnecting with the page's backoff), which sends the steps.
    control = LivePhone(ws_base + "?as=screen", s["prof"], origin)
    await asyncio.wait_for(control.start(), 120)
    res["retries"] = 0  # steps that went by POST (no socket, or no reply within 5 s)
    last_reply: list[dict] = []

    async def step(action: str) -> bool:
        """One step as the control page sends it: on its socket with the version it shows, by POST
        when the socket is down or gives no reply within 5 s; a failure is an error of the run."""
        version = max((m.get("version", -1) for m in [*control.states, *last_reply]), default=None)
        how = "socket"
        try:
            reply = await control.step(action, version, timeout=5)
            status, body = reply.get("status"), reply
        except Exception:  # noqa: BLE001 - no socket or no reply: the POST, as the page does
            how = "POST"
            res["retries"] += 1
            try:
                status, body = await http_post(web, f"/courses/{course}/live/{live}/action/", s["prof"],
                                               {"action": action, "version": version if version is not None else ""},
                                               timeout=60)
            except Exception as exc:  # noqa: BLE001
                status, body = None, f"{type(exc).__name__}: {exc}"
        if status != 200:
            errors.append(f"control {action} ({how}): {status} {body}")
        elif isinstance(body, dict) and body.get("state"):
            last_reply[:] = [body["state"]]
        return status == 200

    for pos in range(s["n_questions"]):
        done_answering[pos] = asyncio.Event()
        projector_seen.setdefault(pos, asyncio.Event())
        opened[pos] = time.perf_counter()
        if not await step("next"):
            continue
        try:
            await asyncio.wait_for(done_answering[pos].wait(), 60)
            await asyncio.wait_for(projector_seen[pos].wait(), 30)
            res["last_answer_to_projector"].append(max(0.0, (projector_full[pos] - last_ack[pos]) * 1000))
        except asyncio.TimeoutError:
            errors.append(f"question {pos + 1}: {answered_count.get(pos, 0)} answers, projector "
                          f"{'saw' if pos in projector_full else 'did not see'} all")
        await step("close")
        print(f"question {pos + 1}: open->phones p95 "
              f"{pct(res['open_to_phone'][-n:], 0.95):.0f} ms, answer p95 {pct(res['answer'][-n:], 0.95):.0f} ms, "
              f"last answer->projector {res['last_answer_to_projector'][-1] if res['last_answer_to_projector'] else -1:.0f} ms",
              flush=True)
    await step("end")
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait_for(lambda m: m.get("ended")) for p in phones)), 30)
    except asyncio.TimeoutError:
        errors.append(f"{sum(1 for p in phones if not p.state.get('ended'))} phones never saw the end")
    res["reconnects"] = sum(p.connects - 1 for p in phones)
    await asyncio.gather(*(p.close() for p in phones), return_exceptions=True)
    await control.close()
    await asyncio.wait(tasks, timeout=30)
    for t in tasks:
        t.cancel()
    return res


if __name__ == "__main__":
    main()
