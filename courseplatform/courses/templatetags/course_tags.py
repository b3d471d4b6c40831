"""Template filters shared by every app ({% load course_tags %}; the apps' own tag libraries
re-export them so their templates need only one {% load %})."""
from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    """{{ dict|get_item:key }}: a dict lookup with a variable key (None when missing)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def points(value):
    """12.50 -> '12.5', 10.0 -> '10', None -> '–'."""
    if value is None or value == "":
        return "–"
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return value
