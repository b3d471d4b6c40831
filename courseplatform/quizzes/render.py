"""Quiz text (questions, choices, explanations, feedback) through the site's one renderer, in its "quiz" context."""
from __future__ import annotations

from courseplatform.core import markdown


def render_markdown(text: str) -> str:
    return markdown.render(text or "", "quiz")


def render_inline(text: str) -> str:
    """A choice label: one paragraph, without the <p> wrapper."""
    return markdown.render_inline(text or "", "quiz")
