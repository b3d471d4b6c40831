"""Markdown to safe HTML: rendered with Python-Markdown, then cleaned with bleach (no scripts, no raw HTML)."""
from __future__ import annotations

import bleach
import markdown as md
from django.utils.safestring import mark_safe

ALLOWED_TAGS = [
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "del", "sup", "sub",
]
ALLOWED_ATTRIBUTES = {"a": ["href", "title", "rel"], "th": ["align"], "td": ["align"], "code": ["class"]}
ALLOWED_PROTOCOLS = ["http", "https", "mailto"]


def _nofollow(attrs, new=False):
    href_key = (None, "href")
    if href_key in attrs:
        attrs[(None, "rel")] = "nofollow noopener noreferrer"
    return attrs


def render_markdown(text: str) -> str:
    html = md.markdown(text or "", extensions=["fenced_code", "tables", "sane_lists"], output_format="html")
    clean = bleach.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, protocols=ALLOWED_PROTOCOLS,
                         strip=True)
    clean = bleach.linkify(clean, callbacks=[_nofollow], skip_tags=["pre", "code"])
    return mark_safe(clean)
