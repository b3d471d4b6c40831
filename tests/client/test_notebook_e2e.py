"""End to end, with real tools: a live site (gunicorn + a Celery worker with the real engine), a
kernel venv without torch, and nbclient executing a student's notebook that installs the client
wheel from the site (%pip), logs in, checks, and submits itself. The feedback is read from the
executed notebook's outputs. The Colab path runs the same with a stand-in for Colab's front-end
module (google.colab._message) that answers 'get_ipynb' as Colab documents."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _build_starters():
    spec = importlib.util.spec_from_file_location("build_starters", ROOT / "scripts" / "build_starters.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def student_notebook(site: str, body: str, marker: str) -> dict:
    """What a student has: the generated starter cells around their code (a starter.py body with the
    marker comment on top), submit uncommented."""
    bs = _build_starters()
    nb = bs.build(f"# {marker}\n" + body, "llms/tiny", site=site)
    last = nb["cells"][-1]
    last["source"] = "".join(last["source"]).replace("# cp.submit(", "result = cp.submit(")
    return nb


# nbclient runs in a child process: its asyncio loop (and nest-asyncio's patches) must not stay in
# the test process, where the browser tests' Playwright sync API needs no running loop.
EXECUTE = """
import sys
import nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, kernel_name="cpclient", timeout=600, allow_errors=False,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


def execute(path: Path, kernel_env: dict, monkeypatch, **env) -> nbformat.NotebookNode:
    import os
    import subprocess
    import sys

    child = dict(os.environ)
    child.update({"JUPYTER_PATH": str(kernel_env["jupyter_path"]),
                  "PIP_NO_INDEX": "1",  # the wheel comes from the site, never from an index
                  "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    child.pop("PYTHONPATH", None)
    child.pop("JPY_SESSION_NAME", None)
    child.update({k: str(v) for k, v in env.items()})
    out = path.with_name(path.stem + ".executed.ipynb")
    r = subprocess.run([sys.executable, "-c", EXECUTE, str(path), str(path.parent), str(out)], env=child,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    return nbformat.read(str(out), as_version=4)


def html_outputs(cell) -> list[str]:
    return [o["data"]["text/html"] for o in cell.get("outputs", []) if "text/html" in o.get("data", {})]


def _setup(course, student, tmp_path):
    from cp_helpers import write_pack

    from courseplatform.submissions.models import ApiToken
    from courseplatform.submissions.sync import sync_pack

    a, _ = sync_pack(course, write_pack(tmp_path / "assignments"))
    return a, ApiToken.issue(student)[1]


def test_jupyter_notebook_installs_the_client_checks_and_submits_itself(site, kernel_env, course, student, tmp_path,
                                                                      monkeypatch):
    from courseplatform.submissions.models import Submission

    _, token = _setup(course, student, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    path = work / "tiny.ipynb"
    nbformat.write(nbformat.from_dict(student_notebook(site, "def double(x):\n    return 2 * x\n", "jupyter-7f3a")),
                   str(path))
    # Jupyter Server names the kernel's notebook in JPY_SESSION_NAME (ipykernel: __session__).
    nb = execute(path, kernel_env, monkeypatch, COURSEPLATFORM_TOKEN=token, JPY_SESSION_NAME=path)

    # The notebook installed the wheel from the site into the torch-free kernel venv.
    installed = list(Path(kernel_env["site"]).glob("courseplatform_client-*.dist-info"))
    assert installed, "the %pip cell did not install the client"
    assert not (Path(kernel_env["site"]) / "torch").exists()

    last = nb.cells[-1]
    texts = "\n".join(html_outputs(last))
    assert "Logged in to %s as alice" % site in texts
    tables = [h for h in html_outputs(last) if "courseplatform-feedback" in h]
    check_html = next(h for h in tables if "Check (visible tests only" in h)
    submit_html = next(h for h in tables if "Attempt 1" in h)
    # The check: graded, visible test only, with its points.
    assert 'data-state="graded"' in check_html and "6 / 6" in check_html
    assert "double(3) is 6" in check_html and "Hidden test" not in check_html and "double(-21)" not in check_html
    # The submission: every test, the hidden one as points only.
    assert 'data-state="graded"' in submit_html and "score <span class=\"cp-score\">10 / 10</span>" in submit_html
    assert "Hidden test 1" in submit_html and "(hidden)" in submit_html and "double(-21)" not in submit_html
    # Each call's table is one display updated in place (display_id) through queued/running/graded,
    # not a stack of outputs: login line, check table, submission table.
    assert len(last.outputs) == 3 and [o["output_type"] for o in last.outputs] == ["display_data"] * 3

    subs = {s.via: s for s in Submission.objects.filter(student=student)}
    assert set(subs) == {"check", "api"} and subs["check"].is_test_run and subs["api"].attempt == 1
    assert subs["api"].original_name == "tiny.ipynb" and subs["api"].score == 10
    stored = Path(subs["api"].blob)
    from courseplatform.submissions.services import blob_path

    assert "jupyter-7f3a" in blob_path(str(stored)).read_text()
    # The token never reaches the notebook (outputs or sources).
    assert token not in json.dumps(nb)


def test_colab_notebook_is_fetched_with_get_ipynb_and_errors_are_one_line(site, kernel_env, course, student, tmp_path,
                                                                          monkeypatch):
    from courseplatform.submissions.models import ApiToken, Submission

    a, token = _setup(course, student, tmp_path)
    work = tmp_path / "colab"
    work.mkdir()
    live = work / "live.json"  # what Colab's front end holds (unsaved edits included)
    live.write_text(json.dumps(student_notebook(site, "def double(x):\n    return x + x\n", "colab-91c2")))
    on_disk = work / "Untitled0.ipynb"  # the kernel's copy is NOT what gets submitted
    nb = student_notebook(site, "def double(x):\n    return 2 * x\n", "stale-disk-copy")
    # Error cases, each one line in the output: a revoked token, an unreachable site, a closed
    # assignment, a missing file.
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "errors", "metadata": {}, "outputs": [],
                        "source": "import os\ngood = os.environ['COURSEPLATFORM_TOKEN']\n"
                                  "cp.logout()\nassert 'COURSEPLATFORM_TOKEN' not in os.environ\n"
                                  "os.environ['COURSEPLATFORM_TOKEN'] = os.environ['CP_REVOKED']\n"
                                  "cp.login(SITE)\n"
                                  "cp.login('http://127.0.0.1:9')\n"
                                  "os.environ['COURSEPLATFORM_TOKEN'] = good\ncp.login(SITE)\n"
                                  "cp.submit('llms/closed', 'closed.py')\n"
                                  "cp.submit('llms/tiny', 'no-such-file.py')\n"})
    nbformat.write(nbformat.from_dict(nb), str(on_disk))
    (work / "closed.py").write_text("def double(x):\n    return 2 * x\n")
    from datetime import timedelta

    from cp_helpers import write_pack
    from django.utils import timezone

    from courseplatform.submissions.sync import sync_pack

    closed, _ = sync_pack(course, write_pack(tmp_path / "assignments", slug="closed"))
    closed.due_at, closed.late_policy = timezone.now() - timedelta(days=10), "closed"
    closed.save()
    t, revoked = ApiToken.issue(student)
    t.revoked_at = timezone.now()
    t.save()
    log = work / "requests.log"
    nbout = execute(on_disk, kernel_env, monkeypatch, COURSEPLATFORM_TOKEN=token,
                    PYTHONPATH=HERE / "colab_standin", CP_STANDIN_IPYNB=live, CP_STANDIN_LOG=log,
                    CP_REVOKED=revoked)
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    assert requests and all(r["type"] == "get_ipynb" and r["request"] == "" for r in requests)
    sub = Submission.objects.get(student=student, via="api")
    from courseplatform.submissions.services import blob_path

    text = blob_path(sub.blob).read_text()
    assert "colab-91c2" in text and "stale-disk-copy" not in text and sub.original_name == "tiny.ipynb"
    assert sub.state == "graded" and sub.score == 10
    out = nbout.cells[-2]
    assert any("Attempt 1" in h and "10 / 10" in h for h in html_outputs(out))
    errors = nbout.cells[-1]
    err_html = [h for h in html_outputs(errors) if "courseplatform-error" in h]
    assert len(err_html) == 4, html_outputs(errors)
    assert "did not accept your token" in err_html[0] and "expired, revoked or mistyped" in err_html[0]
    assert "Cannot reach http://127.0.0.1:9" in err_html[1]
    assert "deadline" in err_html[2].lower() and Submission.objects.filter(assignment=closed).count() == 0
    assert "no-such-file.py is not a file" in err_html[3]
    assert not any(o.get("output_type") == "error" for c in nbout.cells for o in c.get("outputs", []))
    assert "Traceback" not in json.dumps(nbout)
    assert re.search(r"courseplatform_client-[0-9.]+-py3-none-any\.whl", json.dumps(nbout))
