"""Template filters shared by every app ({% load cp_tags %}; the apps' own tag libraries
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
def points(value) -> str:
    """Points on every page, rounded to 2 decimals: 12.50 -> '12.5', 10.0 -> '10', 7.256 -> '7.26', None -> '–'."""
    if value is None or value == "":
        return "–"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{round(f, 2):g}"
