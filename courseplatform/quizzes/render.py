"""Markdown + math for question text: rendered server-side, sanitised with bleach.

Math ($...$, $$...$$, \\(...\\), \\[...\\]) is cut out before Markdown runs (so `_` and `*`
inside formulas are not turned into emphasis), HTML-escaped, and put back verbatim for
KaTeX's auto-render in the browser.
"""
from __future__ import annotations

import html
import re
from functools import lru_cache

import bleach
import markdown as md

MATH_RE = re.compile(
    r"(\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|(?<![\\$\w])\$(?!\s)(?:\\\$|[^$\n])+?(?<!\s)\$(?!\w))",
    re.DOTALL,
)
ALLOWED_TAGS = [
    "p", "br", "hr", "em", "strong", "b", "i", "u", "code", "pre", "blockquote", "ul", "ol", "li", "a", "span", "div",
    "table", "thead", "tbody", "tr", "th", "td", "h3", "h4", "h5", "h6", "sub", "sup", "img", "del",
]
ALLOWED_ATTRS = {"a": ["href", "title"], "img": ["src", "alt", "title"], "span": ["class"], "div": ["class"],
                 "code": ["class"], "th": ["align"], "td": ["align"]}
_TOKEN = "\u0000MATH{}\u0000"


@lru_cache(maxsize=4096)
def render_markdown(text: str) -> str:
    """Pure function of the text, cached: the same question text is rendered once per process."""
    if not text:
        return ""
    pieces: list[str] = []

    def stash(match):
        pieces.append(match.group(0))
        return f"MATHTOKEN{len(pieces) - 1}X"

    protected = MATH_RE.sub(stash, text)
    rendered = md.markdown(protected, extensions=["fenced_code", "tables", "sane_lists"])
    clean = bleach.clean(rendered, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRS,
                         protocols=["http", "https", "mailto"], strip=True)
    for i, piece in enumerate(pieces):
        clean = clean.replace(f"MATHTOKEN{i}X", html.escape(piece, quote=True))
    return clean


def render_inline(text: str) -> str:
    """Markdown for a choice label: one paragraph, without the <p> wrapper."""
    out = render_markdown(text).strip()
    if out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
        out = out[3:-4]
    return out
