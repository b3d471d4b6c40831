"""The bert_finetune pack, graded through grader.api.grade with the real sandbox (CPU settings:
96 training sentences, a 15-second budget, one thread).

Reference full marks with its metrics for the leaderboard, starter zero (.py and .ipynb), every
mutant its recorded score and message, the second solution full marks, the data set reproducible
from its generator with disjoint opinion words, and the hostile cases: reading the hidden split
from inside the sandbox, malformed predictions, and a training call that overruns its budget of
CPU seconds (while sleeping past it in wall-clock time costs nothing); and every recorded score
again while another process keeps both cores busy. Issue 22: the budget is read on the trusted side
(a patched getrusage/process_time, work in an unwaited child and work left running after train()
returns all count) and the device is the worker's (a forged CUDA answer changes nothing).
"""
from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

from packs_graded import grade_bytes

PACK = Path(__file__).resolve().parents[2] / "assignments" / "bert_finetune"
EXPECTED = tomllib.loads((PACK / "mutants" / "expected.toml").read_text())
FULL = 16.0


def _grade_bytes(data: bytes, filename: str) -> dict:
    result = grade_bytes(PACK, filename, data)  # one grade per file and session (packs_graded.py)
    assert result["max_score"] == FULL
    return result


def _grade(source: str | bytes, filename: str = "finetune.py") -> dict:
    return _grade_bytes(source.encode() if isinstance(source, str) else source, filename)


def _grade_file(rel: str) -> dict:
    """A file of the pack under its own name, as test_packs_generic grades it."""
    return _grade_bytes((PACK / rel).read_bytes(), Path(rel).name)


def _feedback(result: dict) -> str:
    return "\n".join([result["message"]] + [t["message"] for t in result["tests"]] + result.get("notes", []))


def _by_id(result: dict) -> dict:
    return {t["id"]: t for t in result["tests"]}


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dataset_is_reproducible_and_splits_do_not_share_opinion_words(tmp_path):
    build = _load(PACK / "build_dataset.py", "bert_build_dataset")
    build.main(tmp_path)
    for name in ("train.tsv", "test.tsv"):
        assert (tmp_path / name).read_bytes() == (PACK / "data" / name).read_bytes(), name
    train = (PACK / "data" / "train.tsv").read_text()
    test = (PACK / "data" / "test.tsv").read_text()
    for word in build.POSITIVE[1] + build.NEGATIVE[1]:
        assert f" {word}" not in train, word
    train_texts = {line.split("\t", 1)[1] for line in train.splitlines()[1:]}
    test_rows = [line.split("\t", 1) for line in test.splitlines()[1:]]
    assert not train_texts & {t for _, t in test_rows}
    assert len(test_rows) == 200 and 0.4 < sum(int(y) for y, _ in test_rows) / 200 < 0.6
    licence = (PACK / "DATA_LICENSE.md").read_text()
    assert "CC0 1.0" in licence and "build_dataset.py" in licence


def test_reference_full_marks_and_leaderboard_metrics():
    result = _grade_file("reference.py")
    assert result["status"] == "graded", result["message"]
    assert result["score"] == FULL, _feedback(result)
    metrics = result["metrics"]
    assert metrics["accuracy"] >= 0.88 and metrics["f1"] >= 0.85, metrics
    assert 0 < metrics["train_seconds"] <= 15 + 5
    assert any("Trained on 96 sentences on cpu" in n for n in result["notes"])
    assert any("Hidden split (200 sentences)" in n for n in result["notes"])


@pytest.mark.parametrize("name", ["starter.py", "starter.ipynb"])
def test_starter_scores_zero(name):
    result = _grade_file(name)
    assert result["status"] == "graded", result["message"]
    assert result["score"] == 0
    assert "NotImplementedError" in _feedback(result)
    assert "Not graded: train(...) did not produce a working predictor" in _feedback(result)


def test_every_mutant_is_listed():
    assert {p.stem for p in (PACK / "mutants").glob("*.py")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mutant_gets_its_score_and_message(name):
    result = _grade_file(f"mutants/{name}.py")
    assert result["status"] == "graded", result["message"]
    assert result["score"] == EXPECTED[name]["score"], _feedback(result)
    assert EXPECTED[name]["message"] in _feedback(result)
    tests = _by_id(result)
    if name == "train_split_eval":
        # a good model, dishonestly validated: only the validation test fails
        assert tests["hidden_accuracy"]["status"] == "passed"
        assert tests["honest_validation"]["status"] == "failed"
        assert "96 of the 96 training examples" in tests["honest_validation"]["message"]
    else:
        assert result["metrics"]["accuracy"] < 0.70


@pytest.mark.parametrize("name", ["sequence_classification.py", "meanpool_onecycle_unseeded.py"])
def test_other_solutions_full_marks(name):
    result = _grade_file(f"solutions/{name}")
    assert result["score"] == FULL, _feedback(result)


def test_sleeping_is_not_spending_the_budget():
    """The budget is the CPU time the submission used: waiting (here: sleeping past the budget in
    wall-clock time) costs none of it, exactly as a loaded machine's waiting costs none."""
    source = HOSTILE_HEADER + '''
import time
def train(train_texts, train_labels, model_dir, time_budget_s, device="cpu", seed=0):
    time.sleep(time_budget_s + 6)
    val = list(range(len(train_texts) // 5))
    honest = sum(train_labels[i] == 0 for i in val) / len(val)
    return P(lambda texts: [0] * len(texts), val, honest)
'''
    result = _grade(source)
    tests = _by_id(result)
    assert tests["train_and_predict"]["status"] == "passed", _feedback(result)
    assert result["metrics"]["train_seconds"] < 5
    assert result["score"] == 4.0, _feedback(result)


def test_recorded_scores_hold_while_both_cores_are_busy():
    """#15/#16: the reference, every solution and every mutant graded while another process keeps
    every core busy get exactly their recorded scores (the budget is CPU time, not wall time)."""
    from grader.authoring.check import busy_cores, check_item, expectations

    items = [it for it in expectations(PACK) if not it["file"].startswith("starter")]
    assert len(items) >= 6
    with busy_cores() as procs:
        results = [check_item(PACK, it) for it in items]
        assert all(p.poll() is None for p in procs)
    for got in results:
        assert got["ok"], (got["file"], got["problem"], _feedback(got["result"]))


HOSTILE_HEADER = '''
class P:
    def __init__(self, labels, val_indices, val_accuracy):
        self.labels, self.val_indices, self.val_accuracy = labels, val_indices, val_accuracy
    def predict(self, texts):
        return self.labels(texts)
'''


def test_hidden_split_is_not_readable_from_the_sandbox():
    source = HOSTILE_HEADER + f'''
def train(train_texts, train_labels, model_dir, time_budget_s, device="cpu", seed=0):
    found = {{}}
    for path in ({str(PACK / "data" / "test.tsv")!r}, "../data/test.tsv", "/work/main/assignments/bert_finetune/data/test.tsv"):
        try:
            found[path] = open(path).read()
        except OSError as exc:
            found[path] = None
    if any(found.values()):
        gold = dict(line.split("\\t", 1)[::-1] for line in next(v for v in found.values() if v).splitlines()[1:])
        return P(lambda texts: [int(gold.get(t, 0)) for t in texts], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 1.0)
    raise FileNotFoundError("no hidden data in the sandbox")
'''
    result = _grade(source)
    assert result["score"] == 0
    assert "FileNotFoundError: no hidden data in the sandbox" in _feedback(result)


@pytest.mark.parametrize("predict, message", [
    ("lambda texts: [1] * (len(texts) - 1)", "returned 199 labels for 200 texts"),
    ("lambda texts: ['positive'] * len(texts)", "must return labels 0 (negative) or 1 (positive)"),
    ("lambda texts: None", "must return a list of 0/1 labels, got NoneType"),
])
def test_malformed_predictions_are_refused(predict, message):
    source = HOSTILE_HEADER + f'''
def train(train_texts, train_labels, model_dir, time_budget_s, device="cpu", seed=0):
    return P({predict}, list(range(10)), 0.5)
'''
    result = _grade(source)
    assert result["score"] == 0
    assert message in _by_id(result)["train_and_predict"]["message"]


def test_budget_overrun_fails_the_training_test():
    source = HOSTILE_HEADER + '''
import time
def train(train_texts, train_labels, model_dir, time_budget_s, device="cpu", seed=0):
    start = time.process_time()
    while time.process_time() - start < time_budget_s + 6:
        sum(range(1000))
    val = list(range(len(train_texts) // 5))
    honest = sum(train_labels[i] == 0 for i in val) / len(val)
    return P(lambda texts: [0] * len(texts), val, honest)
'''
    result = _grade(source)
    tests = _by_id(result)
    assert tests["train_and_predict"]["status"] == "failed"
    assert "over the budget of 15 CPU seconds" in tests["train_and_predict"]["message"]
    # an honest but useless constant predictor: its validation report is consistent, so only
    # that test passes
    assert result["score"] == 2.0, _feedback(result)


# Issue 22: the budget and the device come from the trusted side, whatever the sandbox says.

HONEST_CONSTANT = '''
    val = list(range(len(train_texts) // 5))
    honest = sum(train_labels[i] == 0 for i in val) / len(val)
    return P(lambda texts: [0] * len(texts), val, honest)
'''


def test_a_patched_cpu_reading_does_not_hide_the_work():
    """train() replaces resource.getrusage and time.process_time with functions that report 0: the
    grader reads the sandbox's CPU time itself, so the overrun fails and no leaderboard row is kept."""
    source = HOSTILE_HEADER + '''
import resource, time
_real = time.process_time
class _Zero:
    ru_utime = ru_stime = 0.0
def train(train_texts, train_labels, model_dir, time_budget_s, device="cpu", seed=0):
    resource.getrusage = lambda *a: _Zero()
    time.process_time = lambda: 0.0
    start = _real()
    while _real() - start < time_budget_s + 6:
        sum(range(1000))
''' + HONEST_CONSTANT
    result = _grade(source)
    tests = _by_id(result)
    assert tests["train_and_predict"]["status"] == "failed", _feedback(result)
    assert "over the budget of 15 CPU seconds" in tests["train_and_predict"]["message"]
    assert result["metrics"]["train_seconds"] >= 20
    assert "accuracy" not in result["metrics"]            # no leaderboard row for a run over its budget


def test_work_in_an_unwaited_child_counts():
    """The training runs in a child that is never waited for (auto-reaped, so no RUSAGE_CHILDREN)."""
    source = HOSTILE_HEADER + '''
import os, signal, time
def train(train_texts, train_labels, model_dir, time_budget_s, device="cpu", seed=0):
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    r, w = os.pipe()
    if os.fork() == 0:
        start = time.process_time()
        while time.process_time() - start < time_budget_s + 6:
            sum(range(1000))
        os.write(w, b"x")
        os._exit(0)
    os.read(r, 1)
''' + HONEST_CONSTANT
    result = _grade(source)
    tests = _by_id(result)
    assert tests["train_and_predict"]["status"] == "failed", _feedback(result)
    assert result["metrics"]["train_seconds"] >= 20


def test_work_left_running_after_train_returns_counts():
    """train() returns at once and leaves a child computing: what the sandbox uses until predict()
    is done is bounded (PREDICT_ALLOWANCE_S), so the training cannot be moved past the measurement."""
    source = HOSTILE_HEADER + '''
import os, time
def train(train_texts, train_labels, model_dir, time_budget_s, device="cpu", seed=0):
    r, w = os.pipe()
    if os.fork() == 0:
        start = time.process_time()
        while time.process_time() - start < 12:
            sum(range(1000))
        os.write(w, b"x")
        os._exit(0)
    def labels(texts, r=r):
        os.read(r, 1)   # predict() waits for the background work
        return [0] * len(texts)
    val = list(range(len(train_texts) // 5))
    return P(labels, val, sum(train_labels[i] == 0 for i in val) / len(val))
'''
    result = _grade(source)
    tests = _by_id(result)
    assert tests["train_and_predict"]["status"] == "failed", _feedback(result)
    assert "predict() on 200 sentences used" in tests["train_and_predict"]["message"]
    assert result["metrics"]["train_seconds"] < 5


def test_a_forged_cuda_answer_does_not_choose_the_settings():
    """On this CPU worker the sandbox claims CUDA: the settings stay the CPU's (the device is the
    worker's, decided on the trusted side)."""
    source = HOSTILE_HEADER + '''
import torch
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 1
def train(train_texts, train_labels, model_dir, time_budget_s, device="cpu", seed=0):
    assert device == "cpu" and time_budget_s == 15 and len(train_texts) == 96, (device, time_budget_s)
''' + HONEST_CONSTANT
    result = _grade(source)
    tests = _by_id(result)
    assert tests["train_and_predict"]["status"] == "passed", _feedback(result)
    assert any("Trained on 96 sentences on cpu with a budget of 15 CPU seconds" in n for n in result["notes"])
