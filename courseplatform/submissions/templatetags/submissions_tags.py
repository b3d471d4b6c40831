from django import template

from courseplatform.core.templatetags.cp_tags import points

register = template.Library()
register.filter("points", points)

STATE_CLASS = {"queued": "muted", "running": "warn", "graded": "ok", "error": "bad"}
TEST_CLASS = {"passed": "ok", "failed": "bad", "error": "bad", "timeout": "bad"}


@register.filter
def state_class(state: str) -> str:
    return STATE_CLASS.get(str(state), "muted")


@register.filter
def test_class(status: str) -> str:
    return TEST_CLASS.get(str(status), "muted")
