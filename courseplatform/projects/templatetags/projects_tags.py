from django import template

from courseplatform.courses.templatetags.course_tags import get_item, points

from ..rendering import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    return render_markdown(text)


register.filter("points", points)
register.filter("get_item", get_item)
