"""courseplatform command line: submit from a terminal and wait for the feedback.

    courseplatform submit llms/attention attention.py [--server URL] [--token T]
    courseplatform assignments llms
    python -m courseplatform.cli submit llms/attention attention.py

The token is a personal API token from the profile page (/api/profile/); it can also come
from COURSEPLATFORM_TOKEN, and the server from COURSEPLATFORM_SERVER (default
http://127.0.0.1:8000). Standard library only, so it runs on any student's Python 3.10+.

Exit codes: 0 graded; 1 the submission ended in `error` (the grader could not grade it);
2 usage or a refused upload (bad file, deadline, attempts...); 3 server/network problem
or timeout while waiting.
"""
from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:8000"
EXIT_OK, EXIT_ERROR_STATE, EXIT_REFUSED, EXIT_SERVER = 0, 1, 2, 3


class ApiError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class Client:
    def __init__(self, server: str, token: str, timeout: float = 60):
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None):
        req = urllib.request.Request(self.server + "/api" + path, data=body, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode("utf-8") or "null")
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode("utf-8", "replace")
            try:
                detail = json.loads(raw).get("detail") or raw
            except (ValueError, AttributeError):
                detail = raw.strip()[:300] or exc.reason
            if exc.code == 401:
                detail = "the server did not accept the token (revoked or mistyped?). Create one on /api/profile/."
            raise ApiError(exc.code, str(detail)) from None

    def get(self, path: str):
        return self._request("GET", path)

    def upload(self, path: str, file: Path):
        boundary = "----courseplatform" + uuid.uuid4().hex
        ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        head = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file.name}\"\r\n"
            f"Content-Type: {ctype}\r\n\r\n"
        ).encode()
        body = head + file.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        return self._request("POST", path, body, f"multipart/form-data; boundary={boundary}")


def _fmt(x) -> str:
    if x is None:
        return "–"
    return f"{round(float(x), 2):g}"


def print_feedback(sub: dict, out=None) -> None:
    out = out or sys.stdout
    state = sub["state"]
    out.write(f"\n{sub['assignment']} attempt {sub['attempt']} ({sub['filename']}): {state.upper()}")
    if state == "graded":
        out.write(f"  score {_fmt(sub['score'])} / {_fmt(sub['max_score'])}")
    out.write("\n")
    if sub.get("message"):
        out.write(f"  {sub['message']}\n")
    for note in sub.get("notes") or []:
        out.write(f"  note: {note}\n")
    tests = sub.get("tests") or []
    if tests:
        width = min(60, max(len(t["name"]) for t in tests))
        out.write("\n")
        for t in tests:
            mark = {"passed": "PASS", "failed": "FAIL", "error": "ERR ", "timeout": "TIME"}.get(t["status"], t["status"][:4].upper())
            hidden = " (hidden)" if not t["visible"] else ""
            out.write(f"  {mark}  {t['name'][:width]:<{width}}  {_fmt(t['score']):>5} / {_fmt(t['max_score'])}{hidden}\n")
            if t.get("message") and t["status"] != "passed":
                for line in t["message"].splitlines()[:8]:
                    out.write(f"          {line}\n")
    out.write(f"\n  {sub['url']}\n")


def cmd_submit(args, client: Client) -> int:
    try:
        course, assignment = args.assignment.split("/", 1)
    except ValueError:
        print("error: name the assignment as COURSE/ASSIGNMENT, e.g. llms/attention", file=sys.stderr)
        return EXIT_REFUSED
    file = Path(args.file)
    if not file.is_file():
        print(f"error: {file} is not a file", file=sys.stderr)
        return EXIT_REFUSED
    try:
        sub = client.upload(f"/courses/{urllib.parse.quote(course)}/assignments/{urllib.parse.quote(assignment)}/submissions", file)
    except ApiError as exc:
        print(f"refused ({exc.status}): {exc.detail}", file=sys.stderr)
        return EXIT_REFUSED if exc.status < 500 else EXIT_SERVER
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: cannot reach {client.server}: {exc}", file=sys.stderr)
        return EXIT_SERVER
    print(f"Submitted {file.name} as attempt {sub['attempt']} (submission {sub['id']}); waiting for the grader…", flush=True)
    if args.no_wait:
        print(sub["url"])
        return EXIT_OK
    deadline = time.monotonic() + args.wait
    last_state = sub["state"]
    delay = 0.5
    while True:
        try:
            sub = client.get(f"/submissions/{sub['id']}")
        except ApiError as exc:
            print(f"error while waiting ({exc.status}): {exc.detail}", file=sys.stderr)
            return EXIT_SERVER
        except (urllib.error.URLError, OSError) as exc:
            print(f"error: lost the server: {exc}", file=sys.stderr)
            return EXIT_SERVER
        if sub["state"] != last_state:
            last_state = sub["state"]
            if not sub["final"]:
                print(f"  … {last_state}", flush=True)
        if sub["final"]:
            break
        if time.monotonic() > deadline:
            print(f"still {sub['state']} after {args.wait:g} s; see {sub['url']}", file=sys.stderr)
            return EXIT_SERVER
        time.sleep(delay)
        delay = min(2.0, delay * 1.3)
    print_feedback(sub)
    return EXIT_OK if sub["state"] == "graded" else EXIT_ERROR_STATE


def cmd_assignments(args, client: Client) -> int:
    try:
        rows = client.get(f"/courses/{urllib.parse.quote(args.course)}/assignments")
    except ApiError as exc:
        print(f"error ({exc.status}): {exc.detail}", file=sys.stderr)
        return EXIT_REFUSED if exc.status < 500 else EXIT_SERVER
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: cannot reach {client.server}: {exc}", file=sys.stderr)
        return EXIT_SERVER
    for a in rows:
        due = a["your_due_at"] or "no deadline"
        left = "unlimited" if a["attempts_left"] is None else a["attempts_left"]
        status = "open" if a["can_submit"] else f"closed: {a['reason']}"
        print(f"{args.course}/{a['slug']:<24} {a['title'][:40]:<40} due {due}  attempts left {left}  ({status})")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="courseplatform", description="Submit assignments to courseplatform from a terminal.")
    parser.add_argument("--server", default=os.environ.get("COURSEPLATFORM_SERVER", DEFAULT_SERVER),
                        help="server URL (env COURSEPLATFORM_SERVER; default %(default)s)")
    parser.add_argument("--token", default=None, help="personal API token (env COURSEPLATFORM_TOKEN)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit", help="upload a file, wait for grading, print the feedback")
    p.add_argument("assignment", help="COURSE/ASSIGNMENT, e.g. llms/attention")
    p.add_argument("file", help=".py, .ipynb or .zip")
    p.add_argument("--no-wait", action="store_true", help="return once the upload is accepted")
    p.add_argument("--wait", type=float, default=600, help="seconds to wait for the result (default %(default)s)")
    p.set_defaults(func=cmd_submit)
    p = sub.add_parser("assignments", help="list a course's assignments with deadlines and attempts left")
    p.add_argument("course")
    p.set_defaults(func=cmd_assignments)
    for p in sub.choices.values():  # accept --server/--token after the subcommand too
        p.add_argument("--server", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--token", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    token = args.token or os.environ.get("COURSEPLATFORM_TOKEN")
    if not token:
        print("error: no API token: pass --token or set COURSEPLATFORM_TOKEN (create one on /api/profile/)", file=sys.stderr)
        return EXIT_REFUSED
    return args.func(args, Client(args.server, token))


if __name__ == "__main__":
    sys.exit(main())
