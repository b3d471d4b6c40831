"""{% client_lines course assignment %}: the lines a student copies into a notebook (install the
client from this site, log in, check, submit), with this site's address and the current wheel."""
from django import template

from courseplatform.submissions import clientwheel

register = template.Library()


@register.inclusion_tag("submissions/_client_lines.html", takes_context=True)
def client_lines(context, course, assignment):
    request = context["request"]
    try:
        install = clientwheel.install_url(request)
    except (OSError, RuntimeError):  # no client/ folder in this deployment
        install = ""
    return {
        "install": install,
        "site": clientwheel.site_url(request),
        "name": f"{course.slug}/{assignment.slug}",
    }
