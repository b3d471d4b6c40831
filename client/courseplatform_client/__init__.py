"""courseplatform client: check and submit assignments from Colab, Jupyter or a terminal.

    %pip install -q https://<site>/client/courseplatform_client-<version>-py3-none-any.whl
    import courseplatform_client as cp
    cp.login("https://<site>")          # asks for your personal API token (never echoed)
    cp.check("llms/attention")          # visible tests only, not an attempt
    cp.submit("llms/attention")         # this notebook; or cp.submit("llms/attention", "attention.py")

Standard library only (Python >= 3.9). The token is asked with getpass, or read from the
environment variable COURSEPLATFORM_TOKEN; it is kept in this process only (memory and its
environment), never written to the notebook or to disk. Problems are reported in one line,
never as a traceback. See the package README for how "this notebook" is found.
"""
from __future__ import annotations

import getpass
import os
import sys
import time

from . import _render
from ._api import (EXIT_ERROR_STATE, EXIT_OK, EXIT_REFUSED, EXIT_SERVER, Api, ClientError, normalise_server,
                   split_assignment)
from ._notebook import current_notebook, in_kernel, unguarded_client_import
from ._text import clean_line

__version__ = "0.1.0"
__all__ = ["login", "logout", "check", "submit", "assignments", "ClientError", "Feedback", "__version__"]

_SESSION = {"server": None, "token": None, "user": None}
TOKEN_ENV, SERVER_ENV = "COURSEPLATFORM_TOKEN", "COURSEPLATFORM_SERVER"


# --- output: rich in a notebook kernel, text elsewhere ---------------------------------------


class Feedback(dict):
    """The feedback of a submission or check: a dict as in the API's FeedbackOut. Its table is
    already shown in the cell's output, so IPython does not echo the dict again."""

    def _ipython_display_(self):
        return None


class _Output:
    """One live output area: an IPython display handle in a notebook, printed lines elsewhere."""

    def __init__(self, rich=None):
        self.rich = in_kernel() if rich is None else rich
        self.handle = None
        self.last_text = None

    def show_html(self, markup):
        from IPython.display import HTML, display  # type: ignore

        if self.handle is None:
            self.handle = display(HTML(markup), display_id=True)
        else:
            self.handle.update(HTML(markup))

    def progress(self, sub, note=None):
        if note is None:  # where the submission stands in the queue (position, estimated start/finish)
            queue = sub.get("queue")
            if isinstance(queue, dict) and queue.get("text"):
                note = queue["text"]
        if self.rich:
            self.show_html(_render.html_table(sub, note))
            return
        line = "  ... %s" % clean_line(sub.get("state"), 20) + ((" (%s)" % clean_line(note, 200)) if note else "")
        if line != self.last_text:
            self.last_text = line
            print(line, flush=True)

    def info(self, message):
        if self.rich:
            self.show_html('<div class="courseplatform-info" style="font-family:sans-serif">%s</div>'
                           % _render.html.escape(clean_line(message, 2000)))
        else:
            print(clean_line(message, 2000), flush=True)

    def result(self, sub):
        if self.rich:
            self.show_html(_render.html_table(sub))
        else:
            sys.stdout.write(_render.text(sub))
            sys.stdout.flush()

    def error(self, message):
        if self.rich:
            self.show_html(_render.html_error(message))
        else:
            print("courseplatform: " + clean_line(message, 2000), file=sys.stderr, flush=True)


# --- session -----------------------------------------------------------------------------------


def _api(server=None, token=None):
    server = server or _SESSION["server"] or os.environ.get(SERVER_ENV)
    token = token or _SESSION["token"] or os.environ.get(TOKEN_ENV)
    if not server:
        raise ClientError("Log in first: cp.login(\"https://<course site>\") (or set COURSEPLATFORM_SERVER).",
                          EXIT_REFUSED)
    if not token:
        raise ClientError("No API token: run cp.login(\"%s\") (or set COURSEPLATFORM_TOKEN)." % clean_line(server),
                          EXIT_REFUSED)
    return Api(server, token)


def login(server=None):
    """Remember the course site and your personal API token for this session.

    The token comes from COURSEPLATFORM_TOKEN if set, else it is asked with getpass (not echoed,
    not stored in the notebook). Returns your user name, or None if the login failed."""
    out = _Output()
    try:
        server = normalise_server(server or os.environ.get(SERVER_ENV) or "")
        token = os.environ.get(TOKEN_ENV)
        source = "from " + TOKEN_ENV
        if not token:
            try:
                token = getpass.getpass("Personal API token for %s (create one at %s/api/profile/): " % (server, server))
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. IPython's StdinNotImplementedError: no input here
                raise ClientError("Cannot ask for the token here (%s): set the environment variable %s instead."
                                  % (type(exc).__name__, TOKEN_ENV), EXIT_REFUSED) from None
            source = "entered"
        token = (token or "").strip()
        if not token:
            raise ClientError("No token entered.", EXIT_REFUSED)
        me = Api(server, token).me()
    except ClientError as exc:
        out.error(exc.message)
        return None
    except KeyboardInterrupt:
        out.error("Login cancelled.")
        return None
    _SESSION.update(server=server, token=token, user=me.get("username"))
    os.environ[SERVER_ENV] = server  # for `!courseplatform ...` shell lines of this session
    os.environ[TOKEN_ENV] = token
    out.info("Logged in to %s as %s (token %s; kept for this session only)."
             % (server, clean_line(me.get("username"), 150), source))
    return _SESSION["user"]


def logout():
    """Forget the token (this process and its environment)."""
    _SESSION.update(server=None, token=None, user=None)
    os.environ.pop(TOKEN_ENV, None)


# --- submitting and checking -----------------------------------------------------------------


def _read(assignment_slug, path, action="submit"):
    if path is None:
        return current_notebook(assignment_slug + ".ipynb", action)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ClientError("%s is not a file." % clean_line(path), EXIT_REFUSED)
    with open(path, "rb") as fh:
        return os.path.basename(path), fh.read(), path


def run(kind, assignment, path=None, wait=600.0, out=None, server=None, token=None):
    """Upload (kind "submit" or "check"), then follow the grading until it ends or `wait` seconds
    pass. Returns (exit code, the last state of the submission or None)."""
    out = out or _Output()
    sub = None
    try:
        api = _api(server, token)
        course, slug = split_assignment(assignment)
        filename, data, where = _read(slug, path, kind)
        if filename.lower().endswith(".ipynb"):
            cell = unguarded_client_import(data)
            if cell is not None:
                raise ClientError(
                    "Cell %d imports courseplatform_client outside a try: block, and the grader has no client, so "
                    "this notebook could not be graded. Write it as in the starter's last cell: try: import "
                    "courseplatform_client as cp / except ImportError: cp = None, then: if cp: cp.%s(...)."
                    % (cell, kind), EXIT_REFUSED)
        label = "Checking" if kind == "check" else "Submitting"
        out.info("%s %s (%s, %d bytes) to %s/%s ..." % (label, filename, where, len(data), course, slug))
        sub = (api.check if kind == "check" else api.submit)(course, slug, filename, data)
        if kind == "check":
            sub["kind_label"] = "check"
        if wait is None or wait <= 0:
            out.progress(sub, "not waiting; see " + clean_line(sub.get("url"), 500))
            return EXIT_OK, sub
        deadline = time.monotonic() + float(wait)
        delay = 0.5
        out.progress(sub)
        while not sub.get("final"):
            if time.monotonic() > deadline:
                out.progress(sub, "still %s after %g s; the result will be on %s"
                             % (clean_line(sub.get("state"), 20), float(wait), clean_line(sub.get("url"), 500)))
                return EXIT_SERVER, sub
            time.sleep(delay)
            delay = min(2.0, delay * 1.3)
            fresh = api.submission(sub["id"])
            if kind == "check":
                fresh["kind_label"] = "check"
            sub = fresh
            out.progress(sub)
        out.result(sub)
        return (EXIT_OK if sub.get("state") == "graded" else EXIT_ERROR_STATE), sub
    except ClientError as exc:
        out.error(exc.message)
        return exc.exit_code, sub
    except KeyboardInterrupt:
        if sub is not None:
            out.error("Stopped waiting. The %s goes on on the site: %s"
                      % ("check" if kind == "check" else "submission", clean_line(sub.get("url"), 500)))
        else:
            out.error("Cancelled before anything was sent.")
        return EXIT_SERVER, sub


def _feedback(sub):
    return None if sub is None else Feedback(sub)


def submit(assignment, path=None, wait=600.0):
    """Submit this notebook (or the file at `path`) as an attempt; show the feedback as it arrives.
    Returns the feedback (a dict as in the API's FeedbackOut), or None if nothing was submitted."""
    return _feedback(run("submit", assignment, path, wait)[1])


def check(assignment, path=None, wait=600.0):
    """Run the visible tests only on this notebook (or the file at `path`): not an attempt, limited
    per student (a few per 10 minutes). Shows the same table as submit(). Returns the feedback."""
    return _feedback(run("check", assignment, path, wait)[1])


def assignments(course):
    """The assignments of a course with your deadline and attempts left (a list of dicts)."""
    out = _Output(rich=False)
    try:
        return _api().assignments(course)
    except ClientError as exc:
        out.error(exc.message)
        return None
