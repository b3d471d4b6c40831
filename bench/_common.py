"""What the load benches share: ports, the servers' environment, a fresh bench database, waiting
for a server, percentiles, a process tree's memory and the machine's load.

The benches are scripts (`python bench/live_quiz.py`), so they import this as `_common` (their own
folder is on the path); tests import it as `bench._common`.
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, what: str, timeout: float = 90, host: str = "127.0.0.1") -> None:
    """Until something accepts connections on host:port; RuntimeError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} ({host}:{port}) did not open within {timeout:.0f} s")


def pct(values, q: float) -> float:
    """The q-quantile by nearest rank (NaN for no values)."""
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float("nan")


def server_env(pg: str, db_name: str) -> dict:
    """The environment of the bench's servers (gunicorn, uvicorn) and its setup commands: production
    settings (DEBUG=0, the static manifest) on loopback, the bench's own database, the Redis of
    BENCH_BROKER (the broker and, keyed by a prefix of this run, the channel layer)."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"{pg}/{db_name}", "DEBUG": "0", "SECRET_KEY": "bench-" + secrets.token_hex(24),
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0", "SECURE_HSTS_SECONDS": "0", "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/3"),
        "CHANNEL_LAYER_PREFIX": f"cp-{db_name}-{secrets.token_hex(4)}",
        "DJANGO_SETTINGS_MODULE": "courseplatform.settings", "DB_CONN_MAX_AGE": "600",
        "STATIC_ROOT": str(Path(os.environ.get("TMPDIR", "/tmp")) / f"{db_name}_static"),
        "PYTHONPATH": str(REPO),
    })
    return env


def fresh_database(pg: str, db_name: str, env: dict, static: bool = False) -> None:
    """Drop and create ``db_name``, migrate it (and collect the static files: pages under DEBUG=0
    need whitenoise's manifest), then set Django up in this process on it."""
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db_name}")
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    if static:
        subprocess.run([PY, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CELERY_BROKER_URL",
                                           "CHANNEL_LAYER_PREFIX", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT",
                                           "STATIC_ROOT")})
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import django

    django.setup()


def drop_database(pg: str, db_name: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")


def gunicorn(port: int, env: dict, workers: int, threads: int) -> subprocess.Popen:
    """The site's WSGI server as in production (gthread workers), in a process group of its own."""
    return subprocess.Popen(
        [str(Path(PY).with_name("gunicorn")), "courseplatform.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
         "-k", "gthread", "--threads", str(threads), "--timeout", "120", "--log-level", "warning"],
        cwd=REPO, env=env, start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the process group, SIGKILL after ``timeout``."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, MiB (0 when it is gone)."""
    import psutil

    try:
        p = psutil.Process(pid)
        return sum(x.memory_info().rss for x in [p, *p.children(recursive=True)]) / 2**20
    except psutil.NoSuchProcess:
        return 0.0


def load_line(before: tuple[float, float, float], after: tuple[float, float, float]) -> str:
    """The machine's size and load average (os.getloadavg) at a run's start and end."""
    f = "/".join
    return (f"machine: {os.cpu_count()} CPUs, load average (1/5/15 min) {f(f'{x:.2f}' for x in before)} at the start, "
            f"{f(f'{x:.2f}' for x in after)} at the end (other work on the machine included)")


async def http_post(port: int, path: str, cookie: str, data: dict, timeout: float = 30) -> tuple[int, dict]:
    """One HTTP/1.1 POST on a fresh loopback connection (a phone's request), JSON back."""
    import asyncio
    import json
    from urllib.parse import urlencode

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


class LivePhone:
    """A phone on the live quiz's socket, speaking the phone page's protocol (live.js): every
    (re)connect is answered with the current state; {"type": "answer", "rid", "question", "choice"/
    "value"/"text": [...]} is answered with {"type": "answered", "rid", "ok", ...} once the answer is
    in the database. The control page's socket (as=screen) sends the instructor's steps the same way:
    {"type": "step", "rid", "action", "version"} is answered with {"type": "stepped", "rid", "ok",
    "state", ...} once committed (step()). When the socket drops it reconnects by itself with the page's backoff (250 ms
    doubling to 3 s, plus up to 250 ms of jitter), until close(). ``on_state(phone, state)`` is called
    for every state message (a plain function; it may start tasks)."""

    def __init__(self, url: str, cookie: str, origin: str, on_state=None, open_timeout: float = 60,
                 answer_path: str | None = None):
        self.url, self.headers, self.open_timeout = url, {"Cookie": f"sessionid={cookie}", "Origin": origin}, open_timeout
        self.cookie, self.origin = cookie, origin
        self.answer_path = answer_path  # the page's answer URL: set, an answer the socket lost is POSTed (live.js)
        self.posted = 0  # answers sent by that POST
        self.on_state = on_state
        self.state: dict | None = None
        self.states: list[dict] = []
        self.connects = 0  # successful handshakes (1 + reconnects)
        self.ws = None
        self._replies: dict = {}
        self._rids = 0
        self._closing = False
        self._task = None
        self._changed = None

    async def start(self) -> dict:
        """Connect (retrying with the backoff) and return the first state; then keep the socket up."""
        import asyncio

        self._changed = asyncio.Event()
        await self._connect()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self.state

    async def _connect(self) -> None:
        import asyncio
        import json
        import random

        from websockets.asyncio.client import connect

        retry = 0
        while True:
            try:
                ws = await connect(self.url, additional_headers=self.headers, open_timeout=self.open_timeout,
                                   ping_interval=None, compression=None)
                self._on_message(json.loads(await ws.recv()))
                self.ws = ws
                self.connects += 1
                return
            except Exception:  # noqa: BLE001 - refused, reset, a server restarting: try again
                if self._closing:
                    raise
                retry = min(retry + 1, 6)
                await asyncio.sleep(min(0.25 * 2 ** (retry - 1), 3.0) + random.random() * 0.25)

    async def _run(self) -> None:
        import json

        while not self._closing:
            try:
                async for raw in self.ws:
                    self._on_message(json.loads(raw))
            except Exception:  # noqa: BLE001 - the connection dropped without a close frame
                pass
            for fut in self._replies.values():  # sent, never answered: the caller may send again
                if not fut.done():
                    fut.set_exception(ConnectionError("the socket closed before the reply"))
            self._replies.clear()
            if not self._closing:
                await self._connect()

    def _on_message(self, m: dict) -> None:
        if m.get("type") in ("answered", "stepped"):
            fut = self._replies.pop(m.get("rid"), None)
            if fut is not None and not fut.done():
                fut.set_result(m)
        elif m.get("type") == "state":
            self.state = m
            self.states.append(m)
            if self._changed is not None:
                self._changed.set()
            if self.on_state is not None:
                self.on_state(self, m)

    async def _request(self, message: dict, timeout: float) -> dict:
        import asyncio
        import json

        self._rids += 1
        rid = f"r{self._rids}"
        fut = asyncio.get_running_loop().create_future()
        self._replies[rid] = fut
        await self.ws.send(json.dumps({**message, "rid": rid}))
        return await asyncio.wait_for(fut, timeout)

    async def answer(self, question_id: int, fields: dict, timeout: float = 30) -> dict:
        """Send one answer on the socket and return the reply. When the socket drops before the reply
        (or gives none in 5 s) the page POSTs the answer instead (live.js sendAnswer); so does this
        phone when it knows the answer URL (``answer_path``), else it raises ConnectionError."""
        import asyncio

        body = {k: v if isinstance(v, list) else [v] for k, v in fields.items()}
        if self.answer_path is None:
            return await self._request({"type": "answer", "question": question_id, **body}, timeout)
        try:
            if self.ws is None or self.ws.state.name != "OPEN":
                raise ConnectionError("the socket is down")
            return await self._request({"type": "answer", "question": question_id, **body}, min(timeout, 5))
        except (ConnectionError, asyncio.TimeoutError):
            from urllib.parse import urlsplit

            self.posted += 1
            status, reply = await http_post(urlsplit(self.origin).port, self.answer_path, self.cookie,
                                            {"question": question_id, **body}, timeout)
            return {**reply, "status": status}

    async def step(self, action: str, version: int | None = None, timeout: float = 30) -> dict:
        """The control page's step on its socket (version: the state the page shows, as the page
        sends it); the reply once it is committed."""
        return await self._request({"type": "step", "action": action, "version": version}, timeout)

    async def wait_for(self, pred, timeout: float = 30) -> dict:
        """Until the latest state satisfies ``pred``; that state."""
        import asyncio

        async def loop():
            while not (self.state is not None and pred(self.state)):
                self._changed.clear()
                await self._changed.wait()
            return self.state

        return await asyncio.wait_for(loop(), timeout)

    async def close(self) -> None:
        self._closing = True
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            self._task.cancel()
