"""Moodle GIFT import: GIFT text -> the same question specs the TOML banks produce.

Supported (as Moodle documents GIFT): multiple choice (= right, ~ wrong, ~%50% partial
credit, ~%-25% penalty; several positive ~%..% answers and no = make a multiple-answer
question), true/false ({T} {F} {TRUE} {FALSE}, with #wrong-feedback#right-feedback), short
answer ({=a =b =%50%c}), numeric ({#3.14:0.01}, {#1..5}, several {#=..} answers with weights),
missing-word questions (text after the answer block), feedback after #, general feedback
(####), comments (// lines), titles (::title::), categories ($CATEGORY: a/b), escapes
(\\~ \\= \\# \\{ \\} \\: \\n) and the [markdown] [html] [plain] [moodle] format markers.
Not supported, refused with the line: essays ({}), matching (->), description-only items.
Errors name the line; a file with any error imports nothing.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

from . import bank
from courseplatform.courses.markdown import sanitize

ESCAPES = {"\\~": "\u0001", "\\=": "\u0002", "\\#": "\u0003", "\\{": "\u0004", "\\}": "\u0005", "\\:": "\u0006",
           "\\n": "\n"}
UNESCAPE = {"\u0001": "~", "\u0002": "=", "\u0003": "#", "\u0004": "{", "\u0005": "}", "\u0006": ":"}
WEIGHT_RE = re.compile(r"^%(-?\d+(?:\.\d+)?)%")


class GiftError(ValueError):
    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(f"line {line}: {message}")


@dataclass
class Block:
    text: str
    line: int
    category: str


def _escape(text: str) -> str:
    for k, v in ESCAPES.items():
        text = text.replace(k, v)
    return text


def _unescape(text: str) -> str:
    for k, v in UNESCAPE.items():
        text = text.replace(k, v)
    return text


def split_blocks(source: str) -> list[Block]:
    """Questions are separated by blank lines; // comment lines are dropped; $CATEGORY sets the category."""
    blocks, current, start, category = [], [], 0, ""
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    depth = 0
    for n, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("//"):
            continue
        if not current and stripped.startswith("$CATEGORY:"):
            category = stripped[len("$CATEGORY:"):].strip()
            continue
        if not stripped and depth == 0:
            if current:
                blocks.append(Block("\n".join(current), start, category))
                current = []
            continue
        if not current:
            start = n
        current.append(line)
        escaped = _escape(line)
        depth += escaped.count("{") - escaped.count("}")
    if current:
        blocks.append(Block("\n".join(current), start, category))
    return blocks


def _line_of(block: Block, offset_text: str) -> int:
    return block.line + offset_text.count("\n")


def _format_text(text: str, fmt: str) -> str:
    text = _unescape(text).strip()
    if fmt == "html":
        # Keep the HTML's structure for Markdown rendering (raw HTML passes through Markdown and is cleaned again).
        return sanitize(text, "quiz")
    if fmt == "plain":
        return html.escape(text, quote=False)
    return text


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:60] or "q"


def parse_gift(source: str, *, default_points: float = 1.0) -> list[dict]:
    questions, keys, errors = [], set(), []
    for number, block in enumerate(split_blocks(source), start=1):
        try:
            raw = _parse_block(block, number)
        except GiftError as exc:
            errors.append(exc)
            continue
        if raw is None:
            continue
        key = raw["id"]
        suffix = 2
        while raw["id"] in keys:
            raw["id"] = f"{key[:70]}-{suffix}"
            suffix += 1
        keys.add(raw["id"])
        raw.setdefault("points", default_points)
        try:
            questions.append(bank.validate_question(raw, where="GIFT"))
        except bank.BankError as exc:
            errors.append(GiftError(block.line, str(exc).replace("GIFT", "").lstrip(" :").strip()))
    if errors:
        raise GiftImportErrors(errors)
    if not questions:
        raise GiftImportErrors([GiftError(1, "no questions found")])
    return questions


class GiftImportErrors(ValueError):
    def __init__(self, errors: list[GiftError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


def _parse_block(block: Block, number: int) -> dict | None:
    text = _escape(block.text)
    title = ""
    m = re.match(r"^\s*::(.*?)::", text, re.DOTALL)
    if m:
        title = _unescape(m.group(1)).strip()
        text = text[m.end():]
    fmt = "moodle"
    m = re.match(r"^\s*\[(markdown|html|plain|moodle)\]", text)
    if m:
        fmt = m.group(1)
        text = text[m.end():]
    open_at = text.find("{")
    if open_at < 0:
        raise GiftError(block.line, "no answer block {...} (description-only items are not imported)")
    close_at = text.find("}", open_at)
    if close_at < 0:
        raise GiftError(_line_of(block, text[:open_at]), "answer block opened with { is never closed")
    if text.find("{", open_at + 1, close_at) >= 0:
        raise GiftError(_line_of(block, text[:open_at]), "a { inside an answer block must be escaped as \\{")
    before, answer, after = text[:open_at], text[open_at + 1:close_at], text[close_at + 1:]
    if "{" in after or "}" in after:
        raise GiftError(_line_of(block, text[:close_at]), "only one answer block per question (escape literal braces)")
    line = _line_of(block, before)
    stem = _format_text(before, fmt)
    tail = _format_text(after, fmt)
    if not stem and not tail:
        raise GiftError(block.line, "the question has no text")
    if tail:  # missing-word format
        stem = f"{stem} \\_\\_\\_\\_\\_ {tail}"
    key = _slug(title) if title else f"q{number}"
    raw = {"id": key, "title": title, "text": stem}
    if block.category:
        raw["topic"] = block.category
    answer, general = _split_general_feedback(answer)
    if general:
        raw["explanation"] = _format_text(general, fmt)
    body = answer.strip()
    if not body:
        raise GiftError(line, "essay questions ({}) are not supported")
    if "->" in body:
        raise GiftError(line, "matching questions (->) are not supported")
    if body.startswith("#"):
        raw.update(_numeric(body[1:], line, fmt))
        return raw
    tf = re.match(r"^(T|F|TRUE|FALSE)\s*(#.*)?$", body, re.DOTALL)
    if tf:
        value = tf.group(1) in ("T", "TRUE")
        feedbacks = (tf.group(2) or "").split("#")[1:]
        wrong = _format_text(feedbacks[0], fmt) if len(feedbacks) > 0 else ""
        right = _format_text(feedbacks[1], fmt) if len(feedbacks) > 1 else ""
        raw.update(type="truefalse", answer=value,
                   feedback_true=right if value else wrong, feedback_false=wrong if value else right)
        return raw
    items = _answer_items(body, line)
    if not items:
        raise GiftError(line, "no answers in the answer block")
    if all(sign == "=" for sign, *_ in items):
        answers = []
        for _, weight, text_, fb in items:
            answers.append({"text": _unescape(text_).strip(), "weight": 1.0 if weight is None else weight / 100,
                            "feedback": _format_text(fb, fmt)})
        raw.update(type="short", answers=answers)
        return raw
    n_right = sum(1 for sign, w, *_ in items if sign == "=" and w is None)
    positives = [w for sign, w, *_ in items if sign == "~" and w is not None and w > 0]
    choices = []
    for sign, weight, text_, fb in items:
        if sign == "=":
            w = 1.0 if weight is None else weight / 100
        else:
            w = 0.0 if weight is None else weight / 100
        choices.append({"text": _format_text(text_, fmt) or "(empty)", "weight": w, "feedback": _format_text(fb, fmt)})
    if n_right == 0 and positives:
        raw.update(type="multiple", choices=choices, rule="weights")
        if abs(sum(positives) - 100) > 1:
            raise GiftError(line, f"the positive weights of a multiple-answer question add up to {sum(positives):g}%, "
                                  "not 100%")
    else:
        if n_right > 1:
            raise GiftError(line, "several = answers in a multiple-choice question: use ~%50% weights instead")
        if not any(c["weight"] == 1.0 for c in choices):
            raise GiftError(line, "no answer marked right with = (or ~%100%)")
        raw.update(type="single", choices=choices)
    return raw


def _split_general_feedback(answer: str) -> tuple[str, str]:
    if "####" in answer:
        body, general = answer.split("####", 1)
        return body, general
    return answer, ""


_ITEM_RE = re.compile(r"([=~])")


def _answer_items(body: str, line: int) -> list[tuple[str, float | None, str, str]]:
    parts = _ITEM_RE.split(body)
    if parts[0].strip():
        raise GiftError(line, f"unexpected text {_unescape(parts[0].strip())[:30]!r} before the first = or ~ answer")
    items = []
    for sign, chunk in zip(parts[1::2], parts[2::2]):
        weight = None
        chunk = chunk.strip()
        m = WEIGHT_RE.match(chunk)
        if m:
            weight = float(m.group(1))
            if not -100 <= weight <= 100:
                raise GiftError(line, f"weight {weight:g}% is outside -100..100")
            chunk = chunk[m.end():]
        text_, _, fb = chunk.partition("#")
        if not text_.strip():
            raise GiftError(line, "an empty answer after " + sign)
        items.append((sign, weight, text_.strip(), fb.strip()))
    return items


def _num(text: str, line: int) -> float:
    try:
        return float(_unescape(text).strip())
    except ValueError:
        raise GiftError(line, f"{_unescape(text).strip()!r} is not a number") from None


def _numeric_answer(text: str, line: int, fmt: str, weight: float) -> dict:
    text, _, fb = text.partition("#")
    text = _unescape(text).strip()
    entry: dict = {"weight": weight, "feedback": _format_text(fb, fmt)}
    if ".." in text:
        lo, hi = text.split("..", 1)
        entry.update(min=_num(lo, line), max=_num(hi, line))
        if entry["min"] > entry["max"]:
            raise GiftError(line, f"range {text} has min > max")
    elif ":" in text:
        value, tol = text.split(":", 1)
        entry.update(answer=_num(value, line), tolerance=abs(_num(tol, line)))
    else:
        entry.update(answer=_num(text, line), tolerance=0.0)
    return entry


def _numeric(body: str, line: int, fmt: str) -> dict:
    body = body.strip()
    if not body:
        raise GiftError(line, "a numeric answer block {#} needs a number")
    if body.startswith("="):
        answers = []
        for sign, weight, text_, fb in _answer_items(body, line):
            if sign != "=":
                raise GiftError(line, "numeric answers are written =value:tolerance (no ~)")
            answers.append(_numeric_answer(text_ + ("#" + fb if fb else ""), line, fmt,
                                           1.0 if weight is None else weight / 100))
    else:
        answers = [_numeric_answer(body, line, fmt, 1.0)]
    return {"type": "numeric", "answers": answers}
