from django import template

from courseplatform.core.templatetags.cp_tags import get_item, points

register = template.Library()

register.filter("points", points)
register.filter("get_item", get_item)
