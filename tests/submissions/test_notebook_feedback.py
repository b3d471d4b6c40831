"""Notebook feedback: the executed notebook a pack returns is stored as a file (not inside the result
JSON), rendered sanitized in a script-free frame for the owner and staff (once, then read back),
downloadable; its plot is shown."""
from __future__ import annotations

import base64
import json

import nbformat
import pytest
from django.urls import reverse

from courseplatform.submissions import artifacts, notebooks
from courseplatform.submissions.models import Submission

pytestmark = pytest.mark.django_db

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
HOSTILE = (
    "<b>cosine 0.42</b><script>parent.document.title='pwned'</script>"
    "<img src=x onerror=\"parent.document.title='pwned'\"><a href=\"javascript:alert(1)\">click</a>"
    "<iframe src=\"https://evil.example\"></iframe><form action=\"https://evil.example\"><input></form>"
    "<div style=\"background:url(https://evil.example/t.png)\">styled</div>"
)


def executed_notebook() -> bytes:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("sim = cosine(bank_river, bank_money)\nsim")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": HOSTILE, "text/plain": "x"}),
        nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(PNG).decode(), "text/plain": "<Figure>"}),
        nbformat.v4.new_output("stream", name="stdout", text="similarity 0.42 <script>alert(3)</script>\n"),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Contextual vectors\n<script>alert(4)</script>"), cell]
    return nbformat.writes(nb).encode()


EXECUTED = executed_notebook()  # once: its cells get random ids


def artifact(name, ctype, data: bytes) -> dict:
    return {"name": name, "content_type": ctype, "data_b64": base64.b64encode(data).decode()}


@pytest.fixture
def nb_sub(assignment, student):
    return Submission.objects.create(
        assignment=assignment, student=student, sha256="0" * 64, blob="x", original_name="embeddings.ipynb", kind="ipynb",
        size=1, state="graded", score=10, max_score=10,
        result=artifacts.store({"status": "graded", "score": 10, "max_score": 10, "message": "10/10", "tests": [],
                                "artifacts": [
            artifact("executed.ipynb", "application/x-ipynb+json", EXECUTED),
            artifact("bank_projection.png", "image/png", PNG),
            artifact("fake.png", "image/png", b"<html><script>alert(1)</script></html>"),
        ]}),
    )


def urls(sub):
    slug = sub.assignment.course.slug
    return {
        "page": reverse("submissions:notebook", args=[slug, sub.pk, 0]),
        "frame": reverse("submissions:notebook_frame", args=[slug, sub.pk, 0]),
        "image": reverse("submissions:artifact_image", args=[slug, sub.pk, 1]),
        "download": reverse("submissions:artifact", args=[slug, sub.pk, 0]),
        "detail": reverse("submissions:detail", args=[slug, sub.assignment.slug]),
    }


def test_owner_sees_the_notebook_link_and_the_plot(nb_sub, client_for, student):
    u = urls(nb_sub)
    page = client_for(student).get(u["detail"]).content.decode()
    assert u["page"] in page and "View the executed notebook" in page
    assert f'<img src="{u["image"]}"' in page
    assert reverse("submissions:artifact_image", args=[nb_sub.assignment.course.slug, nb_sub.pk, 0]) not in page  # the notebook is no image


def test_frame_is_sanitized_and_script_free(nb_sub, client_for, student):
    u = urls(nb_sub)
    c = client_for(student)
    page = c.get(u["page"])
    assert page.status_code == 200
    html = page.content.decode()
    assert f'<iframe class="notebook-frame" sandbox title="Executed notebook" src="{u["frame"]}"' in html
    assert "allow-scripts" not in html
    r = c.get(u["frame"])
    assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
    csp = r["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script" not in csp.replace("default-src", "")
    assert r["X-Frame-Options"] == "SAMEORIGIN"
    body = r.content.decode()
    assert "cosine 0.42" in body and "similarity 0.42" in body and "Contextual vectors" in body
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in body
    lowered = body.lower()
    for bad in ("<script", "onerror", "javascript:", "<iframe", "<form", "evil.example", 'style="'):
        assert bad not in lowered, bad


def test_download_and_images(nb_sub, client_for, student):
    u = urls(nb_sub)
    c = client_for(student)
    r = c.get(u["download"])
    assert r.status_code == 200 and "attachment" in r["Content-Disposition"] and json.loads(r.content)["nbformat"] == 4
    r = c.get(u["image"])
    assert r.status_code == 200 and r["Content-Type"] == "image/png" and r.content == PNG and r["X-Content-Type-Options"] == "nosniff"
    # An artifact that claims to be a PNG but is HTML is not served inline.
    assert c.get(reverse("submissions:artifact_image", args=[nb_sub.assignment.course.slug, nb_sub.pk, 2])).status_code == 404
    # Not a notebook / out of range.
    assert c.get(reverse("submissions:notebook", args=[nb_sub.assignment.course.slug, nb_sub.pk, 1])).status_code == 404
    assert c.get(reverse("submissions:notebook_frame", args=[nb_sub.assignment.course.slug, nb_sub.pk, 9])).status_code == 404


def test_other_students_and_outsiders_are_refused_staff_allowed(nb_sub, client_for, other_student, outsider, ta, instructor):
    u = urls(nb_sub)
    for key in ("page", "frame", "image", "download"):
        assert client_for(other_student).get(u[key]).status_code == 404, key
        assert client_for(outsider).get(u[key]).status_code == 404, key
        assert client_for(ta).get(u[key]).status_code == 200, key
        assert client_for(instructor).get(u[key]).status_code == 200, key


def test_damaged_notebook_gets_a_message(nb_sub, client_for, student):
    nb_sub.result["artifacts"][0] = artifact("executed.ipynb", "application/x-ipynb+json", b"{not json")
    nb_sub.save()
    r = client_for(student).get(urls(nb_sub)["frame"])
    assert r.status_code == 200 and b"cannot be read" in r.content
    nb_sub.result["artifacts"][0]["data_b64"] = "***"
    nb_sub.save()
    assert client_for(student).get(urls(nb_sub)["frame"]).status_code == 404


def test_sanitize_keeps_tables_and_drops_handlers():
    out = notebooks.sanitize('<table class="dataframe"><tr><td onclick="x()">1</td></tr></table><img src="http://x/y.png">')
    assert '<table class="dataframe">' in out and "onclick" not in out and "http://x" not in out


# --------------------------------------------------------------------------- artifacts as files


def test_artifacts_are_files_and_not_inside_the_result_json(nb_sub, settings, client_for, student):
    from pathlib import Path

    assert "data_b64" not in json.dumps(nb_sub.result)
    art = nb_sub.result["artifacts"][0]
    path = Path(settings.MEDIA_ROOT) / artifacts.artifact_path(art["sha256"])
    assert path.read_bytes() == EXECUTED and art["size"] == len(EXECUTED)
    r = client_for(student).get(urls(nb_sub)["download"])
    assert r.status_code == 200 and r.content == EXECUTED
    path.chmod(0o640)
    path.unlink()  # a missing file is a damaged artifact, not an error page
    assert client_for(student).get(urls(nb_sub)["download"]).status_code == 404


def test_the_worker_saves_the_engines_artifacts_as_files(assignment, student, settings):
    from courseplatform.submissions.tasks import _save_result

    sub = Submission.objects.create(assignment=assignment, student=student, sha256="0" * 64, blob="x",
                                    original_name="e.ipynb", kind="ipynb", size=1, state="running")
    result = {"status": "graded", "score": 1, "max_score": 10, "message": "", "tests": [], "notes": [],
              "artifacts": [artifact("bank_projection.png", "image/png", PNG)]}
    assert _save_result(sub, sub.generation, result) == "saved"
    sub.refresh_from_db()
    (art,) = sub.result["artifacts"]
    assert "data_b64" not in art and art["name"] == "bank_projection.png" and art["content_type"] == "image/png"
    assert artifacts.read(art) == PNG


def test_the_notebook_is_rendered_once_across_views(nb_sub, client_for, student, instructor, monkeypatch):
    calls = []
    real = notebooks.render
    monkeypatch.setattr(notebooks, "render", lambda data: calls.append(1) or real(data))
    u = urls(nb_sub)
    first = client_for(student).get(u["frame"])
    second = client_for(instructor).get(u["frame"])
    assert first.status_code == second.status_code == 200 and len(calls) == 1
    assert first.content == second.content and b"cosine 0.42" in second.content
    assert "sandbox" in second["Content-Security-Policy"]


def test_the_migration_moves_stored_artifacts_into_files(assignment, student):
    import importlib

    from django.apps import apps

    legacy = {"status": "graded", "tests": [], "artifacts": [artifact("executed.ipynb", "application/x-ipynb+json",
                                                                      EXECUTED), {"name": "odd"}]}
    sub = Submission.objects.create(assignment=assignment, student=student, sha256="0" * 64, blob="x",
                                    original_name="e.ipynb", kind="ipynb", size=1, state="graded", result=legacy)
    migration = importlib.import_module("courseplatform.submissions.migrations.0004_artifacts_as_files")
    migration.forwards(apps, None)
    sub.refresh_from_db()
    assert "data_b64" not in json.dumps(sub.result) and sub.result["artifacts"][1] == {"name": "odd"}
    assert artifacts.read(sub.result["artifacts"][0]) == EXECUTED
    migration.backwards(apps, None)
    sub.refresh_from_db()
    assert sub.result == legacy
