from django import template
from django.utils.safestring import mark_safe

from courseplatform.core import markdown

from courseplatform.core.templatetags.cp_tags import get_item, points

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    """Milestone instructions, rubric feedback and deliveries: the site's renderer, "project" context."""
    return mark_safe(markdown.render(text or "", "project"))


@register.filter(name="markdown_inline")
def markdown_inline_filter(text):
    """A one-line message written in Markdown (e.g. a literature-review problem), without the <p>."""
    return mark_safe(markdown.render_inline(text or "", "project"))


register.filter("points", points)
register.filter("get_item", get_item)


@register.filter(name="viewable_inline")
def viewable_inline(filename) -> bool:
    """A delivered file the view page can show (projects/inline_view.py), not only download."""
    from courseplatform.projects.inline_view import kind_of

    return kind_of(str(filename or "")) is not None
