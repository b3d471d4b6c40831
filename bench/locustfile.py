"""Locust scenario of the in-lecture quiz: every simulated user is one student of the bench course.

Run by bench/quiz_load.py (which prepares the database, starts gunicorn and passes the settings in
the environment); can also be run by hand against a prepared server:

    BENCH_COURSE=bench BENCH_QUIZ=bench-quiz BENCH_USERS=bench BENCH_PASSWORD=... BENCH_STUDENTS=300 \\
    BENCH_LATENCY_OUT=/tmp/lat.json locust -f bench/locustfile.py --headless -u 300 -r 10 \\
        --run-time 120s --host http://127.0.0.1:8000

A student logs in (the real login form, the real password hasher), opens the quiz page, starts the
attempt, opens the attempt page, then answers its questions in rounds (one autosave per question,
a think time between them, answers changed each round, as a student revising does) and finally
submits and opens the result. Every request's latency is recorded exactly (not Locust's rounded
percentile buckets) and written to BENCH_LATENCY_OUT as JSON when the test stops.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import re
from collections import defaultdict
from urllib.parse import urlencode, urlsplit

from locust import HttpUser, between, events, task
from locust.exception import StopUser

COURSE = os.environ.get("BENCH_COURSE", "bench")
QUIZ = os.environ.get("BENCH_QUIZ", "bench-quiz")
USER_PREFIX = os.environ.get("BENCH_USERS", "bench")
PASSWORD = os.environ.get("BENCH_PASSWORD", "bench-password")
N_STUDENTS = int(os.environ.get("BENCH_STUDENTS", "300"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
THINK_MIN = float(os.environ.get("BENCH_THINK_MIN", "4"))
THINK_MAX = float(os.environ.get("BENCH_THINK_MAX", "10"))
OUT = os.environ.get("BENCH_LATENCY_OUT", "")

FIELDSET = re.compile(r'<fieldset[^>]*hx-post="([^"]+)"[^>]*hx-params="(q\d+)"(.*?)</fieldset>', re.S)
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

_next_student = itertools.count()
latencies: dict[str, list[float]] = defaultdict(list)
errors: list[str] = []


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, **kwargs):
    if exception is not None:
        errors.append(f"{name}: {exception}")
    else:
        latencies[name].append(response_time)


@events.quitting.add_listener
def _write(environment, **kwargs):
    if OUT:
        with open(OUT, "w") as fh:
            json.dump({"latencies": latencies, "errors": errors,
                       "finished_students": finished[0]}, fh)


finished = [0]


def answer_for(field: str, chunk: str, rnd: random.Random) -> str:
    """A plausible answer from the attempt page: a choice, choices, true/false, a number or a text."""
    radios = re.findall(rf'type="radio" name="{field}" value="([^"]+)"', chunk)
    boxes = re.findall(rf'type="checkbox" name="{field}" value="([^"]+)"', chunk)
    if radios:
        return urlencode({field: rnd.choice(radios)})
    if boxes:
        picked = [v for v in boxes if rnd.random() < 0.5] or boxes[:1]
        return urlencode([(field, "")] + [(field, v) for v in picked])
    if 'inputmode="decimal"' in chunk:
        return urlencode({field: f"{rnd.uniform(0, 2):.3f}"})
    if 'type="text"' in chunk:
        return urlencode({field: rnd.choice(["layer norm", "softmax", "attention"])})
    return urlencode({field: "x"})


class Student(HttpUser):
    wait_time = between(THINK_MIN, THINK_MAX)

    def on_start(self):
        self.index = next(_next_student)
        if self.index >= N_STUDENTS:
            raise StopUser()
        self.rnd = random.Random(self.index)
        self.base = f"/courses/{COURSE}/quizzes"
        self.questions: list[tuple[str, str, str]] = []
        self.round = 0
        self.attempt = None
        self.login()
        self.open_quiz()

    def login(self):
        with self.client.get("/accounts/login/", name="login_page", catch_response=True) as r:
            m = CSRF_INPUT.search(r.text)
            if r.status_code != 200 or not m:
                r.failure(f"login page {r.status_code}")
                raise StopUser()
        with self.client.post("/accounts/login/", name="login", allow_redirects=False, catch_response=True,
                              data={"username": f"{USER_PREFIX}{self.index:04d}", "password": PASSWORD,
                                    "csrfmiddlewaretoken": m.group(1)},
                              headers={"Referer": self.client.base_url + "/accounts/login/"}) as r:
            if r.status_code != 302:
                r.failure(f"login -> {r.status_code}")
                raise StopUser()

    def _post(self, path, name, data, expect=200, headers=None):
        h = {"X-CSRFToken": self.client.cookies.get("csrftoken", ""), "Referer": self.client.base_url + path}
        h.update(headers or {})
        return self.client.post(path, name=name, data=data, headers=h, allow_redirects=False, catch_response=True)

    def open_quiz(self):
        with self.client.get(f"{self.base}/{QUIZ}/", name="quiz_page", catch_response=True) as r:
            if r.status_code != 200 or 'data-testid="start-quiz"' not in r.text:
                r.failure(f"quiz page {r.status_code} without a start button")
                raise StopUser()
        with self._post(f"{self.base}/{QUIZ}/start/", "start", {}) as r:
            m = re.search(r"/attempt/(\d+)/", r.headers.get("Location", ""))
            if r.status_code != 302 or not m:
                r.failure(f"start -> {r.status_code} {r.headers.get('Location')!r}")
                raise StopUser()
        self.attempt = m.group(1)
        with self.client.get(f"{self.base}/attempt/{self.attempt}/", name="attempt_page", catch_response=True) as r:
            self.questions = FIELDSET.findall(r.text)
            if r.status_code != 200 or not self.questions:
                r.failure(f"attempt page {r.status_code} without questions")
                raise StopUser()
        self.pending = list(self.questions)

    @task
    def work(self):
        if self.pending:
            save_url, field, chunk = self.pending.pop(0)
            with self._post(urlsplit(save_url).path, "autosave", answer_for(field, chunk, self.rnd),
                            headers={"HX-Request": "true",
                                     "Content-Type": "application/x-www-form-urlencoded"}) as r:
                if r.status_code != 200 or "Saved" not in r.text:
                    r.failure(f"autosave {r.status_code}: {r.error or r.text[:120]}")
            return
        self.round += 1
        if self.round < ROUNDS:
            self.pending = list(self.questions)
            return
        with self._post(f"{self.base}/attempt/{self.attempt}/submit/", "submit", {}) as r:
            if r.status_code != 302:
                r.failure(f"submit -> {r.status_code}")
        with self.client.get(f"{self.base}/attempt/{self.attempt}/result/", name="result", catch_response=True) as r:
            if r.status_code != 200 or 'data-testid="score"' not in r.text:
                r.failure(f"result {r.status_code} without a score")
        finished[0] += 1
        raise StopUser()  # done: this student leaves (Locust does not replace a stopped user)
