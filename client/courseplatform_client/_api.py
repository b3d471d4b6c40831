"""HTTP calls to the course site's documented API (/api/openapi.json), standard library only.

Every failure a student can meet becomes a ``ClientError`` with one clear sentence (and an exit
code for the terminal): a refused or expired token, a closed assignment, the queue limit, a file
that is too big, the server unreachable, an unexpected answer.
"""
from __future__ import annotations

import json
import mimetypes
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid

from ._text import clean_line

EXIT_OK, EXIT_ERROR_STATE, EXIT_REFUSED, EXIT_SERVER = 0, 1, 2, 3


class ClientError(Exception):
    """A problem to report to the student in one line (never a traceback)."""

    def __init__(self, message, exit_code=EXIT_SERVER, status=None, code=None):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.status = status
        self.code = code


def _detail(raw):
    try:
        data = json.loads(raw)
    except ValueError:
        return "", None
    if isinstance(data, dict):
        detail = data.get("detail")
        if isinstance(detail, list):  # validation errors: [{"msg": ...}, ...]
            detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail[:3])
        return clean_line(detail or ""), data.get("code")
    return "", None


class Api:
    def __init__(self, server, token, timeout=60.0):
        self.server = normalise_server(server)
        self.token = token
        self.timeout = timeout

    def url(self, path):
        return self.server + "/api" + path

    def _request(self, method, path, body=None, content_type=None):
        req = urllib.request.Request(self.url(path), data=body, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", "courseplatform-client")
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read().decode("utf-8", "replace")
            except OSError:
                raw = ""
            raise self._http_error(exc.code, raw) from None
        except (ConnectionResetError, BrokenPipeError) as exc:
            if body is not None and len(body) > 1024 * 1024:
                raise ClientError("The server closed the connection while receiving the file: it is probably "
                                  "larger than the site accepts.", EXIT_REFUSED, 413, "too_large") from None
            raise self._unreachable(exc) from None
        except (urllib.error.URLError, socket.timeout, OSError) as exc:
            raise self._unreachable(exc) from None
        try:
            return json.loads(raw.decode("utf-8") or "null")
        except ValueError:
            raise ClientError("The server's answer is not the course API (not JSON): is %s the course site?"
                              % clean_line(self.server), EXIT_SERVER) from None

    def _unreachable(self, exc):
        reason = getattr(exc, "reason", None) or exc
        return ClientError("Cannot reach %s (%s). Check the address and your connection, then try again."
                           % (clean_line(self.server), clean_line(str(reason) or type(exc).__name__)), EXIT_SERVER)

    def _http_error(self, status, raw):
        detail, code = _detail(raw)
        if status == 401:
            return ClientError("The site did not accept your token: it is expired, revoked or mistyped. Create a new "
                               "one on %s/api/profile/ and log in again." % clean_line(self.server),
                               EXIT_REFUSED, status, "token")
        if status == 404:
            return ClientError(detail if detail and detail != "Not Found" else
                               "Not found: check the name (COURSE/ASSIGNMENT, e.g. llms/attention) and that you "
                               "are enrolled in the course.", EXIT_REFUSED, status, code)
        if status == 413:
            return ClientError(detail or "The file is larger than the site accepts.", EXIT_REFUSED, status, "too_large")
        if status == 429:
            return ClientError(detail or "Too many requests: wait a few minutes and try again.", EXIT_REFUSED,
                               status, code or "rate_limited")
        if status >= 500:
            return ClientError("The site had a problem (HTTP %d); try again in a minute." % status, EXIT_SERVER,
                               status, code)
        return ClientError(detail or ("The site refused the request (HTTP %d)." % status), EXIT_REFUSED, status, code)

    def get(self, path):
        return self._request("GET", path)

    def upload(self, path, filename, data):
        boundary = "----courseplatform" + uuid.uuid4().hex
        safe_name = "".join(ch for ch in filename if ch.isprintable() and ch not in '"\\/') or "upload"
        ctype = mimetypes.guess_type(safe_name)[0] or "application/octet-stream"
        head = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                "Content-Type: %s\r\n\r\n" % (boundary, safe_name, ctype)).encode("utf-8")
        body = head + data + ("\r\n--%s--\r\n" % boundary).encode("ascii")
        return self._request("POST", path, body, "multipart/form-data; boundary=" + boundary)

    # --- the calls the client makes ---

    def me(self):
        return self.get("/me")

    def assignments(self, course):
        return self.get("/courses/%s/assignments" % urllib.parse.quote(course, safe=""))

    def submit(self, course, slug, filename, data):
        return self.upload("/courses/%s/assignments/%s/submissions"
                           % (urllib.parse.quote(course, safe=""), urllib.parse.quote(slug, safe="")), filename, data)

    def check(self, course, slug, filename, data):
        return self.upload("/courses/%s/assignments/%s/checks"
                           % (urllib.parse.quote(course, safe=""), urllib.parse.quote(slug, safe="")), filename, data)

    def submission(self, submission_id):
        return self.get("/submissions/%d" % int(submission_id))


def normalise_server(server):
    server = (server or "").strip().rstrip("/")
    if server.endswith("/api"):
        server = server[:-4]
    if server and "://" not in server:
        server = "https://" + server
    parts = urllib.parse.urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientError("%r is not a web address: give the course site, e.g. https://courses.example.org"
                          % clean_line(server), EXIT_REFUSED)
    return server


def split_assignment(name):
    course, sep, slug = (name or "").strip().strip("/").partition("/")
    if not sep or not course or not slug or "/" in slug:
        raise ClientError("Name the assignment as COURSE/ASSIGNMENT, e.g. llms/attention (got %r)."
                          % clean_line(str(name)), EXIT_REFUSED)
    return course, slug
