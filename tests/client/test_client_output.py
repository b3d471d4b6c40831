"""What the client shows: control characters from the server never reach a terminal, HTML is
escaped, hidden tests are points only; refusals are one line with the right exit code."""
from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "client"))
from courseplatform_client import _render, cli  # noqa: E402
from courseplatform_client._text import clean_text  # noqa: E402

HOSTILE = {
    "id": 1, "course": "llms", "assignment": "tiny", "attempt": 2, "filename": "a\x1b[2Jb.py", "state": "graded",
    "final": True, "score": 4, "max_score": 10, "url": "http://x/\x1b]0;title\x07",
    "message": "done \x1b[31mred\x1b[0m \x9b2J \u202egnp.exe\r\nnext <script>alert(1)</script>",
    "notes": ["note \x07bell"],
    "tests": [
        {"name": "visible <b>one</b> \x1b[1A", "score": 4, "max_score": 6, "status": "failed",
         "message": "expected 6\x1b[K got <img src=x onerror=alert(1)>", "visible": True, "redacted": False},
        {"name": "Hidden test 1", "score": 0, "max_score": 4, "status": "failed", "message": "", "visible": False,
         "redacted": True},
    ],
}


def test_terminal_text_has_no_control_characters():
    out = _render.text(HOSTILE)
    assert not any(ord(c) < 32 and c != "\n" or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in out)
    assert "\\x1b[31mred" in out and "\\x9b2J" in out and "\\u202e" in out
    assert "score 4 / 10" in out and "Hidden test 1" in out and "(hidden)" in out
    assert "expected 6" in out


def test_notebook_html_is_escaped():
    html = _render.html_table(HOSTILE)
    assert "<script>" not in html and "<img" not in html and "<b>one</b>" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;one&lt;/b&gt;" in html and "\x1b" not in html
    assert html.count('class="cp-test"') == 2 and "(hidden)" in html
    assert 'href="http://x/' in html  # a link only for http(s) URLs, escaped
    assert "javascript:" not in _render.html_table(dict(HOSTILE, url="javascript:alert(1)")).split("href=")[-1][:40] \
        or "href=" not in _render.html_table(dict(HOSTILE, url="javascript:alert(1)"))


def test_clean_text_keeps_newlines_and_printable_unicode():
    assert clean_text("ä ö ß ∑ 😀\nline2\ttab") == "ä ö ß ∑ 😀\nline2    tab"


@pytest.mark.django_db(transaction=True)
def test_terminal_refusals_are_one_line_with_exit_codes(live_server, course, student, pack_dir, tmp_path, settings):
    from courseplatform.submissions.models import ApiToken, Submission
    from courseplatform.submissions.sync import sync_pack

    sync_pack(course, pack_dir)
    key = ApiToken.issue(student)[1]
    big = tmp_path / "tiny.py"
    big.write_text("x = 1\n" * 40000)  # 240 KB; the limit here is 64 KiB

    def run(*argv):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(list(argv))
        return code, out.getvalue(), err.getvalue()

    code, out, err = run("submit", "llms/tiny", str(big), "--server", live_server.url, "--token", key)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "larger" in err, err
    code, out, err = run("check", "llms/tiny", str(big), "--server", live_server.url, "--token", key)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "larger" in err, err
    code, out, err = run("submit", "llms/nope", str(big), "--server", live_server.url, "--token", key)
    assert code == 2 and len(err.strip().splitlines()) == 1 and ("Not found" in err or "No " in err), err
    code, out, err = run("submit", "llms/tiny", str(big), "--server", "http://127.0.0.1:9", "--token", key)
    assert code == 3 and err.startswith("courseplatform: Cannot reach http://127.0.0.1:9") and "Traceback" not in err
    code, out, err = run("submit", "tiny", str(big), "--server", live_server.url, "--token", key)
    assert code == 2 and "COURSE/ASSIGNMENT" in err
    assert not Submission.objects.exists()


def test_login_without_a_terminal_says_how_to_give_the_token(monkeypatch, capsys):
    """getpass cannot ask (no terminal, as under nbclient or CI): one line, no traceback, nothing kept."""
    import courseplatform_client as cp

    monkeypatch.delenv("COURSEPLATFORM_TOKEN", raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt: (_ for _ in ()).throw(EOFError("no input")))
    assert cp.login("http://127.0.0.1:9") is None
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "courseplatform: Cannot ask for the token here (EOFError): set the environment variable "
        "COURSEPLATFORM_TOKEN instead."]
    assert cp._SESSION["token"] is None
    # Without a login, a submit says what to do, in one line.
    monkeypatch.delenv("COURSEPLATFORM_SERVER", raising=False)
    assert cp.submit("llms/tiny", __file__) is None
    assert capsys.readouterr().err.strip().splitlines() == [
        'courseplatform: Log in first: cp.login("https://<course site>") (or set COURSEPLATFORM_SERVER).']


def test_a_notebook_with_an_unguarded_client_import_is_refused_before_upload(tmp_path, monkeypatch, capsys):
    """The grader has no client: `import courseplatform_client` at a cell's top level would fail the
    whole grade, so the client refuses to send such a notebook (no attempt used); the starter's
    guarded form (try/except ImportError) is accepted."""
    import json

    import courseplatform_client as cp
    from courseplatform_client._notebook import unguarded_client_import

    def nb(*sources):
        return json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                      "source": s} for s in sources], "metadata": {}, "nbformat": 4,
                           "nbformat_minor": 5}).encode()

    bad = nb("%pip install -q http://x/y.whl", "def f():\n    pass\n", "import courseplatform_client as cp\ncp.login('x')")
    assert unguarded_client_import(bad) == 3
    assert unguarded_client_import(nb("from courseplatform_client import submit")) == 1
    guarded = nb("try:\n    import courseplatform_client as cp\nexcept ImportError:\n    cp = None\nif cp:\n    cp.check('a/b')")
    assert unguarded_client_import(guarded) is None
    assert unguarded_client_import(b"not json") is None
    path = tmp_path / "work.ipynb"
    path.write_bytes(bad)
    # The refusal comes before any network call: the server below does not exist.
    monkeypatch.setenv("COURSEPLATFORM_SERVER", "http://127.0.0.1:9")
    monkeypatch.setenv("COURSEPLATFORM_TOKEN", "cp_x_y")
    assert cp.submit("llms/tiny", str(path)) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("courseplatform: Cell 3 imports courseplatform_client outside a try:")
    path.write_bytes(guarded)
    assert cp.submit("llms/tiny", str(path)) is None
    assert "Cannot reach http://127.0.0.1:9" in capsys.readouterr().err


def test_waiting_shows_where_the_submission_stands_in_the_queue(capsys):
    """The API's queue line (position, estimated start and finish) is what a waiting client prints,
    in a terminal and in a notebook's table; control characters in it are neutralised."""
    import courseplatform_client as cp

    sub = {"state": "queued", "assignment": "attention",
           "queue": {"position": 3, "text": "Position 3 in the gpu queue; starts in about 4 min\x1b[2J"}}
    out = cp._Output(rich=False)
    out.progress(sub)
    printed = capsys.readouterr().out
    assert "Position 3 in the gpu queue; starts in about 4 min" in printed and "\x1b" not in printed
    html = _render.html_table(sub, "Position 3 in the gpu queue")
    assert "Position 3 in the gpu queue" in html


@pytest.mark.parametrize("in_a_kernel", [True, False])
def test_a_check_without_a_detectable_notebook_never_advises_submit(monkeypatch, capsys, in_a_kernel):
    """Issue 28: a failed check() advised submit(...), which spends an attempt. The advice names
    the function that was called."""
    import courseplatform_client as cp
    from courseplatform_client import _notebook

    monkeypatch.delenv("COURSEPLATFORM_NOTEBOOK", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(_notebook, "_colab_message", lambda: None)
    monkeypatch.setattr(_notebook, "_session_path", lambda: None)
    monkeypatch.setattr(_notebook, "_server_sessions_path", lambda: None)
    monkeypatch.setattr(_notebook, "in_kernel", lambda: in_a_kernel)
    monkeypatch.setattr(cp, "_api", lambda *a, **k: object())
    code, sub = cp.run("check", "llms/attention", out=cp._Output(rich=False))
    err = capsys.readouterr()
    text = err.out + err.err
    assert code == 2 and sub is None
    assert "check(" in text and "submit" not in text, text
    code, _ = cp.run("submit", "llms/attention", out=cp._Output(rich=False))
    err = capsys.readouterr()
    assert "submit(" in err.out + err.err
