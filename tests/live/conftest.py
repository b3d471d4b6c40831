"""Live quizzes: a course with a bank of every live question type, a lecture session, a started
live session, and (for the push tests) the real ASGI server (uvicorn) against the test database
and the real Redis channel layer, in a process of its own."""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from django.utils import timezone

from bench._common import free_port

ROOT = Path(__file__).resolve().parents[2]

LIVE_BANK = r'''
[quiz]
title = "Lecture 5 check"
slug = "lecture5"

[[question]]
id = "heads"
type = "single"
text = "How many heads does BERT-base have?"
choices = [
  { text = "8" },
  { text = "12", correct = true },
  { text = "16" },
]

[[question]]
id = "encoders"
type = "multiple"
text = "Which models are encoder-only?"
choices = [
  { text = "BERT", correct = true },
  { text = "GPT-2" },
  { text = "RoBERTa", correct = true },
]

[[question]]
id = "tf"
type = "truefalse"
text = "Layer norm normalises over the feature dimension."
answer = true

[[question]]
id = "dk"
type = "numeric"
text = "Head dimension of BERT-base (768 / 12)?"
answer = 64
tolerance = 0.5

[[question]]
id = "scaled"
type = "numeric"
text = "A score of {{s}} is divided by sqrt(d_k) with d_k = 4. Result?"
answer = "s / 2"
tolerance = 0.01
[question.params]
s = { int = [10, 99] }

[[question]]
id = "cls"
type = "short"
text = "Which special token starts every BERT input?"
answers = ["[CLS]", "CLS"]
'''


@pytest.fixture
def lecture(course):
    from courseplatform.courses.models import LectureSession

    return LectureSession.objects.create(course=course, date=timezone.localdate(), title="Lecture 5")


@pytest.fixture
def live_quiz(course):
    from courseplatform.quizzes import bank
    from courseplatform.quizzes.sync import apply_bank

    quiz = apply_bank(course, bank.parse_bank(LIVE_BANK, where="live.toml"), source_path="quizzes/live.toml")["quiz_obj"]
    return quiz


@pytest.fixture
def live(course, lecture, live_quiz, instructor):
    from courseplatform.live import services

    return services.start(course, lecture, list(live_quiz.active_questions()), title="Lecture 5 check",
                          user=instructor, quiz=live_quiz)


@pytest.fixture(autouse=True)
def _own_channel_prefix(settings):
    """This run's channel layer keys on the shared Redis: never another run's groups."""
    from channels.layers import channel_layers

    from tests.conftest import RUN_ID

    prefix = f"cp-live-test-{RUN_ID}"
    layers = {k: dict(v) for k, v in settings.CHANNEL_LAYERS.items()}
    if "CONFIG" in layers["default"]:
        layers["default"]["CONFIG"] = {**layers["default"]["CONFIG"], "prefix": prefix}
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    os.environ["CHANNEL_LAYER_PREFIX"] = prefix
    yield
    channel_layers.backends.clear()
    from courseplatform.live import push

    push.close_db_connections()


def run_async(coro):
    """asyncio.run in a thread of its own: the browser tests' Playwright (sync API) keeps an event
    loop running in the main thread for the whole session."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class BackgroundLoop:
    """An event loop in a thread for clients that must stay connected (and reconnect) while the test
    does other things, browsers included: ``bg.run(coro)`` waits for one coroutine there."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class AsgiServer:
    """`python -m uvicorn courseplatform.asgi:application` on the test database: start, kill, restart."""

    def __init__(self, tmp_path: Path):
        from django.conf import settings

        db = settings.DATABASES["default"]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "DEBUG": "1", "PYTHONUNBUFFERED": "1",
                    "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
                    "DB_CONN_MAX_AGE": "0", "COURSEPLATFORM_VAR": str(tmp_path / "var")}
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"].startswith("channels_redis"), \
            "the push tests run against the real Redis channel layer (CELERY_BROKER_URL=redis://...)"
        self.log_path = tmp_path / "uvicorn.log"
        self.proc = None

    def start(self) -> None:
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "courseplatform.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--ws", "websockets", "--lifespan", "off", "--no-access-log"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
            try:
                with urllib.request.urlopen(self.url + "/accounts/login/", timeout=5):
                    return
            except OSError:
                time.sleep(0.3)
        raise AssertionError("uvicorn did not answer: " + self.log_path.read_text()[-3000:])

    def kill(self) -> None:
        """A crash, not a shutdown: the sockets drop without a close frame."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def asgi_server(transactional_db, tmp_path):
    server = AsgiServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def session_cookie():
    """session_cookie(user) -> the value of a logged-in session cookie (stored in the database)."""
    from django.test import Client

    def make(user) -> str:
        c = Client()
        c.force_login(user)
        return c.cookies["sessionid"].value

    return make
