"""Quiz code questions grade from the content-addressed pack store (PACK_STORE/_quiz/<pack>/<hash>/),
like assignments, never from the editable quizzes folder: an edit counts after the next sync."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from courseplatform.quizzes import codepacks, services
from courseplatform.quizzes.sync import sync
from .conftest import run_job
from grader.authoring.pack import pack_hash

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
BANK = '''
[quiz]
slug = "code"
review = "immediately"
published = true

[[question]]
id = "softmax"
type = "code"
points = 3
pack = "code/stable_softmax"
filename = "softmax.py"
text = "Write a stable softmax."
'''
GOOD = ("import numpy as np\n\ndef softmax(x):\n    x = np.asarray(x, dtype=float)\n"
        "    e = np.exp(x - x.max(axis=-1, keepdims=True))\n    return e / e.sum(axis=-1, keepdims=True)\n")


@pytest.fixture
def root(tmp_path, settings):
    """An editable assignments folder with one bank and the stable_softmax pack."""
    root = tmp_path / "assignments"
    pack = Path("quizzes") / "code" / "stable_softmax"
    shutil.copytree(REPO / "assignments" / pack, root / pack)
    (root / "quizzes" / "code.toml").write_text(BANK)
    settings.ASSIGNMENTS_DIR = root
    return root


def graded_score(quiz, student) -> float:
    attempt = services.start_attempt(quiz, student)
    item = attempt.items.get()
    services.save_answer(attempt.pk, item.pk, {"code": [GOOD]})
    services.submit_attempt(attempt.pk)
    assert run_job("quiz-answer", item.pk) == "saved"
    item.refresh_from_db()
    assert item.grading_state == "graded", item.feedback
    return item.score


def test_sync_stores_the_pack_and_grading_uses_the_stored_copy(course, student, root, settings, make_user):
    source = root / "quizzes" / "code" / "stable_softmax"
    sync(course, root, stdout=io.StringIO())
    digest = pack_hash(source)
    stored = Path(settings.PACK_STORE) / "_quiz" / "code" / "stable_softmax" / digest
    assert codepacks.trusted_dir("code/stable_softmax") == stored.resolve()
    assert (stored / "tests.py").read_bytes() == (source / "tests.py").read_bytes()
    quiz = course.quizzes.get(slug="code")
    assert graded_score(quiz, student) == 3

    # an edit in the folder (here: the tests break) changes nothing until the next sync
    (source / "tests.py").write_text("this is not python\n")
    assert codepacks.trusted_dir("code/stable_softmax") == stored.resolve()
    assert graded_score(quiz, make_user("second")) == 3
    assert codepacks.queue_for("code/stable_softmax") == "cpu"

    # the sync stores the new version under its own hash; the old one is kept unchanged
    sync(course, root, stdout=io.StringIO())
    new = codepacks.trusted_dir("code/stable_softmax")
    assert new.name == pack_hash(source) != digest and (stored / "tests.py").read_text() != "this is not python\n"
    assert (new / "tests.py").read_text() == "this is not python\n"


def test_a_pack_no_sync_stored_is_stored_on_first_use(root, settings):
    assert not (Path(settings.PACK_STORE) / "_quiz").exists()
    trusted = codepacks.trusted_dir("code/stable_softmax")
    assert trusted.name == pack_hash(root / "quizzes" / "code" / "stable_softmax")
    assert Path(settings.PACK_STORE).resolve() in trusted.parents
    with pytest.raises(ValueError, match="outside the quizzes folder"):
        codepacks.trusted_dir("../../etc")
