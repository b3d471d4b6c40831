from django import template

register = template.Library()


@register.filter
def points(value):
    """12.50 -> '12.5', 10.0 -> '10', None -> '–'."""
    if value is None or value == "":
        return "–"
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return value


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None
