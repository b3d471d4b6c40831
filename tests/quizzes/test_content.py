"""The course's real banks: they load, cover the lectures, and every parameterised answer matches an
independent computation (torch, written here separately from the bank's expressions)."""
from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import torch

from courseplatform.quizzes import bank

ROOT = Path(__file__).resolve().parents[2] / "assignments" / "quizzes"
BANKS = sorted(ROOT.glob("*.toml"))


def all_questions():
    out = []
    for path in BANKS:
        b = bank.load_bank_file(path)
        out += [(b["quiz"]["slug"], q) for q in b["questions"]]
    return out


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def _bert_params(p):
    return _bert_count(p["L"], p["H"], p["V"])


@functools.lru_cache(maxsize=None)
def _bert_count(L, H, V):
    meta = {"device": "meta"}  # shapes only, no memory
    emb = torch.nn.Embedding(V, H, **meta).weight.numel() + torch.nn.Embedding(512, H, **meta).weight.numel() \
        + torch.nn.Embedding(2, H, **meta).weight.numel() \
        + sum(x.numel() for x in torch.nn.LayerNorm(H, **meta).parameters())
    layer = torch.nn.TransformerEncoderLayer(H, nhead=4, dim_feedforward=4 * H, **meta)
    per_layer = sum(x.numel() for x in layer.parameters())
    pooler = sum(x.numel() for x in torch.nn.Linear(H, H, **meta).parameters())
    return emb + L * per_layer + pooler


def _pe(p):
    d, pos, col = p["d"], p["pos"], p["col"]
    position = torch.arange(0, 60, dtype=torch.float64).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(10000.0) / d))
    pe = torch.zeros(60, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)
    return pe[pos, col].item()


def _mha_params(p):
    return sum(x.numel() for x in torch.nn.MultiheadAttention(p["d"], p["h"], bias=True, device="meta").parameters())


INDEPENDENT = {
    "attention-weight-param": lambda p: torch.softmax(t(p["Q"]) @ t(p["K"]).T / math.sqrt(2), dim=-1)[1, 0].item(),
    "scaled-score-param": lambda p: (t(p["q"]) @ t(p["k"])).item() / math.sqrt(4),
    "score-entries-param": lambda p: torch.empty(p["b"], p["h"], p["n"], p["n"], device="meta").numel(),
    "mha-params-param": _mha_params,
    "pe-value-param": _pe,
    "layernorm-param": lambda p: torch.nn.functional.layer_norm(t(p["x"]), (4,), eps=0.0)[0].item(),
    "cross-entropy-param": lambda p: torch.nn.functional.cross_entropy(t([p["z"]]), torch.tensor([p["y1"] - 1])).item(),
    "conv-output-size": lambda p: torch.nn.Conv2d(1, 1, p["k"], stride=p["s"], padding=p["p"])(
        torch.zeros(1, 1, p["w"], p["w"])).shape[-1],
    "conv-params": lambda p: sum(x.numel() for x in torch.nn.Conv2d(p["cin"], p["cout"], p["k"], device="meta").parameters()),
    "sigmoid-chain": lambda p: _sigmoid_chain(p["n"]),
    "mlm-mask-count-param": lambda p: p["n"] * 15 / 100 * 80 / 100,
    "bert-param-count-param": _bert_params,
    "temperature-param": lambda p: torch.softmax(t(p["z"]) / p["T"], dim=0)[0].item(),
    "softmax-logits-param": lambda p: torch.softmax(t(p["z"]), dim=0)[2].item(),
    "kv-cache-memory-param": lambda p: torch.empty(p["L"], 2, p["B"], p["h"], p["T"], p["dh"], dtype=torch.float16,
                                                   device="meta").numel() * 2 / (1024 * 1024),
    "f1-param": lambda p: _f1(p),
    "perplexity-param": lambda p: torch.exp(-t(p["lp"]).mean()).item(),
    "train-flops-param": lambda p: 6 * (p["n_m"] * 10**6) * (p["d_b"] * 10**9) / 10**18,
}


def _sigmoid_chain(n):
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # sigmoid'(0) = 0.25 is the maximum
    y = x
    for _ in range(n):
        y = torch.sigmoid(y) - 0.5  # keep the input of every sigmoid at 0
    y.backward()
    return x.grad.item()


def _f1(p):
    y_true = torch.tensor([1] * p["tp"] + [0] * p["fp"] + [1] * p["fn"] + [0] * p["tn"])
    y_pred = torch.tensor([1] * p["tp"] + [1] * p["fp"] + [0] * p["fn"] + [0] * p["tn"])
    tp = ((y_pred == 1) & (y_true == 1)).sum().item()
    precision = tp / (y_pred == 1).sum().item()
    recall = tp / (y_true == 1).sum().item()
    return 2 * precision * recall / (precision + recall)


def test_banks_exist_and_load():
    assert len(BANKS) >= 5
    qs = all_questions()
    assert len(qs) >= 60
    keys = [(slug, q["id"]) for slug, q in qs]
    assert len(keys) == len(set(keys))


def test_every_question_has_an_explanation():
    missing = [q["id"] for _, q in all_questions() if len(q["explanation"]) < 20]
    assert missing == []


def test_all_types_and_enough_parameterised_questions():
    qs = [q for _, q in all_questions()]
    kinds = {q["type"] for q in qs}
    assert kinds == {"single", "multiple", "truefalse", "numeric", "short", "code", "matching"}
    assert {q.get("rule") for q in qs if q["type"] == "multiple"} >= {"all_or_nothing", "right_minus_wrong"}
    assert sum(1 for q in qs if q["type"] == "numeric" and q["params"]) >= 10


def test_lecture_topics_are_covered():
    topics = {q["topic"] for _, q in all_questions()}
    for topic in ("basics", "cnn", "rnn", "attention", "multihead", "positional", "layernorm", "families",
                  "bert-input", "wordpiece", "pretraining", "gpt", "decoding", "kv-cache", "params", "fine-tuning",
                  "metrics", "cost", "ethics"):
        assert topic in topics, topic


def test_every_parameterised_question_has_an_independent_check():
    param_ids = {q["id"] for _, q in all_questions() if q["type"] == "numeric" and q["params"]}
    assert param_ids == set(INDEPENDENT)


@pytest.mark.parametrize("qid", sorted(INDEPENDENT))
def test_parameterised_answers_match_independent_computation(qid):
    q = next(q for _, q in all_questions() if q["id"] == qid)
    for student in range(25):
        snap = bank.build_snapshot(q, param_seed=bank.seed_for("params", "llms", "quiz", qid, student), choice_seed=0,
                                   shuffle_choices=False)
        key = snap["answers"][0]
        expected = float(INDEPENDENT[qid](snap["params"]))
        assert key["value"] == pytest.approx(expected, rel=1e-9, abs=1e-9), (student, snap["params"])
        # The independent value is accepted, and a clearly wrong one is not.
        assert bank.grade(snap, {"value": expected})[0] == 1.0
        assert bank.grade(snap, {"value": expected * 1.5 + 1})[0] == 0.0
        # What the student reads contains the drawn numbers, not placeholders.
        assert "{{" not in snap["text_html"] and "{{" not in snap["explanation_html"]


def test_known_reference_values():
    bert = next(q for _, q in all_questions() if q["id"] == "bert-param-count-param")
    snap = bank.build_snapshot(bert, param_seed=0, choice_seed=0, shuffle_choices=False)
    from courseplatform.quizzes import expr

    assert expr.evaluate_number(bert["answers"][0]["answer"], {"L": 12, "H": 768, "V": 30522}) == 109_482_240
    assert snap["answers"][0]["rel_tolerance"] == 0.01


def test_code_question_pack_exists():
    code = [q for _, q in all_questions() if q["type"] == "code"]
    assert code and all((ROOT / q["pack"] / "assignment.toml").is_file() for q in code)


def test_question_editor_round_trips_every_bank_question():
    """The editor shows a question as TOML; saving it unchanged must give the same spec (no new version)."""
    import tomllib

    from courseplatform.quizzes.tomlwrite import question_to_toml

    from .test_gift import EXAMPLES
    from .test_matching import EVERY
    from courseplatform.quizzes.gift import parse_gift

    specs = [q for _, q in all_questions()] + parse_gift(EXAMPLES.read_text()).questions
    specs += parse_gift(EVERY.read_text()).questions
    for spec in specs:
        text = question_to_toml(spec)
        again = bank.validate_question(tomllib.loads(text)["question"][0])
        assert bank.spec_hash(again) == bank.spec_hash(spec), (spec["id"], text)
