from django import template

register = template.Library()

STATE_CLASS = {"queued": "muted", "running": "warn", "graded": "ok", "error": "bad"}
TEST_CLASS = {"passed": "ok", "failed": "bad", "error": "bad", "timeout": "bad"}


@register.filter
def state_class(state: str) -> str:
    return STATE_CLASS.get(str(state), "muted")


@register.filter
def test_class(status: str) -> str:
    return TEST_CLASS.get(str(status), "muted")


@register.filter
def points(value) -> str:
    """12.0 -> '12', 7.25 -> '7.25', None -> '–'."""
    if value is None or value == "":
        return "–"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{round(f, 2):g}"


@register.filter
def percent_of(value, total) -> str:
    try:
        return f"{100 * float(value) / float(total):.0f}%"
    except (TypeError, ValueError, ZeroDivisionError):
        return ""
