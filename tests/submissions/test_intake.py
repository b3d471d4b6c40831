"""One intake (issue 23 item 2): a notebook upload is read, hashed and parsed once between the upload
view and the sandbox. The web reads it once within its limit, the engine's bounded walk parses it
once (before nbformat, which validates it once, from that parse), and the worker starts from the
decoded form the web kept instead of reading and parsing the file again."""
from __future__ import annotations

import json

import nbformat
import pytest
from django.core.files.base import File
from django.core.files.uploadedfile import InMemoryUploadedFile, SimpleUploadedFile
from django.urls import reverse

import grader.intake.submission
from cp_helpers import notebook
from courseplatform.submissions.models import Submission

pytestmark = pytest.mark.django_db


UPLOAD = json.dumps(notebook("def double(x):\n    return 2 * x\n"))  # a JSON parse of anything else is not counted


class _Spy:
    def __init__(self, monkeypatch, owner, name, log, label, only_the_upload=False):
        real = getattr(owner, name)

        def spy(*args, **kwargs):
            text = args[0] if args else ""
            text = text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else text
            if not only_the_upload or text == UPLOAD:
                log.append(label)
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, spy)


@pytest.fixture
def counted(monkeypatch):
    """Every read of the upload (Django's File.chunks(), the worker's read_blob), JSON parse of a notebook, bounded walk and nbformat validation,
    in the order they happen, with the real engine's grade() up to the sandbox (stubbed)."""
    import grader.api
    from courseplatform.grading import engine
    from courseplatform.submissions import tasks

    log: list[str] = []
    _Spy(monkeypatch, File, "chunks", log, "read")
    _Spy(monkeypatch, InMemoryUploadedFile, "chunks", log, "read")
    _Spy(monkeypatch, tasks, "read_blob", log, "read")
    _Spy(monkeypatch, grader.intake.submission, "load_notebook_json", log, "walk")
    _Spy(monkeypatch, json, "loads", log, "parse", only_the_upload=True)
    _Spy(monkeypatch, nbformat, "validate", log, "validate")
    _Spy(monkeypatch, nbformat, "reads", log, "parse", only_the_upload=True)
    sandbox = []

    class Runner:  # the sandbox's side: what it is handed
        def __init__(self, pack, decoded, zygote, only_visible=False):
            sandbox.append(decoded)
            self.pack = pack

        def run(self):
            return {"score": 10.0, "max_score": 10.0, "status": "graded", "message": "ok", "tests": [], "notes": [],
                    "output": ""}

    class Zygote:
        secure = False

    monkeypatch.setattr(grader.api, "Runner", Runner)
    monkeypatch.setattr(grader.api.pool, "get", lambda queue, preload: Zygote())
    monkeypatch.setattr(engine, "grade_function", lambda: grader.api.grade)
    return log, sandbox


def test_a_notebook_upload_is_read_parsed_and_validated_once_from_the_view_to_the_sandbox(
        client_for, student, assignment, eager, counted):
    log, sandbox = counted
    data = UPLOAD.encode()
    client = client_for(student)
    log.clear()
    r = client.post(reverse("submissions:submit", args=[assignment.course.slug, assignment.slug]),
                    {"file": SimpleUploadedFile("tiny.ipynb", data)})
    assert r.status_code == 302 and "#submission-" in r["Location"]
    sub = Submission.objects.get()
    assert sub.state == "graded", sub.message
    # before (0bd8254): read 5 (hash, the web's check, the engine check, store, worker), walk 3 (web, engine
    # check, worker; the web's after nbformat), parse 8 (6 json.loads + 2 counted again as nbformat.reads),
    # validate 7 (the web's, then nbformat.reads, validate and writes in the engine check and in the worker)
    assert log.count("read") == 1, log
    assert log.count("walk") == 1, log
    assert log.count("parse") == 1, log
    assert log.count("validate") == 1, log
    assert log.index("walk") < log.index("validate"), log  # the engine's bounded walk first
    decoded = sandbox[0]
    assert decoded.main == "tiny.py" and b"return 2 * x" in decoded.files["tiny.py"]


def test_without_a_kept_decoded_form_the_worker_decodes_the_file(client_for, student, assignment, eager, counted,
                                                                 settings):
    """A file stored before the intake kept decoded forms (or for another pack module) is still
    graded: the worker reads and decodes it itself."""
    from pathlib import Path

    log, sandbox = counted
    data = UPLOAD.encode()
    client_for(student).post(reverse("submissions:submit", args=[assignment.course.slug, assignment.slug]),
                             {"file": SimpleUploadedFile("tiny.ipynb", data)})
    sub = Submission.objects.get()
    kept = list((Path(settings.MEDIA_ROOT) / "decoded").rglob("*.json"))
    assert len(kept) == 1
    kept[0].unlink()
    log.clear()
    from courseplatform.submissions.services import regrade

    regrade(Submission.objects.filter(pk=sub.pk))
    sub.refresh_from_db()
    assert sub.state == "graded" and log.count("read") == 1 and log.count("walk") == 1, log
    assert sandbox[-1].files == sandbox[0].files


def test_the_intake_is_immutable_and_decodes_afresh():
    nb = json.dumps(notebook("!pip install x\ndef double(x):\n    return 2 * x\n")).encode()
    intake = grader.intake.submission.take("tiny.ipynb", nb)
    with pytest.raises(AttributeError):
        intake.data = b""
    one, two = intake.decode("tiny", import_module=False), intake.decode("tiny", import_module=False)
    assert one == two and one is not two and one.files is not two.files
    assert intake.sha256 == __import__("hashlib").sha256(nb).hexdigest() and intake.code_cells == 1
