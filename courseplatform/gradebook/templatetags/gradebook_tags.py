from django import template

from courseplatform.courses.templatetags.course_tags import get_item, points

register = template.Library()

register.filter("points", points)
register.filter("get_item", get_item)
