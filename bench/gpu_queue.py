"""Deadline simulation of the GPU queue on CPU: fair share on and off, and how close the ETAs were.

A "device" is a worker slot: one Celery worker consumes the `gpu` queue with --slots processes,
through the real broker (Redis, with the fair-share priorities), the real task, the real router and
the real queue service; only the engine is replaced by a stand-in that sleeps a bert_finetune-like
grading time (log-normal around --grade-s, fixed per file so both runs see the same work).

The surge: --first students submit once each at random moments of a --window-s window; --hammer
students (a third of all submissions by default) resubmit again and again, --per-hammer times each,
evenly spread over the window. Before the surge, a few grades are measured (the ETAs need them).

For each run it prints the wait (submit -> grading starts) of first attempts against resubmissions
(median, p95), and the ETA shown at submit time against the real start (median absolute error,
p95, share within 25 %).

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/courseplatform \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/gpu_queue.py

It creates a throw-away database (<name>_gpuq_<pid>), a temp media/pack folder and its own Redis key
prefix, and removes them at the end. Options: --first 200 --hammer 10 --per-hammer 10 --slots 4
--grade-s 0.5 --window-s 20.

--checks: the last hour before the deadline with "Check" in it, run with and without the policy
that a GPU pack's Check runs its small CPU settings on a CPU worker (settings.GPU_CHECKS_ON_CPU,
submissions.dispatch.queue_for). --students (300) each check their file 1 to 3 times (through the
real check service: its limits, one check at a time) and then submit; a quarter resubmit once. The
hour is compressed into --window-s (60 s by default here), busier towards its end. A check takes
--check-s (~0.25 s) wherever it runs. A CPU worker with --cpu-slots processes consumes `cpu`; both
workers are started per run with GPU_CHECKS_ON_CPU set. It prints the wait (submit -> grading
starts) of first attempts, resubmissions and checks, policy on and off.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
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
HERE = Path(__file__).resolve().parent


def simulated_grade(pack_dir, filename, data: bytes, **kwargs) -> dict:
    """The stand-in engine (COURSEPLATFORM_GRADE_FUNCTION=gpu_queue.simulated_grade)."""
    seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "big")
    mean = float(os.environ.get("GPU_SIM_CHECK_S" if kwargs.get("only_visible") else "GPU_SIM_GRADE_S", "0.3"))
    seconds = mean * math.exp(random.Random(seed).gauss(0.0, 0.25))
    time.sleep(seconds)
    return {"score": 10.0, "max_score": 10.0, "status": "graded", "message": f"10/10 (simulated {seconds:.2f} s)",
            "tests": [], "notes": []}


def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=int, default=200)
    parser.add_argument("--hammer", type=int, default=10)
    parser.add_argument("--per-hammer", type=int, default=10)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--grade-s", type=float, default=0.5)
    parser.add_argument("--window-s", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--checks", action="store_true",
                        help="the last hour with checks: GPU packs' checks on a CPU worker (the policy) or not")
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--check-s", type=float, default=0.25)
    parser.add_argument("--cpu-slots", type=int, default=2)
    args = parser.parse_args()
    if args.checks and "--window-s" not in " ".join(sys.argv):
        args.window_s = 60.0

    base_url = os.environ.get("DATABASE_URL", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not base_url.startswith("postgres") or not broker.startswith("redis"):
        print("Set DATABASE_URL=postgres://... and CELERY_BROKER_URL=redis://... (see the docstring).", file=sys.stderr)
        return 2
    parsed = urlparse(base_url)
    bench_db = f"{parsed.path.lstrip('/') or 'courseplatform'}_gpuq_{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="cp-gpuq-"))
    os.environ.update({
        "DATABASE_URL": urlunparse(parsed._replace(path="/" + bench_db)), "MEDIA_ROOT": str(tmp / "media"),
        "PACK_STORE": str(tmp / "packs"), "DEBUG": os.environ.get("DEBUG", "1"),
        "DJANGO_SETTINGS_MODULE": "courseplatform.settings", "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_KEYPREFIX": f"cp-bench-gpuq-{os.getpid()}:",
        "COURSEPLATFORM_GRADE_FUNCTION": "gpu_queue.simulated_grade", "GPU_SIM_GRADE_S": str(args.grade_s),
        "GPU_SIM_CHECK_S": str(args.check_s),
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "tests" / "submissions"), str(ROOT)]),
    })
    sys.path[:0] = [str(ROOT), str(HERE), str(ROOT / "tests" / "submissions")]

    import psycopg

    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{bench_db}"')
    worker = None
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        if args.checks:
            results = {}
            for policy in (True, False):
                results[policy] = run_checks(args, policy, tmp)
            print_checks_summary(args, results)
            return 0
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "courseplatform", "worker", "-Q", "gpu", "-c", str(args.slots),
             "-n", "gpuq@%h", "--without-gossip", "--without-mingle", "-l", "WARNING"],
            cwd=ROOT, env=dict(os.environ), start_new_session=True, stdout=(tmp / "worker.log").open("wb"),
            stderr=subprocess.STDOUT)
        results = {}
        for fair in (True, False):
            results[fair] = run(args, fair)
        print_summary(args, results)
        return 0
    finally:
        if worker is not None:
            stop_worker(worker)
        try:
            from courseplatform.celery import app

            with app.connection_for_write() as conn:
                client = conn.default_channel.client
                keys = client.keys("*")  # the prefixed client sees only this run's keys
                if keys:
                    client.delete(*keys)
        except Exception:
            pass
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


def start_worker(queue: str, slots: int, tmp: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "courseplatform", "worker", "-Q", queue, "-c", str(slots),
         "-n", f"gpuq-{queue}@%h", "--without-gossip", "--without-mingle", "-l", "WARNING"],
        cwd=ROOT, env=env, start_new_session=True, stdout=(tmp / f"worker-{queue}.log").open("ab"),
        stderr=subprocess.STDOUT)


def stop_worker(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def gpu_assignment(tag: str):
    """A course with a GPU-queue pack due in an hour, no per-student limits (the bench's own)."""
    from django.conf import settings
    from django.utils import timezone

    from courseplatform.courses.models import Course
    from courseplatform.submissions.sync import sync_pack
    from cp_helpers import write_pack

    course = Course.objects.create(slug=f"gpuq-{tag}", title=f"GPU queue {tag}")
    a, _ = sync_pack(course, write_pack(Path(settings.MEDIA_ROOT).parent / f"pack-{tag}", slug="bertlike", queue="gpu"))
    a.max_queued_per_student, a.cooldown_seconds, a.max_attempts = 1000, 0, 0
    a.due_at = timezone.now() + timezone.timedelta(hours=1)
    a.save()
    return course, a


def wait_graded(submissions, timeout: float, failure: str) -> None:
    """Until every submission of the queryset is graded or in error; SystemExit(failure) after timeout s."""
    deadline = time.monotonic() + timeout
    while submissions.exclude(state__in=["graded", "error"]).exists():
        if time.monotonic() > deadline:
            raise SystemExit(failure)
        time.sleep(0.2)


def warm_up(a, user, n: int, upload) -> set[int]:
    """A few grades before the surge (the ETAs need measured grading times); their ids."""
    from courseplatform.submissions import services
    from courseplatform.submissions.models import Submission

    for i in range(n):
        services.submit(a, user, upload(f"warm{i}"), is_staff=True)
    wait_graded(Submission.objects.filter(assignment=a), 120,
                "the workers did not grade the warm-up submissions: see their logs")
    return set(Submission.objects.filter(assignment=a).values_list("pk", flat=True))


def run_checks(args, policy: bool, tmp: Path) -> dict:
    """The last hour before a GPU pack's deadline, students checking and submitting; the policy on
    (checks on a CPU worker) or off (checks wait on the gpu queue with the submissions)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from courseplatform.courses.models import Membership
    from courseplatform.submissions import precheck, services
    from courseplatform.submissions.dispatch import CHECK_VIA
    from courseplatform.submissions.models import Submission
    from courseplatform.submissions.validation import UploadRejected
    from cp_helpers import py

    settings.GPU_CHECKS_ON_CPU = policy  # this process routes (sends) the tasks
    env = dict(os.environ, GPU_CHECKS_ON_CPU="1" if policy else "0")  # and the workers agree
    workers = [start_worker("gpu", args.slots, tmp, env), start_worker("cpu", args.cpu_slots, tmp, env)]
    try:
        User = get_user_model()
        tag = "policy" if policy else "nopolicy"
        course, a = gpu_assignment(tag)

        def upload(i):
            return py(text=f"def double(x):\n    return 2 * x\n# {tag} {i}\n")

        # warm-up grades (the ETAs need measured times), on both queues
        warm = User.objects.create_user(username=f"{tag}-warmup", password="x")
        Membership.objects.create(course=course, user=warm, role="student")
        warm_ids = warm_up(a, warm, args.slots * 2, upload)

        rng = random.Random(23)
        w = args.window_s
        events = []  # (time, user, action): actions check / first / resubmission
        for i in range(args.students):
            u = User.objects.create_user(username=f"{tag}-s{i}", password="x")
            Membership.objects.create(course=course, user=u, role="student")
            # busier towards the deadline: the first action's time has density rising over the hour
            t = w * 0.75 * math.sqrt(rng.random())
            for _ in range(rng.randint(1, 3)):
                events.append((t, u, "check"))
                t += w * rng.uniform(0.02, 0.06)
            t = min(t, w * 0.95)
            events.append((t, u, "first"))
            if rng.random() < 0.25:
                events.append((min(w, t + w * rng.uniform(0.02, 0.05)), u, "resubmission"))
        events.sort(key=lambda x: x[0])

        kinds, refused = {}, {"check": 0, "first": 0, "resubmission": 0}
        t0 = time.monotonic()
        for n, (at, user, kind) in enumerate(events):
            delay = at - (time.monotonic() - t0)
            if delay > 0:
                time.sleep(delay)
            try:
                if kind == "check":
                    sub = precheck.check(a, user, upload(f"c{n}"), is_staff=False)
                else:
                    sub = services.submit(a, user, upload(f"s{n}"), is_staff=False)
            except UploadRejected:
                refused[kind] += 1  # e.g. a check while the student's previous one still waits
                continue
            kinds[sub.pk] = kind

        wait_graded(Submission.objects.filter(pk__in=list(kinds)), args.timeout,
                    f"policy {tag}: not all graded within {args.timeout:.0f} s")
        total_s = time.monotonic() - t0

        waits = {"check": [], "first": [], "resubmission": []}
        for pk, created, started, via in Submission.objects.filter(pk__in=list(kinds)).exclude(pk__in=warm_ids) \
                .values_list("pk", "created_at", "started_at", "via"):
            assert (via == CHECK_VIA) == (kinds[pk] == "check")
            waits[kinds[pk]].append((started - created).total_seconds())
        graded = Submission.objects.filter(pk__in=list(kinds), state="graded").count()
        return {"waits": waits, "refused": refused, "graded": graded, "n": len(kinds), "total_s": total_s}
    finally:
        for proc in workers:
            stop_worker(proc)


def print_checks_summary(args, results) -> None:
    print(f"\nLast hour before a GPU pack's deadline ({args.window_s:.0f} s here): {args.students} students check "
          f"1-3 times and submit, a quarter resubmit; {args.slots} GPU slots (~{args.grade_s:.2f} s a grade), "
          f"{args.cpu_slots} CPU slots, a check ~{args.check_s:.2f} s")
    print(f"{'checks on cpu':<14} {'graded':>9} {'checks':>7} {'first p50':>10} {'first p95':>10} {'first max':>10}"
          f" {'resub p50':>10} {'check p50':>10} {'check p95':>10} {'total':>7}")
    for policy, r in results.items():
        f, s, c = r["waits"]["first"], r["waits"]["resubmission"], r["waits"]["check"]
        print(f"{'on' if policy else 'off':<14} {r['graded']:>4}/{r['n']:<4} {len(c):>7} {pct(f, .5):>9.1f}s {pct(f, .95):>9.1f}s"
              f" {max(f) if f else float('nan'):>9.1f}s {pct(s, .5):>9.1f}s {pct(c, .5):>9.1f}s {pct(c, .95):>9.1f}s"
              f" {r['total_s']:>6.0f}s")
        if any(r["refused"].values()):
            print(f"  refused: {r['refused']['check']} check(s) (one at a time), "
                  f"{r['refused']['first'] + r['refused']['resubmission']} submission(s)")
    on, off = results[True]["waits"]["first"], results[False]["waits"]["first"]
    if on and off:
        print(f"\nFirst attempts wait {statistics.median(off) / max(1e-9, statistics.median(on)):.1f}x less at the "
              f"median (p95: {pct(off, .95) / max(1e-9, pct(on, .95)):.1f}x) with GPU packs' checks on a CPU worker.")


def run(args, fair: bool) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from courseplatform.courses.models import Membership
    from courseplatform.submissions import queue, services
    from courseplatform.submissions.models import Submission
    from cp_helpers import py

    settings.FAIR_SHARE = fair
    User = get_user_model()
    tag = "on" if fair else "off"
    course, a = gpu_assignment(tag)

    def student(name):
        u = User.objects.create_user(username=f"{tag}-{name}", password="x")
        Membership.objects.create(course=course, user=u, role="student")
        return u

    def upload(i):
        return py(text=f"def double(x):\n    return 2 * x\n# submission {i}\n")

    # Measured grading times for the ETAs (a few grades before the surge).
    warm = student("warmup")
    warm_ids = warm_up(a, warm, args.slots * 2, upload)

    rng = random.Random(17)
    arrivals = [(rng.uniform(0, args.window_s), student(f"s{i}"), "first") for i in range(args.first)]
    for h in range(args.hammer):
        u = student(f"h{h}")
        offset = rng.uniform(0, args.window_s / args.per_hammer)
        for k in range(args.per_hammer):
            arrivals.append((offset + k * args.window_s / args.per_hammer, u, "first" if k == 0 else "resubmission"))
    arrivals.sort(key=lambda x: x[0])

    kinds, etas = {}, {}
    t0 = time.monotonic()
    for n, (at, user, kind) in enumerate(arrivals):
        delay = at - (time.monotonic() - t0)
        if delay > 0:
            time.sleep(delay)
        sub = services.submit(a, user, upload(f"{tag}-{n}"), is_staff=False)
        kinds[sub.pk] = kind
        sub.refresh_from_db()
        info = queue.queue_info(sub)
        etas[sub.pk] = info.estimated_start if info else None
    submit_s = time.monotonic() - t0

    wait_graded(Submission.objects.filter(pk__in=list(kinds)), args.timeout,
                f"fair share {tag}: not all graded within {args.timeout:.0f} s")
    total_s = time.monotonic() - t0

    waits = {"first": [], "resubmission": []}
    errors, relative, no_eta = [], [], 0
    for pk, created, started in Submission.objects.filter(pk__in=list(kinds)).exclude(pk__in=warm_ids) \
            .values_list("pk", "created_at", "started_at"):
        wait = (started - created).total_seconds()
        waits[kinds[pk]].append(wait)
        eta = etas.get(pk)
        if eta is None:
            no_eta += 1
            continue
        err = abs((started - eta).total_seconds())
        errors.append(err)
        relative.append(err / max(1.0, wait))
    graded = Submission.objects.filter(pk__in=list(kinds), state="graded").count()
    return {"waits": waits, "errors": errors, "relative": relative, "no_eta": no_eta, "graded": graded,
            "n": len(kinds), "submit_s": submit_s, "total_s": total_s}


def print_summary(args, results) -> None:
    print(f"\nGPU queue deadline simulation: {args.first} first attempts + {args.hammer} students x "
          f"{args.per_hammer} resubmissions in {args.window_s:.0f} s, {args.slots} slots, "
          f"~{args.grade_s:.2f} s a grade")
    print(f"{'fair share':<11} {'graded':>7} {'first p50':>10} {'first p95':>10} {'resub p50':>10} {'resub p95':>10}"
          f" {'ETA err p50':>12} {'ETA err p95':>12} {'within 25%':>11} {'total':>7}")
    for fair, r in results.items():
        f, s = r["waits"]["first"], r["waits"]["resubmission"]
        within = sum(1 for x in r["relative"] if x <= 0.25) / len(r["relative"]) if r["relative"] else float("nan")
        print(f"{'on' if fair else 'off':<11} {r['graded']:>3}/{r['n']:<3} {pct(f, .5):>9.1f}s {pct(f, .95):>9.1f}s"
              f" {pct(s, .5):>9.1f}s {pct(s, .95):>9.1f}s {pct(r['errors'], .5):>11.1f}s {pct(r['errors'], .95):>11.1f}s"
              f" {within:>10.0%} {r['total_s']:>6.0f}s")
        if r["no_eta"]:
            print(f"  ({r['no_eta']} submission(s) had no ETA)")
    on, off = results[True]["waits"]["first"], results[False]["waits"]["first"]
    if on and off:
        print(f"\nFirst attempts wait {statistics.median(off) / max(1e-9, statistics.median(on)):.1f}x less at the "
              f"median with fair share on.")


if __name__ == "__main__":
    sys.exit(main())
