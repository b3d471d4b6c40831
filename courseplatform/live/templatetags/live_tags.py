from django import template

from courseplatform.live.models import Participant

register = template.Library()


@register.simple_tag
def live_joined_ids(session) -> set[int]:
    """Users who joined a live quiz held in this lecture session (the attendance page marks them)."""
    return set(Participant.objects.filter(live__lecture=session).values_list("user_id", flat=True))
