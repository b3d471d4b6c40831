"""Moodle GIFT import: GIFT text -> the same question specs the TOML banks produce.

Supported (as Moodle documents GIFT): multiple choice (= right, ~ wrong, ~%50% partial
credit, ~%-25% penalty; several positive ~%..% answers and no = make a multiple-answer
question), true/false ({T} {F} {TRUE} {FALSE}, with #wrong-feedback#right-feedback), short
answer ({=a =b =%50%c}), numeric ({#3.14:0.01}, {#1..5}, several {#=..} answers with weights),
missing-word questions (text after the answer block), matching ({=left -> right ...}, an empty
left side adds a distractor), feedback after # (continuation lines lose the indentation that lays
the file out), general feedback (####), comments (// lines), titles (::title::), categories
($CATEGORY: a/b), escapes (\\~ \\= \\# \\{ \\} \\: \\n \\\\) and the [markdown] [html] [plain] [moodle]
format markers.
Not supported: essays ({}), description-only items. A question that cannot be imported (one of
these, or a mistake in it) is skipped and reported with its line; the rest of the file imports.
"""
from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass, field

from . import bank
from courseplatform.core.markdown import sanitize

# An escaped backslash (\\ in the file) first: \\= is a backslash followed by the = control character.
ESCAPES = {"\\\\": "\u0007",
           "\\~": "\u0001", "\\=": "\u0002", "\\#": "\u0003", "\\{": "\u0004", "\\}": "\u0005", "\\:": "\u0006",
           "\\n": "\n"}
UNESCAPE = {"\u0007": "\\", "\u0001": "~", "\u0002": "=", "\u0003": "#", "\u0004": "{", "\u0005": "}", "\u0006": ":"}
WEIGHT_RE = re.compile(r"^%(-?\d+(?:\.\d+)?)%")


class GiftError(ValueError):
    def __init__(self, line: int, message: str, excerpt: str = ""):
        self.line = line
        self.message = message
        self.excerpt = excerpt
        super().__init__(f"line {line}: {message}")

    def describe(self) -> str:
        """The line, the start of the question and what is wrong, for the import's report."""
        return f"line {self.line}" + (f" ({self.excerpt})" if self.excerpt else "") + f": {self.message}"


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
    """Questions are separated by blank lines; // comment lines are dropped; $CATEGORY sets the category.

    A blank line inside an answer block {...} does not end the question. An answer block that is
    never closed would swallow the rest of the file: the question then ends at its first blank line
    (it is reported as unclosed) and the questions after it are read as usual."""
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[Block] = []
    category, i = "", 0
    while i < len(lines):
        current, start, depth, gaps = [], 0, 0, []
        restart = None
        while i < len(lines):
            n, line = i + 1, lines[i]
            i += 1
            stripped = line.strip()
            if stripped.startswith("//"):
                continue
            if not current and stripped.startswith("$CATEGORY:"):
                category = stripped[len("$CATEGORY:"):].strip()
                continue
            if not stripped:
                if depth == 0:
                    if current:
                        break
                    continue
                if current:
                    gaps.append((len(current), i - 1))
            if not current:
                start = n
            current.append(line)
            escaped = _escape(line)
            depth = max(0, depth + escaped.count("{") - escaped.count("}"))
        else:
            if depth > 0 and gaps:  # never closed: end this question at its first blank line
                cut, restart = gaps[0]
                current = current[:cut]
        if current:
            blocks.append(Block("\n".join(current), start, category))
        if restart is not None:
            i = restart
    return blocks


def _line_of(block: Block, offset_text: str) -> int:
    return block.line + offset_text.count("\n")


def _tidy_lines(text: str) -> str:
    """Feedback and answers written over several lines keep the words, not the indentation that lays out
    the file: continuation lines lose their common leading whitespace (relative indentation stays)."""
    first, _, rest = text.strip().partition("\n")
    if not rest:
        return first
    rest = textwrap.dedent("\n".join(line.rstrip() for line in rest.split("\n")))
    return first.rstrip() + "\n" + rest.strip("\n")


def _format_text(text: str, fmt: str, *, stem: bool = False) -> str:
    text = _unescape(text).strip()
    if not stem:
        text = _tidy_lines(text)
    if fmt == "html":
        # Keep the HTML's structure for Markdown rendering (raw HTML passes through Markdown and is cleaned again).
        return sanitize(text, "quiz")
    if fmt == "plain":
        return _literal_start(html.escape(text, quote=False))
    if fmt == "moodle":
        return _literal_start(text)
    return text


_BLOCK_START = re.compile(r"^(?:#{1,6}|[-+*>])(?=\s|$)|^\d+(?=[.)](?:\s|$))")


def _literal_start(text: str) -> str:
    """Moodle's own text format is not Markdown: an answer "#" or "- 1" must show as written, not as an
    (empty) heading or a list, so a leading Markdown block marker is escaped."""
    m = _BLOCK_START.match(text)
    if not m:
        return text
    if m.group(0)[0].isdigit():
        return text[:m.end()] + "\\" + text[m.end():]
    return "\\" + text


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:60] or "q"


@dataclass
class GiftParse:
    """The questions of a GIFT file that can be imported, and the ones skipped (each with its line)."""

    questions: list[dict] = field(default_factory=list)
    skipped: list[GiftError] = field(default_factory=list)


def _excerpt(block: Block) -> str:
    text = " ".join(_unescape(block.text).split())
    return f"“{text[:57]}…”" if len(text) > 60 else f"“{text}”"


def parse_gift(source: str, *, default_points: float = 1.0) -> GiftParse:
    """Every question that can be taken; one that cannot is skipped and listed with its line, and
    never stops the others. Raises GiftImportErrors only when nothing at all can be imported."""
    result, keys = GiftParse(), set()
    for number, block in enumerate(split_blocks(source), start=1):
        try:
            raw = _parse_block(block, number)
        except GiftError as exc:
            exc.excerpt = _excerpt(block)
            result.skipped.append(exc)
            continue
        if raw is None:
            continue
        key = raw["id"]
        suffix = 2
        while raw["id"] in keys:
            raw["id"] = f"{key[:70]}-{suffix}"
            suffix += 1
        raw.setdefault("points", default_points)
        try:
            spec = bank.validate_question(raw, where="GIFT")
        except bank.BankError as exc:
            result.skipped.append(GiftError(block.line, str(exc).replace("GIFT", "").lstrip(" :").strip(),
                                            _excerpt(block)))
            continue
        keys.add(raw["id"])
        result.questions.append(spec)
    if not result.questions:
        raise GiftImportErrors(result.skipped or [GiftError(1, "no questions found")])
    return result


class GiftImportErrors(ValueError):
    """Nothing in the file could be imported: every question's error, by line."""

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
    stem = _format_text(before, fmt, stem=True)
    tail = _format_text(after, fmt, stem=True)
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
    if body.startswith("#"):
        raw.update(_numeric(body[1:], line, fmt))
        return raw
    if "->" in body and "~" not in body:  # Moodle's order: ~ makes it multiple choice whatever else is there
        raw.update(_matching(body, line, fmt))
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


def _matching(body: str, line: int, fmt: str) -> dict:
    """{=left -> right =left -> right ...}: at least two pairs; `= -> text` (no left side) adds a right
    answer that matches no item. The right sides are plain text (menu entries), as in Moodle."""
    parts = body.split("=")
    if parts[0].strip():
        raise GiftError(line, f"unexpected text {_unescape(parts[0].strip())[:30]!r} before the first = pair")
    pairs, distractors = [], []
    for chunk in parts[1:]:
        if "->" not in chunk:
            raise GiftError(line, f"matching pairs are written =left -> right; {_unescape(chunk.strip())[:30]!r} "
                                  "has no ->")
        left, right = chunk.split("->", 1)
        left = _format_text(left, fmt)
        right = " ".join(_unescape(right).split())
        if not right:
            raise GiftError(line, f"the pair {left[:30]!r} -> has no right side")
        if left:
            pairs.append({"left": left, "right": right})
        else:
            distractors.append(right)
    if len(pairs) < 2:
        raise GiftError(line, "a matching question needs at least two pairs =left -> right")
    out = {"type": "matching", "pairs": pairs}
    if distractors:
        out["distractors"] = distractors
    return out


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
