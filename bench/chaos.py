"""Chaos run: a surge of submissions while worker hosts die, lose their network, and the broker and
PostgreSQL restart. At the end: accepted, graded, error (with messages), lost, stuck, graded twice
with different results, and the time from each fault to the first grade after it.

The cluster (this module's Cluster):
  - its own broker: a private redis-server (no persistence, like the mission's Redis) on a free
    port, or RabbitMQ at 127.0.0.1:5672 (guest/guest) in a private vhost;
  - its own PostgreSQL cluster (initdb in a temp folder, run as the postgres user), so restarting
    it disturbs nobody else; with --no-own-postgres, a throw-away database of DATABASE_URL's server
    (then the PostgreSQL fault is skipped);
  - a web host (gunicorn) and Celery beat, and two worker hosts (celery worker -Q cpu,ops -c 2).
    A "host" is a process group; with --netns each host is a Linux network namespace with a veth
    link to a bridge on this machine (10.231.0.0/24, only addresses created here), and PostgreSQL and
    the broker are reached over those links as if on other machines.
Faults: SIGKILL of every process of a worker host at random moments (brought back each time), a
worker host's link cut for --cut-s seconds (--netns: the veth is taken down; otherwise the host's
processes are frozen with SIGSTOP, which looks the same from outside), a broker restart, a
PostgreSQL restart.

Submissions go through the real upload path: HTTP multipart POSTs to the API of the web host with
each student's token. The engine is the stand-in of the submission tests (cp_fake_grader: the file
states its score) plus a grading time (--grade-s), so a wrong or doubled result is detectable: every
completed grade is logged, and a submission whose saved score differs from the score its file
states, or that was completed twice with different results, is "inconsistent".

    .venv/bin/python bench/chaos.py --broker redis        # the full run (300 submissions, 50 kills)
    .venv/bin/python bench/chaos.py --broker rabbitmq
    .venv/bin/python bench/chaos.py --submissions 60 --kills 5 --cut-s 10   # shorter

tests/ops/test_chaos.py runs a short version (a few kills and one broker restart).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from _common import free_port, wait_port

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
SUBMISSION_TESTS = ROOT / "tests" / "submissions"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
NET = "10.231.0"


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=kw.pop("timeout", 120), **kw)


# --- services: broker and database ---------------------------------------------------------------


class RedisBroker:
    name = "redis"

    def __init__(self, tmp: Path, bind: str):
        self.port, self.bind, self.dir = free_port(), bind, tmp / "redis"
        self.dir.mkdir()
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://{self.bind}:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", self.bind, "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--protected-mode", "no"],
            stdout=(self.dir / "redis.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, "redis-server", 30, host=self.bind)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)  # no persistence either way: a crash loses everything
            self.proc.wait(timeout=20)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()


class RabbitBroker:
    name = "rabbitmq"

    def __init__(self, tmp: Path, bind: str):
        self.vhost = f"cp-chaos-{os.getpid()}"
        self.bind = bind
        self.port = 5672
        self.proxy = None
        run(["rabbitmqctl", "add_vhost", self.vhost])
        run(["rabbitmqctl", "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*"])
        if bind != "127.0.0.1":  # hosts in namespaces reach RabbitMQ through a forwarder on the bridge
            self.port = free_port()
            self.proxy = subprocess.Popen(["socat", f"TCP-LISTEN:{self.port},bind={bind},reuseaddr,fork",
                                           "TCP:127.0.0.1:5672"], start_new_session=True)
            wait_port(self.port, "the broker's proxy", 20, host=bind)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.bind}:{self.port}/{self.vhost}"

    def start(self) -> None:
        run(["rabbitmqctl", "start_app"], timeout=180)
        run(["rabbitmqctl", "await_startup"], timeout=180)

    def restart(self) -> None:
        run(["rabbitmqctl", "stop_app"], timeout=180)
        self.start()

    def close(self) -> None:
        try:
            run(["rabbitmqctl", "delete_vhost", self.vhost])
        finally:
            if self.proxy:
                self.proxy.kill()
                self.proxy.wait()


class OwnPostgres:
    """A private PostgreSQL cluster (initdb as the postgres user, trust auth) that we may restart."""

    def __init__(self, tmp: Path, bind: str):
        self.dir = tmp / "pg"
        self.dir.mkdir()
        shutil.chown(self.dir, "postgres")
        self.port, self.bind = free_port(), bind
        self._pg(PG_BIN / "initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        if bind != "127.0.0.1":  # the hosts' own addresses on the bridge (created by Netns, nothing else)
            with open(self.dir / "data" / "pg_hba.conf", "a") as f:
                f.write(f"host all all {NET}.0/24 trust\n")

    def _pg(self, *cmd, timeout=120):
        return run(["runuser", "-u", "postgres", "--", *map(str, cmd)], timeout=timeout)

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@{self.bind}:{self.port}/postgres"

    def url(self, db: str) -> str:
        return f"postgres://postgres@{self.bind}:{self.port}/{db}"

    def start(self) -> None:
        self._pg(PG_BIN / "pg_ctl", "-D", self.dir / "data", "-l", self.dir / "pg.log", "-w", "-t", "60", "-o",
                 f"-p {self.port} -c listen_addresses={self.bind} -c unix_socket_directories={self.dir} "
                 f"-c max_connections=200 -c fsync=off", "start")

    def restart(self) -> None:
        self._pg(PG_BIN / "pg_ctl", "-D", self.dir / "data", "-m", "fast", "-w", "-t", "60", "stop")
        self.start()

    def close(self) -> None:
        try:
            self._pg(PG_BIN / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "-w", "stop")
        except subprocess.SubprocessError:
            pass


# --- hosts ---------------------------------------------------------------------------------------


class Netns:
    """Namespaces cp<pid>-<host> with a veth each to the bridge cpbr<pid> (NET.1/24)."""

    def __init__(self, hosts: list[str]):
        self.tag = f"{os.getpid() % 100000}"
        self.bridge = f"cpbr{self.tag}"
        self.hosts: dict[str, tuple[str, str, str]] = {}  # host -> (ns, host-side veth, address)
        run(["ip", "link", "add", self.bridge, "type", "bridge"])
        run(["ip", "addr", "add", f"{NET}.1/24", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        for i, host in enumerate(hosts, start=11):
            ns, veth, peer, addr = f"cp{self.tag}-{host}", f"cv{self.tag}{i}", f"cp{self.tag}{i}", f"{NET}.{i}"
            run(["ip", "netns", "add", ns])
            run(["ip", "link", "add", veth, "type", "veth", "peer", "name", peer])
            run(["ip", "link", "set", peer, "netns", ns])
            run(["ip", "link", "set", veth, "master", self.bridge])
            run(["ip", "link", "set", veth, "up"])
            run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", peer])
            run(["ip", "-n", ns, "link", "set", peer, "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            self.hosts[host] = (ns, veth, addr)

    @property
    def gateway(self) -> str:
        return f"{NET}.1"

    def prefix(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.hosts[host][0]]

    def cut(self, host: str, down: bool) -> None:
        run(["ip", "link", "set", self.hosts[host][1], "down" if down else "up"])

    def close(self) -> None:
        for ns, veth, _ in self.hosts.values():
            subprocess.run(["ip", "netns", "pids", ns], capture_output=True)
            out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in out:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "link", "del", veth], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


@dataclass
class Host:
    name: str
    cmd: list[str]
    env: dict
    log: Path
    prefix: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([*self.prefix, *self.cmd], cwd=ROOT, env=self.env, start_new_session=True,
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def pids(self) -> list[int]:
        import psutil

        if not self.proc:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root.pid, *(c.pid for c in root.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL every process of the host at once (the machine died)."""
        if not self.proc:
            return
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def freeze(self, frozen: bool) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)
            except ProcessLookupError:
                pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Config:
    broker: str = "redis"
    submissions: int = 300
    students: int = 150
    kills: int = 50
    cut_s: float = 20.0
    broker_restart: bool = True
    postgres_restart: bool = True
    own_postgres: bool = True
    netns: bool = False
    grade_s: float = 0.3
    surge_s: float = 240.0
    drain_s: float = 300.0
    lease_s: float = 8.0
    seed: int = 17


class Chaos:
    def __init__(self, cfg: Config, tmp: Path):
        self.cfg, self.tmp = cfg, tmp
        self.rng = random.Random(cfg.seed)
        self.faults: list[tuple[str, float]] = []  # (what, wall time)
        self.accepted: dict[int, int] = {}  # submission id -> the score its file states
        self.refused: list[str] = []
        self.lock = threading.Lock()
        self.cleanups: list = []

    # set-up -------------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        self.net = Netns(["web", "w1", "w2"]) if cfg.netns else None
        if self.net:
            self.cleanups.append(self.net.close)
        bind = self.net.gateway if self.net else "127.0.0.1"
        self.broker = RedisBroker(self.tmp, bind) if cfg.broker == "redis" else RabbitBroker(self.tmp, bind)
        self.cleanups.append(self.broker.close)
        if cfg.broker == "redis":
            self.broker.start()
        db = f"cp_chaos_{os.getpid()}"
        if cfg.own_postgres:
            self.pg = OwnPostgres(self.tmp, bind)
            self.cleanups.append(self.pg.close)
            self.pg.start()
            admin, self.db_url = self.pg.admin_url, self.pg.url(db)
        else:
            from urllib.parse import urlparse, urlunparse

            base = urlparse(os.environ["DATABASE_URL"])
            admin = urlunparse(base._replace(path="/postgres"))
            self.db_url = urlunparse(base._replace(path="/" + db))
            self.pg = None
        import psycopg

        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')

        def drop():
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self.cleanups.append(drop)
        self.grades_log = self.tmp / "grades.jsonl"
        self.env = dict(os.environ)
        self.env.update({
            "DEBUG": "1", "DATABASE_URL": self.db_url, "CELERY_BROKER_URL": self.broker.url,
            "CELERY_BROKER_KEYPREFIX": f"cp-chaos-{os.getpid()}:" if cfg.broker == "redis" else "",
            "MEDIA_ROOT": str(self.tmp / "media"), "PACK_STORE": str(self.tmp / "packs"),
            "COURSEPLATFORM_VAR": str(self.tmp / "var"), "DB_CONN_MAX_AGE": "0", "LOG_LEVEL": "INFO",
            "COURSEPLATFORM_GRADE_FUNCTION": "chaos.logged_grade", "CHAOS_GRADES_LOG": str(self.grades_log),
            "CHAOS_GRADE_S": str(cfg.grade_s),
            "GRADING_HEARTBEAT_S": str(max(0.5, cfg.lease_s / 4)), "GRADING_LEASE_S": str(cfg.lease_s),
            "SWEEP_INTERVAL_S": "2", "CELERY_VISIBILITY_TIMEOUT": "21600",
            "PYTHONPATH": os.pathsep.join([str(HERE), str(SUBMISSION_TESTS), str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "courseplatform.settings", "ALLOWED_HOSTS": "*",
        })
        if not self.env["CELERY_BROKER_KEYPREFIX"]:
            self.env.pop("CELERY_BROKER_KEYPREFIX")
        os.environ.update({k: v for k, v in self.env.items() if k != "PYTHONPATH"})
        sys.path[:0] = [str(ROOT), str(HERE), str(SUBMISSION_TESTS)]
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        self._course()
        self._hosts()

    def _course(self) -> None:
        from django.contrib.auth import get_user_model
        from django.utils import timezone

        from courseplatform.courses.models import Course, Membership
        from courseplatform.submissions.models import ApiToken
        from courseplatform.submissions.sync import sync_pack
        from cp_helpers import write_pack

        course = Course.objects.create(slug="chaos", title="Chaos")
        a, _ = sync_pack(course, write_pack(self.tmp / "assignments"))
        a.max_queued_per_student, a.cooldown_seconds, a.max_attempts = 100, 0, 0
        a.due_at = timezone.now() + timezone.timedelta(days=1)
        a.save()
        self.assignment = a
        User = get_user_model()
        self.tokens = []
        for i in range(self.cfg.students):
            u = User.objects.create_user(username=f"s{i}", password="x")
            Membership.objects.create(course=course, user=u, role="student")
            self.tokens.append(ApiToken.issue(u)[1])

    def _hosts(self) -> None:
        py = sys.executable
        self.web_port = free_port() if not self.net else 8000
        web_bind = self.net.hosts["web"][2] if self.net else "127.0.0.1"
        self.web_url = f"http://{web_bind}:{self.web_port}"
        pre = (lambda h: self.net.prefix(h)) if self.net else (lambda h: [])
        self.web = Host("web", [py, "-m", "gunicorn", "courseplatform.wsgi:application", "--bind",
                                f"{web_bind}:{self.web_port}", "--workers", "2", "--threads", "4", "--timeout", "60"],
                        self.env, self.tmp / "web.log", pre("web"))
        self.beat = Host("beat", [py, "-m", "celery", "-A", "courseplatform", "beat", "-l", "INFO", "--schedule",
                                  str(self.tmp / "beat-schedule")], self.env, self.tmp / "beat.log", pre("web"))
        self.workers = [Host(h, [py, "-m", "celery", "-A", "courseplatform", "worker", "-Q", "cpu,ops", "-c", "2",
                                 "-n", f"{h}@chaos", "-l", "INFO"], self.env, self.tmp / f"{h}.log", pre(h))
                        for h in ("w1", "w2")]
        for h in (self.web, self.beat, *self.workers):
            h.start()
            self.cleanups.append(h.kill)
        wait_port(self.web_port, "the web host", 120, host=web_bind)

    # the surge ----------------------------------------------------------------------------------
    def submit_one(self, n: int) -> None:
        score = self.rng.randint(0, 10)
        token = self.tokens[n % len(self.tokens)]
        body_text = f"def double(x):\n    return 2 * x\n# SCORE={score} n={n}\n".encode()
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"tiny.py\"\r\n"
                f"Content-Type: text/x-python\r\n\r\n").encode() + body_text + f"\r\n--{boundary}--\r\n".encode()
        url = f"{self.web_url}/api/courses/chaos/assignments/{self.assignment.slug}/submissions"
        for attempt in range(30):  # a student whose upload failed tries again
            req = urllib.request.Request(url, data=body, method="POST", headers={
                "Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    data = json.loads(r.read())
                with self.lock:
                    self.accepted[data["id"]] = score
                return
            except urllib.error.HTTPError as exc:
                if exc.code in (400, 403, 404, 409, 413, 429) and exc.code != 429:
                    with self.lock:
                        self.refused.append(f"{exc.code}: {exc.read()[:200]!r}")
                    return
            except OSError:
                pass
            time.sleep(1 + attempt * 0.5)
        with self.lock:
            self.refused.append("gave up after 30 tries")

    def surge(self) -> threading.Thread:
        cfg = self.cfg

        def go():
            t0 = time.monotonic()
            gap = cfg.surge_s / max(1, cfg.submissions)
            threads = []
            for n in range(cfg.submissions):
                delay = t0 + n * gap - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                t = threading.Thread(target=self.submit_one, args=(n,), daemon=True)
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
        th = threading.Thread(target=go, daemon=True)
        th.start()
        return th

    # faults ---------------------------------------------------------------------------------------
    def fault(self, what: str, action) -> None:
        self.faults.append((what, time.time()))
        print(f"[{time.strftime('%H:%M:%S')}] fault: {what}", flush=True)
        action()

    def inject(self, surge: threading.Thread) -> None:
        cfg = self.cfg
        plan = ["kill"] * cfg.kills + ["cut"] * (1 if cfg.cut_s > 0 else 0) \
            + ["broker"] * (1 if cfg.broker_restart else 0) + ["postgres"] * (1 if cfg.postgres_restart and self.pg else 0)
        special = [p for p in plan if p != "kill"]
        kills = len(plan) - len(special)
        # special faults spread over the surge, kills at random moments between them
        order = ["kill"] * kills
        for i, s in enumerate(special):
            order.insert(int((i + 1) * len(order) / (len(special) + 1)), s)
        span = cfg.surge_s
        t0 = time.monotonic()
        for i, what in enumerate(order):
            target = t0 + span * (i + self.rng.uniform(0.2, 0.8)) / max(1, len(order))
            time.sleep(max(0.0, target - time.monotonic()))
            host = self.rng.choice(self.workers)
            if what == "kill":
                self.fault(f"SIGKILL every process of worker host {host.name}", host.kill)
                time.sleep(self.rng.uniform(0.5, 2.0))
                host.start()
            elif what == "cut":
                if self.net:
                    self.fault(f"cut the link of worker host {host.name} for {cfg.cut_s:.0f} s",
                               lambda: self.net.cut(host.name, True))
                    time.sleep(cfg.cut_s)
                    self.net.cut(host.name, False)
                else:
                    self.fault(f"freeze worker host {host.name} (SIGSTOP) for {cfg.cut_s:.0f} s",
                               lambda: host.freeze(True))
                    time.sleep(cfg.cut_s)
                    host.freeze(False)
            elif what == "broker":
                self.fault(f"restart the broker ({self.broker.name})", self.broker.restart)
            elif what == "postgres":
                self.fault("restart PostgreSQL", self.pg.restart)

    # the report ---------------------------------------------------------------------------------
    def drain(self) -> None:
        from courseplatform.submissions.models import Submission

        end = time.monotonic() + self.cfg.drain_s
        while time.monotonic() < end:
            try:
                pending = Submission.objects.filter(pk__in=list(self.accepted)).exclude(state__in=["graded", "error"]).count()
            except Exception:
                from django.db import connection

                connection.close()
                pending = -1
            if pending == 0:
                return
            time.sleep(1)

    def report(self) -> dict:
        from django.db import connection

        from courseplatform.submissions.models import Submission

        connection.close()
        rows = {pk: (state, score, msg, fin) for pk, state, score, msg, fin in Submission.objects.filter(
            pk__in=list(self.accepted)).values_list("pk", "state", "score", "message", "finished_at")}
        completions: dict[int, set] = {}
        if self.grades_log.exists():
            for line in self.grades_log.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                completions.setdefault(rec["id"], set()).add(rec["score"])
        graded = [pk for pk, r in rows.items() if r[0] == "graded"]
        errors = [pk for pk, r in rows.items() if r[0] == "error"]
        lost = [pk for pk in self.accepted if pk not in rows]
        stuck = [pk for pk, r in rows.items() if r[0] not in ("graded", "error")]
        inconsistent = [pk for pk in graded if rows[pk][1] != float(self.accepted[pk])
                        or len(completions.get(pk, set())) > 1]
        finishes = sorted(r[3].timestamp() for r in rows.values() if r[3] is not None)
        recovery = []
        for what, at in self.faults:
            after = next((f for f in finishes if f > at), None)
            recovery.append((what, None if after is None else after - at))
        messages: dict[str, int] = {}
        for pk in errors:
            messages[rows[pk][2][:160]] = messages.get(rows[pk][2][:160], 0) + 1
        return {"accepted": len(self.accepted), "refused": self.refused, "graded": len(graded), "error": len(errors),
                "error_messages": messages, "lost": len(lost), "stuck": len(stuck), "inconsistent": len(inconsistent),
                "recovery": recovery}

    def close(self) -> None:
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as exc:  # keep cleaning up
                print(f"cleanup: {exc}", file=sys.stderr)


def logged_grade(pack_dir, filename, data: bytes, **kwargs) -> dict:
    """The engine of a chaos run: cp_fake_grader plus a grading time; every completion is logged."""
    import cp_fake_grader

    time.sleep(float(os.environ.get("CHAOS_GRADE_S", "0.3")))
    result = cp_fake_grader.grade(pack_dir, filename, data)
    text = data.decode("utf-8", "replace")
    n = text.rsplit("n=", 1)[-1].strip()
    with open(os.environ["CHAOS_GRADES_LOG"], "a") as f:
        f.write(json.dumps({"n": n, "id": _current_submission_id(), "score": result["score"]}) + "\n")
    return result


def _current_submission_id():
    """The submission the running task grades (from the Celery request's args)."""
    try:
        from celery import current_task

        return current_task.request.args[0]
    except Exception:
        return None


def run_chaos(cfg: Config) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="cp-chaos-"))
    os.chmod(tmp, 0o755)
    chaos = Chaos(cfg, tmp)
    try:
        chaos.setup()
        t0 = time.time()
        surge = chaos.surge()
        chaos.inject(surge)
        surge.join()
        chaos.drain()
        rep = chaos.report()
        rep["wall_s"] = time.time() - t0
        rep["logs"] = str(tmp)
        return rep
    finally:
        chaos.close()
        if os.environ.get("CHAOS_KEEP_LOGS") != "1":
            shutil.rmtree(tmp, ignore_errors=True)


def print_report(cfg: Config, rep: dict) -> None:
    print(f"\nChaos run against {cfg.broker}: {cfg.submissions} submissions from {cfg.students} students in "
          f"{cfg.surge_s:.0f} s, {cfg.kills} worker-host kills, link cut {cfg.cut_s:.0f} s "
          f"({'netns' if cfg.netns else 'SIGSTOP'}), broker restart {'yes' if cfg.broker_restart else 'no'}, "
          f"PostgreSQL restart {'yes' if cfg.postgres_restart and cfg.own_postgres else 'no'}; {rep['wall_s']:.0f} s")
    print(f"accepted {rep['accepted']}  graded {rep['graded']}  error {rep['error']}  lost {rep['lost']}  "
          f"stuck {rep['stuck']}  inconsistent {rep['inconsistent']}  refused uploads {len(rep['refused'])}")
    for msg, n in rep["error_messages"].items():
        print(f"  error x{n}: {msg}")
    times = [t for _, t in rep["recovery"] if t is not None]
    print("fault -> first grade after it:")
    for what, t in rep["recovery"]:
        if not what.startswith("SIGKILL"):
            print(f"  {what}: {'never' if t is None else f'{t:.1f} s'}")
    kills = [t for w, t in rep["recovery"] if w.startswith("SIGKILL") and t is not None]
    if kills:
        print(f"  {len(kills)} kills: median {statistics.median(kills):.1f} s, max {max(kills):.1f} s")
    never = sum(1 for _, t in rep["recovery"] if t is None)
    print(f"recovered within 60 s: {sum(1 for t in times if t <= 60)}/{len(rep['recovery'])}"
          + (f" ({never} never)" if never else ""))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--broker", choices=["redis", "rabbitmq"], default="redis")
    p.add_argument("--submissions", type=int, default=300)
    p.add_argument("--students", type=int, default=150)
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--cut-s", type=float, default=20.0)
    p.add_argument("--no-broker-restart", action="store_true")
    p.add_argument("--no-postgres-restart", action="store_true")
    p.add_argument("--no-own-postgres", action="store_true")
    p.add_argument("--netns", action="store_true", help="each host in its own network namespace")
    p.add_argument("--grade-s", type=float, default=0.3)
    p.add_argument("--surge-s", type=float, default=240.0)
    p.add_argument("--drain-s", type=float, default=300.0)
    p.add_argument("--lease-s", type=float, default=8.0)
    p.add_argument("--json", action="store_true", help="print the report as one JSON line at the end")
    a = p.parse_args()
    cfg = Config(broker=a.broker, submissions=a.submissions, students=a.students, kills=a.kills, cut_s=a.cut_s,
                 broker_restart=not a.no_broker_restart, postgres_restart=not a.no_postgres_restart,
                 own_postgres=not a.no_own_postgres, netns=a.netns, grade_s=a.grade_s, surge_s=a.surge_s,
                 drain_s=a.drain_s, lease_s=a.lease_s)
    rep = run_chaos(cfg)
    print_report(cfg, rep)
    if a.json:
        print("CHAOS-REPORT " + json.dumps(rep))
    ok = rep["lost"] == 0 and rep["stuck"] == 0 and rep["inconsistent"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
