"""Score passback (AGS) as a Celery task: retried with exponential back-off, its state visible per
student on the course's LTI page; whatever the LMS answers, the grade here is not touched."""
from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem as PyLineItem
from requests import RequestException

from . import activities
from .models import LineItem, Passback, PassbackState
from .net import service_connector
from .passback import final_score

log = logging.getLogger("courseplatform.lti")
AGS_SCOPES = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
]


def backoff(retries: int) -> int:
    """Seconds before retry number ``retries + 1``: 30 s, 1 min, 2 min, ... capped at an hour."""
    return int(min(3600, settings.LTI_PASSBACK_BACKOFF_S * (2 ** retries)))


def _reason(exc: Exception) -> str:
    if isinstance(exc, LtiServiceException):
        r = exc.response
        return f"The LMS answered {r.status_code}: {(r.text or '').strip()[:800]}"
    return f"{type(exc).__name__}: {str(exc)[:800]}"


def _ags(link) -> AssignmentsGradesService:
    ctx = link.context
    scopes = [AGS_SCOPES[2]]
    if ctx.can_manage_lineitems:
        scopes.append(AGS_SCOPES[0])
    if ctx.can_query_lineitems:
        scopes.append(AGS_SCOPES[1])
    return AssignmentsGradesService(service_connector(ctx.deployment.registration),
                                    {"scope": scopes, "lineitems": ctx.lineitems_url})


def line_item(link, activity, ags) -> LineItem:
    """The activity's line item: the one we know, else the LMS's (found by its resourceId), else a new
    one; stored once (unique per context and activity), so relaunches and resyncs never add a column."""
    known = LineItem.objects.filter(link=link, activity=activity.key).first()
    if known is not None:
        return known
    wanted = (PyLineItem().set_label(activity.title).set_score_maximum(activity.points)
              .set_resource_id(activity.key).set_tag(activity.key))
    found = ags.find_or_create_lineitem(wanted, find_by="resource_id")
    item, _ = LineItem.objects.get_or_create(link=link, activity=activity.key, defaults={
        "url": found.get_id(), "label": activity.title, "score_maximum": activity.points})
    return item


@shared_task(bind=True, name="lti.send_score", acks_late=True, ignore_result=True)
def send_score(self, passback_id: int) -> str:
    pb = Passback.objects.select_related("link__course", "link__context__deployment__registration", "user").filter(
        pk=passback_id).first()
    if pb is None:
        return "missing"
    link = pb.link
    activity = activities.find(link.course, pb.activity)
    final = final_score(activity, pb.user) if activity else None
    if final is None:
        return "not-final"  # withdrawn, or a new attempt is being graded: its own hook sends it
    if pb.state == PassbackState.SENT and pb.sent_fingerprint == final.fingerprint:
        return "already-sent"
    lti_user = pb.user.lti_users.filter(registration=link.context.deployment.registration).first()
    try:
        if lti_user is None:
            raise LtiException("This student has no account in the LMS's registration.")
        if not link.context.can_publish_scores or not link.context.lineitems_url:
            raise LtiException("The LMS did not grant this tool the score service for this course.")
        ags = _ags(link)
        item = line_item(link, activity, ags)
        grade = (Grade().set_score_given(final.score).set_score_maximum(final.maximum)
                 .set_activity_progress("Completed").set_grading_progress("FullyGraded")
                 .set_user_id(lti_user.sub).set_timestamp(timezone.now().isoformat()))
        ags.put_grade(grade, PyLineItem({"id": item.url}))
    except (LtiException, RequestException) as exc:
        reason = _reason(exc)
        retries = self.request.retries
        final_try = retries >= settings.LTI_PASSBACK_MAX_RETRIES
        countdown = backoff(retries)
        Passback.objects.filter(pk=pb.pk).update(
            state=PassbackState.FAILED, reason=reason, tries=retries + 1,
            next_try_at=None if final_try else timezone.now() + timedelta(seconds=countdown),
            fingerprint=final.fingerprint, score_given=final.score, score_maximum=final.maximum)
        log.warning("LTI passback failed (try %d) for %s %s: %s", retries + 1, pb.user.username, pb.activity, reason)
        if final_try:
            return "failed"
        raise self.retry(countdown=countdown, max_retries=settings.LTI_PASSBACK_MAX_RETRIES) from exc
    with transaction.atomic():
        Passback.objects.filter(pk=pb.pk).update(
            state=PassbackState.SENT, reason="", tries=self.request.retries + 1, next_try_at=None,
            sent_at=timezone.now(), fingerprint=final.fingerprint, sent_fingerprint=final.fingerprint,
            score_given=final.score, score_maximum=final.maximum)
    log.info("LTI passback sent: %s %s %g/%g", pb.user.username, pb.activity, final.score, final.maximum)
    return "sent"


@shared_task(name="lti.reconcile_passback", ignore_result=True)
def reconcile_passback() -> int:
    from .passback import reconcile

    return reconcile()
