"""Quiz banks: the TOML format, its validation, per-student parameters and answer keys.

No Django import here except what is passed in: banks are parsed and checked the same way
by `sync`, the question editor, the GIFT importer (which produces the same specs) and tests.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import re
import tomllib
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import numpy as np

from . import expr, mathcheck
from .render import render_inline, render_markdown

KINDS = ("single", "multiple", "truefalse", "numeric", "short", "code", "matching")
REVIEW = ("immediately", "after_close", "never")
GRADING = ("best", "last", "mean")
RULES = ("all_or_nothing", "right_minus_wrong", "weights")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*([a-z]+)\s*)?\}\}")
MAX_RESPONSE_CHARS = 20_000


class BankError(ValueError):
    def __init__(self, message: str, *, line: int | None = None, where: str = ""):
        self.line = line
        self.where = where
        prefix = where + (f" line {line}" if line else "")
        super().__init__(f"{prefix}: {message}" if prefix else message)


class AnswerError(ValueError):
    """Student input that cannot be taken as an answer (shown to the student; nothing saved)."""


# --------------------------------------------------------------------------- seeds
def seed_for(*parts) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


class Draw:
    """Seeded draws that use only random.Random.random(), whose sequence for an integer seed
    Python guarantees across versions (randint/choice/shuffle are not guaranteed)."""

    def __init__(self, seed: int):
        self._rng = random.Random(seed)

    def random(self) -> float:
        return self._rng.random()

    def integer(self, lo: int, hi: int) -> int:
        return lo + min(int(self.random() * (hi - lo + 1)), hi - lo)

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.random()

    def pick(self, values: list):
        return values[self.integer(0, len(values) - 1)]

    def shuffled(self, items: list) -> list:
        out = list(items)
        for i in range(len(out) - 1, 0, -1):
            j = self.integer(0, i)
            out[i], out[j] = out[j], out[i]
        return out


# --------------------------------------------------------------------------- loading
def load_bank_file(path: Path) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BankError(f"cannot read: {exc}", where=str(path)) from None
    return parse_bank(text, where=Path(path).name, default_slug=Path(path).stem)


_TOML_LINE = re.compile(r"\(at line (\d+)")


def parse_bank(text: str, *, where: str = "bank", default_slug: str = "quiz") -> dict:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_LINE.search(str(exc))
        raise BankError(f"TOML syntax error: {exc}", line=int(m.group(1)) if m else None, where=where) from None
    lines = _question_lines(text)
    quiz = validate_quiz_meta(data.get("quiz", {}), where=where, default_slug=default_slug)
    unknown = set(data) - {"quiz", "question"}
    if unknown:
        raise BankError(f"unknown top-level tables {sorted(unknown)} (expected [quiz] and [[question]])", where=where)
    raw_questions = data.get("question", [])
    if not isinstance(raw_questions, list) or not raw_questions:
        raise BankError("no [[question]] entries", where=where)
    questions, seen = [], set()
    for i, raw in enumerate(raw_questions):
        line = lines[i] if i < len(lines) else None
        spec = validate_question(raw, where=where, line=line)
        mathcheck.check_question(spec, where=where, line=line, source=text)  # what KaTeX cannot typeset
        if spec["id"] in seen:
            raise BankError(f"duplicate question id {spec['id']!r}", line=line, where=where)
        seen.add(spec["id"])
        questions.append(spec)
    return {"quiz": quiz, "questions": questions}


def _question_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), start=1) if line.strip() == "[[question]]"]


def validate_quiz_meta(raw: dict, *, where: str, default_slug: str) -> dict:
    if not isinstance(raw, dict):
        raise BankError("[quiz] must be a table", where=where)
    allowed = {"title", "slug", "description", "time_limit_minutes", "max_attempts", "review", "grading",
               "shuffle_questions", "shuffle_choices", "opens", "closes", "published"}
    unknown = set(raw) - allowed
    if unknown:
        raise BankError(f"unknown [quiz] keys {sorted(unknown)}", where=where)
    slug = str(raw.get("slug", default_slug)).strip().lower().replace("_", "-")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", slug):
        raise BankError(f"quiz slug {slug!r} must be lowercase letters, digits and '-'", where=where)
    meta = {"slug": slug, "title": str(raw.get("title") or slug.replace("-", " ").title()),
            "description": str(raw.get("description", ""))}
    if "time_limit_minutes" in raw:
        v = raw["time_limit_minutes"]
        if not isinstance(v, int) or v < 0:
            raise BankError("time_limit_minutes must be a whole number >= 0 (0: no limit)", where=where)
        meta["time_limit_minutes"] = v or None
    if "max_attempts" in raw:
        v = raw["max_attempts"]
        if not isinstance(v, int) or v < 0:
            raise BankError("max_attempts must be a whole number >= 0 (0: unlimited)", where=where)
        meta["max_attempts"] = v
    for key, allowed_values in (("review", REVIEW), ("grading", GRADING)):
        if key in raw:
            if raw[key] not in allowed_values:
                raise BankError(f"{key} must be one of {list(allowed_values)}", where=where)
            meta[key] = raw[key]
    for key in ("shuffle_questions", "shuffle_choices", "published"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise BankError(f"{key} must be true or false", where=where)
            meta[key] = raw[key]
    for key in ("opens", "closes"):
        if key in raw:
            if not isinstance(raw[key], datetime) or raw[key].tzinfo is None:
                raise BankError(f"{key} must be a TOML date-time with an offset, e.g. 2026-11-06T10:00:00+01:00",
                                where=where)
            meta[key] = raw[key].isoformat()
    return meta


def _number(value, what, where, line):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BankError(f"{what} must be a number, got {value!r}", where=where, line=line)
    return float(value)


def validate_question(raw: dict, *, where: str = "bank", line: int | None = None) -> dict:
    """Check one bank entry and return its normalised spec (also used for GIFT and the editor)."""
    if not isinstance(raw, dict):
        raise BankError("a question must be a table", where=where, line=line)
    qid = str(raw.get("id", "")).strip()
    if not KEY_RE.match(qid):
        raise BankError(f"question id {qid!r}: lowercase letters, digits, '-' and '_' (required)", where=where,
                        line=line)
    where_q = f"{where} [{qid}]"
    kind = raw.get("type")
    if kind not in KINDS:
        raise BankError(f"type must be one of {list(KINDS)}, got {kind!r}", where=where_q, line=line)
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BankError("text is required", where=where_q, line=line)
    points = _number(raw.get("points", 1), "points", where_q, line)
    if points <= 0:
        raise BankError("points must be > 0", where=where_q, line=line)
    spec = {"id": qid, "type": kind, "points": points, "text": text.strip(),
            "title": str(raw.get("title", "")).strip(), "explanation": str(raw.get("explanation", "")).strip(),
            "topic": str(raw.get("topic", "")).strip()}
    common = {"id", "type", "points", "text", "title", "explanation", "topic"}
    per_kind = {
        "single": {"choices"}, "multiple": {"choices", "rule"}, "truefalse": {"answer", "feedback_true",
                                                                           "feedback_false"},
        "numeric": {"answer", "tolerance", "rel_tolerance", "answers", "params", "let", "unit", "min", "max"},
        "short": {"answers", "answer", "regex", "case_sensitive"}, "code": {"pack", "filename", "starter"},
        "matching": {"pairs", "distractors"},
    }[kind]
    unknown = set(raw) - common - per_kind
    if unknown:
        raise BankError(f"unknown keys for a {kind} question: {sorted(unknown)}", where=where_q, line=line)

    if kind in ("single", "multiple"):
        spec.update(_validate_choices(raw, kind, where_q, line))
    elif kind == "truefalse":
        if not isinstance(raw.get("answer"), bool):
            raise BankError("answer must be true or false", where=where_q, line=line)
        spec["answer"] = raw["answer"]
        spec["feedback_true"] = str(raw.get("feedback_true", ""))
        spec["feedback_false"] = str(raw.get("feedback_false", ""))
    elif kind == "numeric":
        spec.update(_validate_numeric(raw, where_q, line))
    elif kind == "short":
        spec.update(_validate_short(raw, where_q, line))
    elif kind == "matching":
        spec.update(_validate_matching(raw, where_q, line))
    elif kind == "code":
        pack = raw.get("pack")
        if not isinstance(pack, str) or not pack.strip() or ".." in Path(pack).parts or pack.startswith("/"):
            raise BankError("pack must be a path relative to the quizzes folder, e.g. 'code/stable_softmax'",
                            where=where_q, line=line)
        spec["pack"] = pack.strip()
        spec["filename"] = str(raw.get("filename", "solution.py"))
        spec["starter"] = str(raw.get("starter", ""))
    return spec


def _validate_choices(raw, kind, where, line):
    choices = raw.get("choices")
    if not isinstance(choices, list) or len(choices) < 2:
        raise BankError("choices: at least two are needed", where=where, line=line)
    out, ids = [], set()
    for i, c in enumerate(choices):
        if isinstance(c, str):
            c = {"text": c}
        if not isinstance(c, dict) or not isinstance(c.get("text"), str) or not c["text"].strip():
            raise BankError(f"choice {i + 1} needs a text", where=where, line=line)
        extra = set(c) - {"id", "text", "correct", "weight", "feedback"}
        if extra:
            raise BankError(f"choice {i + 1}: unknown keys {sorted(extra)}", where=where, line=line)
        cid = str(c.get("id", chr(ord("a") + i) if i < 26 else f"c{i}"))
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", cid) or cid in ids:
            raise BankError(f"choice {i + 1}: id {cid!r} invalid or repeated", where=where, line=line)
        ids.add(cid)
        correct = bool(c.get("correct", False))
        if "weight" in c:
            weight = _number(c["weight"], f"choice {i + 1} weight", where, line)
            if not -1.0 <= weight <= 1.0:
                raise BankError(f"choice {i + 1}: weight must be between -1 and 1", where=where, line=line)
            correct = weight > 0
        else:
            weight = None
        out.append({"id": cid, "text": c["text"].strip(), "correct": correct, "weight": weight,
                    "feedback": str(c.get("feedback", ""))})
    n_correct = sum(c["correct"] for c in out)
    if n_correct == 0:
        raise BankError("no choice is marked correct", where=where, line=line)
    spec = {"choices": out}
    if kind == "single":
        for c in out:  # a choice without an explicit weight is worth 1 if correct, else 0
            if c["weight"] is None:
                c["weight"] = 1.0 if c["correct"] else 0.0
        if not any(c["weight"] == 1.0 for c in out):
            raise BankError("a single-choice question needs one choice worth full marks", where=where, line=line)
    else:
        rule = raw.get("rule", "weights" if any(c["weight"] is not None for c in out) else "all_or_nothing")
        if rule not in RULES:
            raise BankError(f"rule must be one of {list(RULES)}", where=where, line=line)
        if rule == "weights":
            for c in out:
                if c["weight"] is None:
                    raise BankError("rule 'weights' needs a weight on every choice", where=where, line=line)
        spec["rule"] = rule
    return spec


MAX_MATCH_ITEMS = 40


def _validate_matching(raw, where, line):
    """pairs = [{ left = "...", right = "..." }, ...] (left: Markdown, right: plain text), distractors = [...]:
    extra right-hand answers that match no item. Several items may share a right answer."""
    pairs = raw.get("pairs")
    if not isinstance(pairs, list) or len(pairs) < 2:
        raise BankError("pairs: at least two { left, right } pairs are needed", where=where, line=line)
    if len(pairs) > MAX_MATCH_ITEMS:
        raise BankError(f"pairs: at most {MAX_MATCH_ITEMS}", where=where, line=line)
    out, ids, lefts = [], set(), set()
    for i, p in enumerate(pairs):
        if isinstance(p, list) and len(p) == 2:
            p = {"left": p[0], "right": p[1]}
        if not isinstance(p, dict):
            raise BankError(f"pair {i + 1} must be a table {{ left = ..., right = ... }}", where=where, line=line)
        extra = set(p) - {"id", "left", "right"}
        if extra:
            raise BankError(f"pair {i + 1}: unknown keys {sorted(extra)}", where=where, line=line)
        left, right = p.get("left"), p.get("right")
        if not isinstance(left, str) or not left.strip() or not isinstance(right, str) or not right.strip():
            raise BankError(f"pair {i + 1} needs a left and a right text", where=where, line=line)
        left, right = left.strip(), " ".join(right.split())
        if len(right) > 200:
            raise BankError(f"pair {i + 1}: the right text is a menu entry, keep it under 200 characters",
                            where=where, line=line)
        pid = str(p.get("id", chr(ord("a") + i) if i < 26 else f"p{i}"))
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", pid) or pid in ids:
            raise BankError(f"pair {i + 1}: id {pid!r} invalid or repeated", where=where, line=line)
        if left in lefts:
            raise BankError(f"pair {i + 1}: the left text {left[:40]!r} appears twice", where=where, line=line)
        ids.add(pid)
        lefts.add(left)
        out.append({"id": pid, "left": left, "right": right})
    distractors = raw.get("distractors", [])
    if not isinstance(distractors, list) or not all(isinstance(d, str) and d.strip() for d in distractors):
        raise BankError("distractors must be a list of non-empty strings", where=where, line=line)
    rights = {p["right"] for p in out}
    extra_rights = []
    for d in distractors:
        d = " ".join(d.split())
        if d in rights:
            raise BankError(f"distractor {d[:40]!r} is also a right answer", where=where, line=line)
        if d not in extra_rights:
            extra_rights.append(d)
    if len(rights) + len(extra_rights) < 2:
        raise BankError("a matching question needs at least two different right answers", where=where, line=line)
    return {"pairs": out, "distractors": extra_rights}


def match_option_id(text: str) -> str:
    """The id of a right-hand answer in attempts: from its text only, so the page (which shows these ids
    as the menus' values) tells nothing about which item an answer belongs to."""
    return "m" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _validate_params(raw, where, line):
    params = raw.get("params", {})
    if not isinstance(params, dict):
        raise BankError("params must be a table", where=where, line=line)
    out = {}
    for name, p in params.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in expr.FUNCTIONS or name in expr.CONSTANTS:
            raise BankError(f"parameter name {name!r} is not allowed", where=where, line=line)
        if not isinstance(p, dict):
            raise BankError(f"parameter {name}: expected a table like {{ int = [1, 9] }}", where=where, line=line)
        kinds = [k for k in ("int", "uniform", "choice") if k in p]
        if len(kinds) != 1:
            raise BankError(f"parameter {name}: exactly one of int, uniform, choice", where=where, line=line)
        kind = kinds[0]
        extra = set(p) - {kind, "size", "round"}
        if extra:
            raise BankError(f"parameter {name}: unknown keys {sorted(extra)}", where=where, line=line)
        entry = {"kind": kind}
        if kind in ("int", "uniform"):
            rng = p[kind]
            if (not isinstance(rng, list) or len(rng) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                                                   for v in rng) or rng[0] > rng[1]):
                raise BankError(f"parameter {name}: {kind} = [low, high] with low <= high", where=where, line=line)
            if kind == "int" and not all(isinstance(v, int) for v in rng):
                raise BankError(f"parameter {name}: int bounds must be whole numbers", where=where, line=line)
            entry["range"] = rng
        else:
            values = p["choice"]
            if not isinstance(values, list) or not values:
                raise BankError(f"parameter {name}: choice needs a non-empty list", where=where, line=line)
            entry["values"] = values
        if "size" in p:
            size = p["size"]
            size = [size] if isinstance(size, int) else size
            if (not isinstance(size, list) or not 1 <= len(size) <= 2
                    or not all(isinstance(s, int) and 1 <= s <= 64 for s in size)):
                raise BankError(f"parameter {name}: size is n or [rows, cols] (1..64)", where=where, line=line)
            entry["size"] = size
        if "round" in p:
            if not isinstance(p["round"], int) or not 0 <= p["round"] <= 10:
                raise BankError(f"parameter {name}: round is a number of decimals 0..10", where=where, line=line)
            entry["round"] = p["round"]
        out[name] = entry
    lets = raw.get("let", {})
    if not isinstance(lets, dict) or not all(isinstance(v, str) for v in lets.values()):
        raise BankError("let must be a table of name = \"expression\"", where=where, line=line)
    return out, dict(lets)


def _validate_numeric(raw, where, line):
    params, lets = _validate_params(raw, where, line)
    answers = []
    if "answers" in raw:
        if "answer" in raw:
            raise BankError("give either answer or answers, not both", where=where, line=line)
        items = raw["answers"]
        if not isinstance(items, list) or not items:
            raise BankError("answers must be a non-empty list of tables", where=where, line=line)
    else:
        if "answer" not in raw and not ("min" in raw and "max" in raw):
            raise BankError("answer (a number or an expression) is required", where=where, line=line)
        item = {k: raw[k] for k in ("answer", "tolerance", "rel_tolerance", "min", "max") if k in raw}
        items = [item]
    for i, a in enumerate(items):
        if not isinstance(a, dict):
            raise BankError(f"answers[{i}] must be a table", where=where, line=line)
        extra = set(a) - {"answer", "tolerance", "rel_tolerance", "min", "max", "weight", "feedback"}
        if extra:
            raise BankError(f"answers[{i}]: unknown keys {sorted(extra)}", where=where, line=line)
        entry = {"weight": _number(a.get("weight", 1.0), "weight", where, line), "feedback": str(a.get("feedback", ""))}
        if "min" in a or "max" in a:
            if "answer" in a or "min" not in a or "max" not in a:
                raise BankError(f"answers[{i}]: a range needs min and max (and no answer)", where=where, line=line)
            entry["min"] = _number(a["min"], "min", where, line)
            entry["max"] = _number(a["max"], "max", where, line)
            if entry["min"] > entry["max"]:
                raise BankError(f"answers[{i}]: min > max", where=where, line=line)
        else:
            value = a.get("answer")
            if isinstance(value, str):
                unknown = expr.names_in(value) - set(params) - set(lets) - set(expr.FUNCTIONS) - set(expr.CONSTANTS)
                if unknown:
                    raise BankError(f"answer expression uses unknown names {sorted(unknown)}", where=where, line=line)
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BankError(f"answers[{i}]: answer must be a number or an expression string", where=where,
                                line=line)
            entry["answer"] = value
            tol = a.get("tolerance", 0.0)
            rel = a.get("rel_tolerance", 0.0)
            entry["tolerance"] = _number(tol, "tolerance", where, line)
            entry["rel_tolerance"] = _number(rel, "rel_tolerance", where, line)
            if entry["tolerance"] < 0 or entry["rel_tolerance"] < 0:
                raise BankError("tolerances must be >= 0", where=where, line=line)
        answers.append(entry)
    if not any(a["weight"] == 1.0 for a in answers):
        raise BankError("one numeric answer must be worth full marks (weight 1)", where=where, line=line)
    spec = {"answers": answers, "params": params, "let": lets, "unit": str(raw.get("unit", ""))}
    # Evaluate once with a fixed seed so a broken expression fails at load time, not in an attempt.
    try:
        values = draw_params(params, lets, Draw(seed_for("validate", where)))
        numeric_key(spec, values)
    except expr.ExpressionError as exc:
        raise BankError(f"expression error: {exc}", where=where, line=line) from None
    _check_placeholders(raw.get("text", ""), set(params) | set(lets), where, line)
    _check_placeholders(raw.get("explanation", ""), set(params) | set(lets), where, line)
    return spec


def _check_placeholders(text, names, where, line):
    for m in PLACEHOLDER_RE.finditer(text or ""):
        if m.group(1) not in names:
            raise BankError(f"placeholder {{{{{m.group(1)}}}}} is not a parameter or let value", where=where, line=line)
        if m.group(2) and m.group(2) not in FORMATS:
            raise BankError(f"placeholder format {m.group(2)!r} unknown (use {sorted(FORMATS)})", where=where,
                            line=line)


def _validate_short(raw, where, line):
    answers = raw.get("answers", [raw["answer"]] if "answer" in raw else [])
    regex = raw.get("regex", [])
    if isinstance(regex, str):
        regex = [regex]
    out_answers, out_regex = [], []
    for a in answers:
        if isinstance(a, str):
            a = {"text": a}
        if not isinstance(a, dict) or not isinstance(a.get("text"), str) or not a["text"].strip():
            raise BankError("short answers must be strings or {text, weight, feedback}", where=where, line=line)
        out_answers.append({"text": a["text"], "weight": _number(a.get("weight", 1.0), "weight", where, line),
                            "feedback": str(a.get("feedback", ""))})
    for r in regex:
        if isinstance(r, str):
            r = {"pattern": r}
        try:
            re.compile(r["pattern"])
        except (re.error, KeyError, TypeError) as exc:
            raise BankError(f"regex {r!r} does not compile: {exc}", where=where, line=line) from None
        out_regex.append({"pattern": r["pattern"], "weight": _number(r.get("weight", 1.0), "weight", where, line),
                          "feedback": str(r.get("feedback", ""))})
    if not out_answers and not out_regex:
        raise BankError("a short question needs answers or regex", where=where, line=line)
    if not any(a["weight"] == 1.0 for a in out_answers + out_regex):
        raise BankError("one accepted answer must be worth full marks", where=where, line=line)
    return {"answers": out_answers, "regex": out_regex, "case_sensitive": bool(raw.get("case_sensitive", False))}


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------- parameters
def draw_params(params: dict, lets: dict, draw: Draw) -> dict:
    """Draw every parameter (in the bank's order), then compute the `let` values in order."""
    values: dict = {}
    for name, p in params.items():
        count = int(np.prod(p.get("size", [1])))
        drawn = []
        for _ in range(count):
            if p["kind"] == "int":
                v = draw.integer(*p["range"])
            elif p["kind"] == "uniform":
                v = draw.uniform(*p["range"])
                v = round(v, p.get("round", 3))
            else:
                v = draw.pick(p["values"])
            drawn.append(v)
        if "size" in p:
            values[name] = drawn if len(p["size"]) == 1 else [
                drawn[r * p["size"][1]:(r + 1) * p["size"][1]] for r in range(p["size"][0])]
        else:
            values[name] = drawn[0]
    for name, source in lets.items():
        values[name] = expr.to_plain(expr.evaluate(source, values))
    return values


def _fmt_number(v) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return f"{int(v):,}".replace(",", "{,}") if abs(v) >= 10000 else str(int(v))
    return f"{v:.6g}"


def _fmt_plain(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_fmt_plain(x) for x in v) + "]"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (f"{int(v)}" if float(v).is_integer() and abs(v) < 1e15 else f"{v:.6g}")
    return str(v)


def _fmt_matrix(v, env="bmatrix") -> str:
    rows = v if v and isinstance(v[0], list) else [v]
    body = r" \\ ".join(" & ".join(_fmt_plain(x) for x in row) for row in rows)
    return rf"\begin{{{env}}} {body} \end{{{env}}}"


FORMATS = {
    "plain": _fmt_plain,
    "tex": lambda v: _fmt_matrix(v) if isinstance(v, list) else _fmt_number(v),
    "bmatrix": _fmt_matrix,
    "col": lambda v: _fmt_matrix([[x] for x in v]) if isinstance(v, list) else _fmt_number(v),
}


def substitute(text: str, values: dict) -> str:
    def repl(m):
        v = values[m.group(1)]
        return FORMATS[m.group(2) or "plain"](v)

    return PLACEHOLDER_RE.sub(repl, text or "")


def example_text_html(spec: dict) -> tuple[str, bool]:
    """(HTML, parameterised) of a question's text for staff pages (statistics, the editor's preview):
    what a sample student sees (parameters drawn with seed 0), never the raw `{{name:format}}`
    template, which Markdown and KaTeX would mangle."""
    snap = build_snapshot(spec, param_seed=0, choice_seed=0, shuffle_choices=False)
    return snap["text_html"], bool(snap["params"])


def numeric_key(spec: dict, values: dict) -> list[dict]:
    key = []
    for a in spec["answers"]:
        entry = {"weight": a["weight"], "feedback": a.get("feedback", "")}
        if "min" in a:
            entry.update(min=a["min"], max=a["max"])
        else:
            value = expr.evaluate_number(a["answer"], values)
            entry.update(value=value, tolerance=a["tolerance"], rel_tolerance=a["rel_tolerance"])
        key.append(entry)
    return key


# --------------------------------------------------------------------------- snapshots
def build_snapshot(spec: dict, *, param_seed: int, choice_seed: int, shuffle_choices: bool,
                   keep: dict | None = None) -> dict:
    """What one student sees for one question, with its answer key.

    keep: a previous snapshot of the same question (regrade): its drawn parameters are kept
    when the parameter names did not change, and its choice order is kept for the choices
    that still exist.
    """
    kind = spec["type"]
    values: dict = {}
    if kind == "numeric":
        if keep and set(keep.get("params", {})) == set(spec["params"]) | set(spec["let"]) and spec["params"]:
            base = {k: keep["params"][k] for k in spec["params"]}
            for name, source in spec["let"].items():
                base[name] = expr.to_plain(expr.evaluate(source, base))
            values = base
        else:
            values = draw_params(spec["params"], spec["let"], Draw(param_seed))
    snap = {
        "type": kind, "points": spec["points"], "title": spec.get("title", ""),
        "text_html": render_markdown(substitute(spec["text"], values)),
        "explanation_html": render_markdown(substitute(spec.get("explanation", ""), values)),
        "params": values,
    }
    if kind in ("single", "multiple"):
        choices = [{"id": c["id"], "html": render_inline(c["text"]), "correct": c["correct"],
                    "weight": c["weight"], "feedback_html": render_inline(c.get("feedback", ""))}
                   for c in spec["choices"]]
        if keep and keep.get("choices"):
            order = [c["id"] for c in keep["choices"]]
            choices.sort(key=lambda c: order.index(c["id"]) if c["id"] in order else len(order))
        elif shuffle_choices:
            choices = Draw(choice_seed).shuffled(choices)
        snap["choices"] = choices
        if kind == "multiple":
            snap["rule"] = spec["rule"]
    elif kind == "truefalse":
        snap["answer"] = spec["answer"]
        snap["feedback_true"] = render_inline(spec.get("feedback_true", ""))
        snap["feedback_false"] = render_inline(spec.get("feedback_false", ""))
    elif kind == "numeric":
        snap["answers"] = numeric_key(spec, values)
        snap["unit"] = spec.get("unit", "")
    elif kind == "short":
        snap["answers"] = spec["answers"]
        snap["regex"] = spec["regex"]
        snap["case_sensitive"] = spec["case_sensitive"]
    elif kind == "matching":
        snap.update(_matching_snapshot(spec, choice_seed, shuffle_choices, keep))
    elif kind == "code":
        snap["pack"] = spec["pack"]
        snap["filename"] = spec["filename"]
        snap["starter"] = spec["starter"]
    return snap


def _matching_snapshot(spec: dict, choice_seed: int, shuffle_items: bool, keep: dict | None) -> dict:
    """Items (left) in bank order or shuffled with the quiz's choices; the answers (right, each distinct
    text once, distractors too) always shuffled, so their order tells nothing. A regrade keeps both orders."""
    stems = [{"id": p["id"], "html": render_inline(p["left"])} for p in spec["pairs"]]
    texts = []
    for t in [p["right"] for p in spec["pairs"]] + list(spec.get("distractors", [])):
        if t not in texts:
            texts.append(t)
    options = [{"id": match_option_id(t), "text": t} for t in texts]
    if keep and keep.get("stems"):
        order = [s["id"] for s in keep["stems"]]
        stems.sort(key=lambda s: order.index(s["id"]) if s["id"] in order else len(order))
        order = [o["id"] for o in keep.get("options", [])]
        options.sort(key=lambda o: order.index(o["id"]) if o["id"] in order else len(order))
    else:
        draw = Draw(seed_for("matching", choice_seed))
        options = draw.shuffled(options)
        if shuffle_items:
            stems = draw.shuffled(stems)
    return {"stems": stems, "options": options,
            "key": {p["id"]: match_option_id(p["right"]) for p in spec["pairs"]}}


def matching_rows(snap: dict, response: dict | None) -> list[dict]:
    """One row per item for the attempt page: its menu with the student's choice selected."""
    chosen = (response or {}).get("matches", {})
    return [{"id": s["id"], "html": s["html"],
             "options": [{"value": f"{s['id']}:{o['id']}", "text": o["text"],
                          "selected": chosen.get(s["id"]) == o["id"]} for o in snap["options"]]}
            for s in snap["stems"]]


def matching_review(snap: dict, response: dict | None) -> list[dict]:
    """One row per item for the review: the answer given, the right one, and whether they agree."""
    chosen = (response or {}).get("matches", {})
    text = {o["id"]: o["text"] for o in snap["options"]}
    return [{"html": s["html"], "given": text.get(chosen.get(s["id"]), ""),
             "correct": text.get(snap["key"][s["id"]], ""), "ok": chosen.get(s["id"]) == snap["key"][s["id"]]}
            for s in snap["stems"]]


# --------------------------------------------------------------------------- student input
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FRACTION_RE = re.compile(r"^([+-]?\d+)\s*/\s*(\d+)$")


def parse_number(raw: str) -> float:
    """Accepted: 0.5, -3, .5, 5e-1, 1.2E+3, 1/2 (integer fraction), 1 000 000 or 1_000_000 (spaces/underscores
    between digits). A decimal comma ('0,5') is accepted when there is exactly one comma and no dot.
    Refused with a message: text, nan/inf, empty."""
    text = (raw or "").strip().replace("\u2212", "-")
    if not text:
        raise AnswerError("Enter a number.")
    if len(text) > 64:
        raise AnswerError("That is too long to be a number.")
    compact = re.sub(r"(?<=\d)[ _](?=\d)", "", text)
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3}){2,}(\.\d+)?", compact) or re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+\.\d+", compact):
        compact = compact.replace(",", "")  # thousands separators: 4,194,304 or 1,234.5
    if compact.count(",") == 1 and "." not in compact and _NUMBER_RE.match(compact.replace(",", ".")):
        compact = compact.replace(",", ".")
    m = _FRACTION_RE.match(compact)
    if m:
        if int(m.group(2)) == 0:
            raise AnswerError("Division by zero is not a number.")
        return float(Fraction(int(m.group(1)), int(m.group(2))))
    if not _NUMBER_RE.match(compact):
        raise AnswerError(f"“{text[:30]}” is not a number. Write e.g. 0.25, 2.5e-3 or 1/4.")
    value = float(compact)
    if not math.isfinite(value):
        raise AnswerError("That number is too large.")
    return value


def clean_response(snap: dict, data: dict) -> dict | None:
    """Validate raw form data (a dict of lists, like QueryDict.lists()) for one question.

    Returns the response to store, None for "no answer", or raises AnswerError.
    """
    kind = snap["type"]

    def one(name):
        values = data.get(name) or []
        if len(values) > 1:
            raise AnswerError("Only one answer is allowed here.")
        return values[0] if values else None

    if kind == "single":
        choice = one("choice")
        if choice in (None, ""):
            return None
        if choice not in {c["id"] for c in snap["choices"]}:
            raise AnswerError("That choice is not part of this question.")
        return {"choice": choice}
    if kind == "multiple":
        chosen = [c for c in data.get("choice", []) if c != ""]
        valid = {c["id"] for c in snap["choices"]}
        if any(c not in valid for c in chosen):
            raise AnswerError("That choice is not part of this question.")
        if len(set(chosen)) != len(chosen):
            raise AnswerError("A choice was sent twice.")
        order = [c["id"] for c in snap["choices"]]
        return {"choices": sorted(chosen, key=order.index)}
    if kind == "truefalse":
        value = one("value")
        if value in (None, ""):
            return None
        if value not in ("true", "false"):
            raise AnswerError("Answer true or false.")
        return {"value": value == "true"}
    if kind == "numeric":
        raw = one("value")
        if raw is None or not raw.strip():
            return None
        return {"raw": raw.strip()[:64], "value": parse_number(raw)}
    if kind == "short":
        text = one("text")
        if text is None or not text.strip():
            return None
        if len(text) > 500:
            raise AnswerError("Keep the answer under 500 characters.")
        return {"text": text}
    if kind == "matching":
        values = [v for v in data.get("match", []) if v != ""]
        if len(values) > len(snap["stems"]):
            raise AnswerError("More answers than items were sent.")
        stems = {s["id"] for s in snap["stems"]}
        options = {o["id"] for o in snap["options"]}
        matches = {}
        for v in values:
            stem, _, option = str(v).partition(":")
            if stem not in stems or option not in options:
                raise AnswerError("That answer is not part of this question.")
            if stem in matches:
                raise AnswerError("An item was answered twice.")
            matches[stem] = option
        return {"matches": matches} if matches else None
    if kind == "code":
        code = one("code")
        if code is None or not code.strip():
            return None
        if len(code) > MAX_RESPONSE_CHARS:
            raise AnswerError(f"Code is limited to {MAX_RESPONSE_CHARS} characters.")
        return {"code": code.replace("\r\n", "\n")}
    raise AnswerError("Unknown question type.")


# --------------------------------------------------------------------------- grading
def normalise_text(text: str) -> str:
    import unicodedata

    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[-_‐–—]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip(" .,;:!?\"'`")


def grade(snap: dict, response: dict | None) -> tuple[float, str]:
    """(fraction in [0, 1], feedback Markdown/HTML) for one non-code answer."""
    kind = snap["type"]
    if response is None:
        return 0.0, "No answer."
    if kind == "single":
        for c in snap["choices"]:
            if c["id"] == response.get("choice"):
                return max(0.0, min(1.0, c["weight"])), c.get("feedback_html", "")
        return 0.0, ""
    if kind == "multiple":
        chosen = set(response.get("choices", []))
        choices = snap["choices"]
        feedback = " ".join(c["feedback_html"] for c in choices if c["id"] in chosen and c.get("feedback_html"))
        rule = snap.get("rule", "all_or_nothing")
        correct = {c["id"] for c in choices if c["correct"]}
        if rule == "all_or_nothing":
            return (1.0 if chosen == correct else 0.0), feedback
        if rule == "right_minus_wrong":
            right = len(chosen & correct)
            wrong = len(chosen - correct)
            return max(0.0, (right - wrong) / len(correct)), feedback
        total = sum(c["weight"] for c in choices if c["id"] in chosen)
        return max(0.0, min(1.0, total)), feedback
    if kind == "truefalse":
        ok = response.get("value") == snap["answer"]
        fb = snap["feedback_true"] if response.get("value") else snap["feedback_false"]
        return (1.0 if ok else 0.0), fb
    if kind == "numeric":
        x = float(response["value"])
        best, fb = 0.0, ""
        for a in snap["answers"]:
            if numeric_matches(x, a) and a["weight"] > best:
                best, fb = a["weight"], a.get("feedback", "")
        return max(0.0, min(1.0, best)), render_inline(fb)
    if kind == "short":
        given = response.get("text", "")
        best, fb = 0.0, ""
        for a in snap["answers"]:
            ok = (given.strip() == a["text"].strip()) if snap["case_sensitive"] else (
                normalise_text(given) == normalise_text(a["text"]))
            if ok and a["weight"] > best:
                best, fb = a["weight"], a["feedback"]
        flags = 0 if snap["case_sensitive"] else re.IGNORECASE
        candidate = re.sub(r"\s+", " ", given.strip()).rstrip(".,;:!?").strip()
        for r in snap["regex"]:
            if re.fullmatch(r["pattern"], candidate, flags) and r["weight"] > best:
                best, fb = r["weight"], r["feedback"]
        return max(0.0, min(1.0, best)), render_inline(fb)
    if kind == "matching":
        # Partial credit per pair: each item matched right is worth 1/(number of items); no penalty.
        matches = response.get("matches", {})
        key = snap["key"]
        right = sum(1 for stem, option in key.items() if matches.get(stem) == option)
        return right / len(key), ""
    raise ValueError(f"grade() does not handle {kind}")


def numeric_matches(x: float, a: dict) -> bool:
    if "min" in a:
        return a["min"] <= x <= a["max"]
    allowed = max(a["tolerance"], a["rel_tolerance"] * abs(a["value"]))
    # A tiny floor absorbs binary rounding of exactly-typed answers (0.1 + 0.2).
    return abs(x - a["value"]) <= allowed + 1e-12 * max(1.0, abs(a["value"]))


def _fmt_answer(v: float) -> str:
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}"


def correct_answer_text(snap: dict) -> str:
    kind = snap["type"]
    if kind in ("single", "multiple"):
        return ", ".join(c["html"] for c in snap["choices"] if c["correct"])
    if kind == "truefalse":
        return "True" if snap["answer"] else "False"
    if kind == "numeric":
        parts = []
        for a in snap["answers"]:
            if a["weight"] != 1.0:
                continue
            if "min" in a:
                parts.append(f"between {_fmt_plain(a['min'])} and {_fmt_plain(a['max'])}")
            else:
                tol = max(a["tolerance"], a["rel_tolerance"] * abs(a["value"]))
                parts.append(_fmt_answer(a["value"]) + (f" (± {tol:.3g})" if tol else ""))
        return " or ".join(parts) + (f" {snap.get('unit')}" if snap.get("unit") else "")
    if kind == "short":
        import html

        texts = [html.escape(a["text"]) for a in snap["answers"] if a["weight"] == 1.0]
        return " / ".join(texts) if texts else "(pattern) <code>" + html.escape(snap["regex"][0]["pattern"]) + "</code>"
    if kind == "matching":
        import html

        text = {o["id"]: o["text"] for o in snap["options"]}
        return "; ".join(f"{s['html']} → {html.escape(text[snap['key'][s['id']]])}" for s in snap["stems"])
    return ""
