"""The literature-review template and its structure check.

A literature review is Markdown with one section per source:

    ## Source: Attention Is All You Need
    **Reference:** Vaswani et al., NeurIPS 2017. https://arxiv.org/abs/1706.03762
    **Objective:** What question the paper answers.
    **Method:** How they answer it (model, data, experiments).
    **Outcome:** What they found, and what it means for our project.

Rules (checked before submitting and again on submit):
  * a section starts with a level-2 heading `## Source: <title>` (the title may not be empty);
  * each section needs non-empty `Objective`, `Method` and `Outcome` fields, written as
    `**Objective:** text` (also accepted: `**Objective**: text`, `Objective: text`), the text may
    continue on the following lines until the next field or heading, and must have at least
    MIN_WORDS words;
  * `Reference` is optional but recommended;
  * the delivery must contain at least `min_sources` complete sources.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from courseplatform.core import markdown

REQUIRED_FIELDS = ("Objective", "Method", "Outcome")
OPTIONAL_FIELDS = ("Reference",)
MIN_WORDS = 3

TEMPLATE = """# Literature review

## Source: <title of the paper>
**Reference:** <authors, venue, year, link>
**Objective:** <what question does the work answer?>
**Method:** <how: model, data, experiments>
**Outcome:** <what did they find, and what does it mean for our project?>

## Source: <title of the next paper>
**Reference:** ...
**Objective:** ...
**Method:** ...
**Outcome:** ...
"""

_SOURCE_RE = re.compile(r"^\s{0,3}##\s+Source\s*:?\s*(?P<title>.*?)\s*#*\s*$", re.IGNORECASE)
_HEADING_RE = re.compile(r"^\s{0,3}#{1,2}\s")
_FIELD_NAMES = "|".join(REQUIRED_FIELDS + OPTIONAL_FIELDS)
_FIELD_RE = re.compile(
    rf"^\s*(?:[-*]\s+)?(?:\*\*|__)?\s*(?P<name>{_FIELD_NAMES})\s*(?::\s*(?:\*\*|__)|(?:\*\*|__)\s*:|:)\s*(?P<text>.*)$",
    re.IGNORECASE,
)
_PLACEHOLDER_RE = re.compile(r"^<[^>]*>$|^\.\.\.$")


@dataclass
class SourceReport:
    title: str
    fields: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing and bool(self.title)


@dataclass
class CheckReport:
    required: int
    sources: list[SourceReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def complete_sources(self) -> int:
        return sum(1 for s in self.sources if s.complete)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "required": self.required,
            "ok": self.ok,
            "complete_sources": self.complete_sources,
            "problems": list(self.problems),
            "sources": [
                {"title": s.title, "complete": s.complete, "missing": list(s.missing), "fields": dict(s.fields)}
                for s in self.sources
            ],
        }


def _meaningful(text: str) -> bool:
    text = text.strip()
    if not text or _PLACEHOLDER_RE.match(text):
        return False
    return len(re.findall(r"\w+", text)) >= MIN_WORDS


def check(markdown_text: str, min_sources: int) -> CheckReport:
    report = CheckReport(required=min_sources)
    current: SourceReport | None = None
    current_field: str | None = None
    for line in (markdown_text or "").splitlines():
        m = _SOURCE_RE.match(line)
        if m:
            title = m.group("title").strip()
            current = SourceReport(title="" if _PLACEHOLDER_RE.match(title) else title)
            report.sources.append(current)
            current_field = None
            continue
        if _HEADING_RE.match(line):
            # Any other level-1/2 heading ends the current source.
            current, current_field = None, None
            continue
        if current is None:
            continue
        f = _FIELD_RE.match(line)
        if f:
            name = f.group("name").capitalize()
            current_field = name
            current.fields[name] = f.group("text").strip()
        elif current_field and line.strip():
            current.fields[current_field] = (current.fields[current_field] + " " + line.strip()).strip()
        elif not line.strip():
            current_field = None
    for i, src in enumerate(report.sources, start=1):
        # Problems are Markdown (the page renders them); the group's own title is quoted literally.
        label = f"Source {i}" + (f" ({markdown.escape(src.title)})" if src.title else "")
        if not src.title:
            src.missing.append("title")
            report.problems.append(f"{label}: the heading needs a title: `## Source: <title>`.")
        for name in REQUIRED_FIELDS:
            if not _meaningful(src.fields.get(name, "")):
                src.missing.append(name)
        if any(n in src.missing for n in REQUIRED_FIELDS):
            names = ", ".join(n for n in REQUIRED_FIELDS if n in src.missing)
            report.problems.append(
                f"{label}: missing {names} (write `**Name:** text`, at least {MIN_WORDS} words each)."
            )
    if report.complete_sources < min_sources:
        found = len(report.sources)
        if found == 0:
            report.problems.insert(
                0,
                f"No sources found: this review needs at least {min_sources}, each starting with `## Source: <title>`.",
            )
        else:
            report.problems.insert(
                0,
                f"{report.complete_sources} complete source(s) of the {min_sources} required "
                f"({found} section(s) found).",
            )
    return report


def as_dict(report: CheckReport) -> dict:
    return report.as_dict()


__all__ = ["check", "CheckReport", "SourceReport", "TEMPLATE", "REQUIRED_FIELDS", "MIN_WORDS", "asdict"]
