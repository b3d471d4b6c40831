"""Formulas the site cannot typeset, found when a bank is loaded (issue 28).

The browser typesets only what the Markdown renderer marked as math (`$...$`, `$$...$$`) with the
KaTeX shipped in static/katex. Two things go wrong silently there, so `sync_course` refuses them
with the question's id and the line:

- TeX outside math: `\\begin{bmatrix}` (e.g. a `{{w:bmatrix}}` placeholder written outside `$...$`)
  or `\\frac` in plain text is shown raw to students;
- a command or environment this KaTeX does not know, a `\\begin` without its `\\end`, or unbalanced
  braces: KaTeX shows the formula in red instead of typesetting it.

The commands and environments KaTeX knows are read from static/katex/katex.min.js itself (its
function, symbol and macro tables), so upgrading KaTeX updates the check.
"""
from __future__ import annotations

import re
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path


KATEX_JS = Path(__file__).resolve().parents[1] / "static" / "katex" / "katex.min.js"

_COMMAND = re.compile(r"\\([A-Za-z]+)")
_ENV = re.compile(r"\\(begin|end)\s*\{([^}]*)\}")
# TeX in plain text: a command that is not an escaped Markdown character (\* \_ \$ are fine).
_TEX_IN_TEXT = re.compile(r"\\(begin|end)\s*\{[A-Za-z*]+\}|\\(frac|sqrt|sum|prod|cdot|times|top|mathbf|mathrm|"
                          r"text|left|right|alpha|beta|gamma|theta|lambda|mu|sigma|epsilon|varepsilon|log|exp|"
                          r"in|leq|geq|neq|approx|infty|partial|nabla|hat|bar|vec|operatorname)(?![A-Za-z])")


@lru_cache(maxsize=1)
def katex_vocabulary() -> tuple[frozenset, frozenset]:
    """(commands, environments) defined in the shipped KaTeX."""
    path = KATEX_JS
    source = path.read_text(encoding="utf-8")
    commands = frozenset(m.group(1) for m in re.finditer(r'"\\\\([A-Za-z]+)"', source))
    environments = set()
    for m in re.finditer(r"names:\[([^\]]*)\]", source):
        environments |= {n for n in re.findall(r'"([A-Za-z*]+)"', m.group(1))}
    return commands, frozenset(environments)


class _Split(HTMLParser):
    """The rendered HTML's math elements (their TeX) and the text outside them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.math: list[str] = []
        self.text: list[str] = []
        self._depth = 0  # > 0 inside a .math element
        self._code = 0  # inside <code>/<pre>: TeX there is shown as code on purpose

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if self._depth:
            self._depth += 1
        elif "math" in classes:
            self._depth = 1
            self.math.append("")
        if tag in ("code", "pre"):
            self._code += 1

    def handle_endtag(self, tag):
        if self._depth:
            self._depth -= 1
        if tag in ("code", "pre") and self._code:
            self._code -= 1

    def handle_data(self, data):
        if self._depth:
            self.math[-1] += data
        elif not self._code:
            self.text.append(data)


def _strip_delimiters(tex: str) -> str:
    tex = tex.strip()
    if tex.startswith("$$") and tex.endswith("$$") and len(tex) >= 4:
        return tex[2:-2]
    if tex.startswith("$") and tex.endswith("$") and len(tex) >= 2:
        return tex[1:-1]
    return tex


def tex_problems(tex: str) -> list[str]:
    """What KaTeX could not typeset in one formula (without its dollars)."""
    commands, environments = katex_vocabulary()
    problems = []
    unknown = sorted({c for c in _COMMAND.findall(tex) if c not in commands})
    if unknown:
        problems.append("KaTeX does not know " + ", ".join("\\" + c for c in unknown))
    stack = []
    for kind, env in _ENV.findall(tex):
        if env not in environments:
            problems.append(f"KaTeX has no environment {{{env}}}")
        elif kind == "begin":
            stack.append(env)
        elif not stack or stack.pop() != env:
            problems.append(f"\\end{{{env}}} without its \\begin{{{env}}}")
    if stack:
        problems.append(f"\\begin{{{stack[-1]}}} without \\end{{{stack[-1]}}}")
    depth = 0
    for i, ch in enumerate(tex):
        if ch in "{}" and i and tex[i - 1] == "\\":
            continue
        depth += 1 if ch == "{" else -1 if ch == "}" else 0
        if depth < 0:
            break
    if depth:
        problems.append("unbalanced braces { }")
    return problems


def html_problems(html: str) -> list[str]:
    """Problems in one rendered field (the HTML students get): TeX outside math, bad formulas."""
    split = _Split()
    split.feed(html or "")
    problems = []
    outside = "".join(split.text)
    m = _TEX_IN_TEXT.search(outside)
    if m:
        problems.append(f"TeX outside $...$: '{m.group(0)}' is shown raw (KaTeX typesets only $...$ and $$...$$)")
    for formula in split.math:
        for p in tex_problems(_strip_delimiters(formula)):
            problems.append(f"{p} in ${_strip_delimiters(formula).strip()[:60]}$")
    return problems


def _fields(spec: dict, snap: dict) -> list[tuple[str, str, str]]:
    """(bank key, raw text, rendered HTML) of every field a student may see."""
    out = [("text", spec.get("text", ""), snap.get("text_html", "")),
           ("explanation", spec.get("explanation", ""), snap.get("explanation_html", ""))]
    raw_choices = {c["id"]: c for c in spec.get("choices", [])}
    for c in snap.get("choices") or []:
        raw = raw_choices.get(c.get("id"), {})
        out.append(("choices", raw.get("text", ""), c.get("html", "")))
        out.append(("choices", raw.get("feedback", ""), c.get("feedback_html", "")))
    return out


def _line_of(key: str, raw: str, source_lines: list[str] | None, start: int | None, problem: str) -> int | None:
    """The file line of the problem: the field's first line, plus the line inside a multi-line value."""
    if not source_lines or not start:
        return start
    end = next((n for n in range(start, len(source_lines)) if source_lines[n].strip() == "[[question]]"),
               len(source_lines))
    field_line = next((n + 1 for n in range(start - 1, end) if re.match(rf"\s*{key}\s*=", source_lines[n])), start)
    if key == "choices":  # the choice's own line
        snippet = raw.strip().splitlines()[0][:40] if raw.strip() else ""
        return next((n + 1 for n in range(start - 1, end) if snippet and snippet in source_lines[n]), field_line)
    token = re.search(r"'([^']+)'", problem)
    needles = []
    if token:
        needles.append(token.group(1))
    if "bmatrix" in problem or "begin" in problem:
        needles.append("{{")
    for needle in needles:
        for n in range(field_line - 1, end):
            if needle in source_lines[n]:
                return n + 1
    return field_line


def check_question(spec: dict, *, where: str, line: int | None, source: str | None = None) -> None:
    """Raise BankError for the first field of this question that the site cannot typeset."""
    from .bank import BankError, build_snapshot

    try:
        snap = build_snapshot(spec, param_seed=0, choice_seed=0, shuffle_choices=False)
    except Exception:  # noqa: BLE001 - a question that cannot be drawn is reported by its own checks
        return
    lines = source.splitlines() if source else None
    for key, raw, html in _fields(spec, snap):
        problems = html_problems(html)
        if problems:
            at = _line_of(key, raw, lines, line, problems[0])
            raise BankError(f"{key}: {problems[0]}", where=f"{where} [{spec['id']}]", line=at)
