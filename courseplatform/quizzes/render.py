"""Markdown + math for question text (see courseplatform.courses.markdown for the math handling)."""
from __future__ import annotations

from functools import lru_cache

from courseplatform.courses.markdown import render_math_markdown

ALLOWED_TAGS = [
    "p", "br", "hr", "em", "strong", "b", "i", "u", "code", "pre", "blockquote", "ul", "ol", "li", "a", "span", "div",
    "table", "thead", "tbody", "tr", "th", "td", "h3", "h4", "h5", "h6", "sub", "sup", "img", "del",
]
ALLOWED_ATTRS = {"a": ["href", "title"], "img": ["src", "alt", "title"], "span": ["class"], "div": ["class"],
                 "code": ["class"], "th": ["align"], "td": ["align"]}


@lru_cache(maxsize=4096)
def render_markdown(text: str) -> str:
    """Pure function of the text, cached: the same question text is rendered once per process."""
    return render_math_markdown(text, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRS)


def render_inline(text: str) -> str:
    """Markdown for a choice label: one paragraph, without the <p> wrapper."""
    out = render_markdown(text).strip()
    if out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
        out = out[3:-4]
    return out
