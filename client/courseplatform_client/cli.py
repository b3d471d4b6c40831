"""The `courseplatform` command: submit or check from a terminal and print the feedback.

    courseplatform submit llms/attention attention.py [--server URL] [--token T] [--no-wait] [--wait S]
    courseplatform check llms/attention attention.py       (visible tests only, not an attempt)
    courseplatform assignments llms
    python -m courseplatform_client submit ...

The token is a personal API token from the site's /api/profile/ page; it can also come from
COURSEPLATFORM_TOKEN, and the server from COURSEPLATFORM_SERVER (default http://127.0.0.1:8000).
Everything the server sends is printed with control characters escaped.

Exit codes: 0 graded; 1 the submission ended in `error` (the grader could not grade it);
2 usage or a refused upload (bad file, deadline, attempts, token, rate limit...); 3 server or
network problem, or timeout while waiting.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import _Output, _render, run
from ._api import EXIT_OK, EXIT_REFUSED, Api, ClientError
from ._text import clean_line

DEFAULT_SERVER = "http://127.0.0.1:8000"


def _client(args):
    token = args.token or os.environ.get("COURSEPLATFORM_TOKEN")
    if not token:
        raise ClientError("no API token: pass --token or set COURSEPLATFORM_TOKEN (create one on /api/profile/)",
                          EXIT_REFUSED)
    return Api(args.server, token)


def cmd_send(args):
    api = _client(args)
    code, _ = run(args.command, args.assignment, args.file, 0 if args.no_wait else args.wait,
                  out=_Output(rich=False), server=api.server, token=api.token)
    return code


def cmd_assignments(args):
    rows = _client(args).assignments(args.course)
    for a in rows:
        due = _render.when(a["your_due_at"], a.get("time_zone")) if a.get("your_due_at") else "no deadline"
        left = "unlimited" if a.get("attempts_left") is None else a["attempts_left"]
        status = "open" if a.get("can_submit") else "closed: " + clean_line(a.get("reason"), 300)
        print("%s/%-24s %-40s due %s  attempts left %s  (%s)" % (
            clean_line(args.course, 100), clean_line(a.get("slug"), 100), clean_line(a.get("title"), 40), due, left,
            status))
    return EXIT_OK


def build_parser():
    parser = argparse.ArgumentParser(prog="courseplatform", description="Submit and check courseplatform assignments.")
    parser.add_argument("--server", default=os.environ.get("COURSEPLATFORM_SERVER", DEFAULT_SERVER),
                        help="course site (env COURSEPLATFORM_SERVER; default %(default)s)")
    parser.add_argument("--token", default=None, help="personal API token (env COURSEPLATFORM_TOKEN)")
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    for name, help_text in (("submit", "upload a file as an attempt, wait for grading, print the feedback"),
                            ("check", "run the visible tests on a file (not an attempt) and print the result")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("assignment", help="COURSE/ASSIGNMENT, e.g. llms/attention")
        p.add_argument("file", help=".py, .ipynb or .zip")
        p.add_argument("--no-wait", action="store_true", help="return once the upload is accepted")
        p.add_argument("--wait", type=float, default=600, help="seconds to wait for the result (default %(default)s)")
        p.set_defaults(func=cmd_send)
    p = sub.add_parser("assignments", help="list a course's assignments with deadlines and attempts left")
    p.add_argument("course")
    p.set_defaults(func=cmd_assignments)
    for p in sub.choices.values():  # accept --server/--token after the subcommand too
        p.add_argument("--server", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--token", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ClientError as exc:
        print("courseplatform: " + clean_line(exc.message, 2000), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("courseplatform: interrupted", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
