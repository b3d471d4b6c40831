"""Markdown with LaTeX math, rendered on the server and sanitised with bleach.

Math ($...$, $$...$$, \\(...\\), \\[...\\]) is cut out before Markdown runs, so `_`, `*` and `\\\\`
inside formulas are not turned into emphasis or escapes, HTML-escaped, and put back verbatim for
KaTeX's auto-render in the browser (templates include "_katex.html"). Each caller passes its own
allow-lists: quiz text and assignment handouts are instructor content with different needs.
"""
from __future__ import annotations

import html
import re

import bleach
import markdown as md

MATH_RE = re.compile(
    r"(\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|(?<![\\$\w])\$(?!\s)(?:\\\$|[^$\n])+?(?<!\s)\$(?!\w))",
    re.DOTALL,
)
PROTOCOLS = ["http", "https", "mailto"]
EXTENSIONS = ("fenced_code", "tables", "sane_lists")


def render_math_markdown(text: str, *, tags, attributes, extensions=EXTENSIONS) -> str:
    if not text:
        return ""
    pieces: list[str] = []

    def stash(match):
        pieces.append(match.group(0))
        return f"MATHTOKEN{len(pieces) - 1}X"

    protected = MATH_RE.sub(stash, text)
    rendered = md.markdown(protected, extensions=list(extensions))
    clean = bleach.clean(rendered, tags=tags, attributes=attributes, protocols=PROTOCOLS, strip=True)
    for i, piece in enumerate(pieces):
        clean = clean.replace(f"MATHTOKEN{i}X", html.escape(piece, quote=True))
    return clean
