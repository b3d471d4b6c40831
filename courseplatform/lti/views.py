"""LTI 1.3 endpoints (OIDC login, launch, JWKS, course linking, deep linking) and the staff pages.

Every refusal is one page (templates/lti/refused.html), one WARNING line on the "courseplatform.lti"
logger, and nobody signed in: the launch signs out whoever this browser was before it validates.
"""
from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit

from django import forms
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required, user_passes_test
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from lti_tool.models import Key, LtiDeployment, LtiLaunch, LtiRegistration
from lti_tool.utils import sync_data_from_launch
from pylti1p3.contrib.django import DjangoOIDCLogin
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.lineitem import LineItem as PyLineItem

from courseplatform.courses.models import Course, Membership, Role
from courseplatform.courses.permissions import course_role_required

from . import activities, passback
from .accounts import account_for, enrol, map_roles
from .models import CourseLink, LineItem, Passback, PassbackState
from .net import TimeoutSession
from .tool import REFUSALS, Refusal, StrictToolConfig, ToolMessageLaunch, classify, ensure_key, storage

log = logging.getLogger("courseplatform.lti")
SESSION = "lti"  # request.session["lti"]: launch_id, role, course, deep_link, frame_ancestors
AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"


def refuse(request, refusal: Refusal, detail: str = "", **fields):
    """The refusal page; signs nobody in and logs one line."""
    logout(request)
    extra = " ".join(f"{k}={v!r}" for k, v in fields.items() if v)
    log.warning("LTI launch refused: %s (%r) %s", refusal.code, detail or refusal.title, extra)
    return frameable(render(request, "lti/refused.html", {"refusal": refusal}, status=refusal.status), request)


def frameable(response, request):
    """The refusal and cookie-check pages show inside whatever LMS frames them (before a launch is
    validated, nothing says which LMS that is); they hold no data of anyone's."""
    from courseplatform.core.csp import POLICY

    response["Content-Security-Policy"] = POLICY.format(nonce=request.csp_nonce).replace(
        "frame-ancestors 'self'", "frame-ancestors *")
    response.xframe_options_exempt = True
    return response


def tool_values(request) -> dict:
    """The values an LMS administrator pastes into the LMS (README: "Use it from your LMS")."""
    def url(name):
        return request.build_absolute_uri(reverse(name))
    return {
        "login_url": url("lti:login"),
        "launch_url": url("lti:launch"),
        "redirect_urls": url("lti:launch"),
        "deep_link_url": url("lti:launch"),
        "jwks_url": url("lti:jwks"),
        "domain": request.get_host(),
    }


@require_GET
def jwks(request):
    ensure_key()
    return JsonResponse(Key.objects.as_jwks())


@csrf_exempt
@xframe_options_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def oidc_login(request):
    """OIDC third-party initiated login: check the LMS is registered, set the state cookie and nonce,
    send the browser to the LMS's auth endpoint. Inside an iframe a page first checks that the frame
    may keep cookies, else offers to continue in a new window."""
    params = request.POST if request.method == "POST" else request.GET
    iss, client_id = params.get("iss", ""), params.get("client_id", "")
    if request.headers.get("Sec-Fetch-Dest") == "iframe" and not params.get("lti1p3_new_window"):
        keep = {k: params[k] for k in ("iss", "login_hint", "target_link_uri", "lti_message_hint",
                                       "lti_deployment_id", "client_id") if params.get(k)}
        here = reverse("lti:login") + "?" + urlencode({**keep, "lti1p3_new_window": "1"})
        return frameable(render(request, "lti/cookie_check.html", {"continue_url": here}), request)
    try:
        oidc = DjangoOIDCLogin(request, StrictToolConfig(), launch_data_storage=storage())
        ensure_key()
        return oidc.redirect(request.build_absolute_uri(reverse("lti:launch")))
    except (OIDCException, LtiException) as exc:
        return refuse(request, classify(exc), str(exc), iss=iss, client_id=client_id)


def _origin(url: str | None) -> str:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""


def frame_ancestors(lti_launch: LtiLaunch) -> list[str]:
    """The LMS pages allowed to frame this session's pages: the issuer, the auth endpoint, the launch's
    return URL and the platform's own URL (Canvas' issuer is not the school's host; its return URL is)."""
    urls = [lti_launch.get_claim("iss"), lti_launch.registration.auth_url]
    presentation = lti_launch.launch_presentation_claim or {}
    urls.append(presentation.get("return_url"))
    urls.append((lti_launch.platform_instance_claim or {}).get("url"))
    return sorted({o for o in map(_origin, urls) if o})


@csrf_exempt
@xframe_options_exempt
@never_cache
@require_POST
def launch(request):
    """The id_token POST (resource link and deep linking requests)."""
    logout(request)  # whoever this browser was, the launch decides who it is now
    try:
        message_launch = ToolMessageLaunch(request, StrictToolConfig(), launch_data_storage=storage(),
                                           requests_session=TimeoutSession())
        message_launch.validate()
    except LtiException as exc:
        return refuse(request, classify(exc), str(exc))
    except Exception as exc:  # a malformed body: refused like any other bad launch, never a 500
        return refuse(request, REFUSALS["invalid"], f"{type(exc).__name__}: {exc}")
    lti_launch = LtiLaunch(message_launch)
    iss, sub = lti_launch.get_claim("iss"), lti_launch.get_claim("sub")
    role = map_roles(lti_launch.roles_claim)
    if role is None:
        return refuse(request, REFUSALS["roles"], f"roles {lti_launch.roles_claim!r}", iss=iss, sub=sub)
    if not (lti_launch.is_resource_launch or lti_launch.is_deep_link_launch):
        return refuse(request, REFUSALS["invalid"], "message type not supported", iss=iss, sub=sub)
    if lti_launch.is_deep_link_launch and role == Role.STUDENT:
        return refuse(request, REFUSALS["roles"], "deep linking by a learner", iss=iss, sub=sub)
    with transaction.atomic():
        sync_data_from_launch(lti_launch)
        link = CourseLink.objects.select_related("course").filter(context=lti_launch.context).first()
        if link is None and role != Role.INSTRUCTOR:
            return refuse(request, REFUSALS["not-linked"], f"context {lti_launch.context.id_on_platform!r}",
                          iss=iss, sub=sub)
        user = account_for(lti_launch.user)
        if link is not None:
            enrol(link.course, user, role)
    auth_login(request, user, backend=AUTH_BACKEND)
    request.session[SESSION] = {
        "launch_id": lti_launch.get_launch_id(),
        "role": role,
        "context_id": lti_launch.context.pk,
        "deep_link": lti_launch.is_deep_link_launch,
        "frame_ancestors": frame_ancestors(lti_launch),
    }
    log.info("LTI launch accepted: iss=%r sub=%r user=%s role=%s context=%r", iss, sub, user.username, role,
             lti_launch.context.id_on_platform)
    if link is None:
        return redirect("lti:link_course")
    return _continue(request, lti_launch, link)


def _continue(request, lti_launch: LtiLaunch, link: CourseLink):
    if lti_launch.is_deep_link_launch:
        return redirect("lti:deep_link")
    activity = activities.find(link.course, lti_launch.get_custom_claim("activity") or "")
    if activity is None:
        return redirect("courses:dashboard", course_slug=link.course.slug)
    ags = lti_launch.ags_claim or {}
    if ags.get("lineitem"):  # the LMS made the line item (deep linking with a lineItem): remember it
        LineItem.objects.get_or_create(link=link, activity=activity.key, defaults={
            "url": ags["lineitem"], "label": activity.title, "score_maximum": activity.points})
    return redirect(activity.url(link.course))


def _session_launch(request) -> tuple[dict, LtiLaunch]:
    info = request.session.get(SESSION)
    if not info or not request.user.is_authenticated:
        raise Http404("No LTI launch in this session.")
    try:
        message_launch = ToolMessageLaunch.from_cache(info["launch_id"], request, StrictToolConfig(),
                                                      launch_data_storage=storage())
    except LtiException:
        raise Http404("This LTI launch has expired: open the activity from your LMS again.") from None
    return info, LtiLaunch(message_launch)


class LinkForm(forms.Form):
    choice = forms.ChoiceField(widget=forms.RadioSelect, initial="new")
    title = forms.CharField(max_length=200, required=False)
    slug = forms.SlugField(max_length=64, required=False)

    def __init__(self, *args, courses=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.courses = {str(c.pk): c for c in courses}
        self.fields["choice"].choices = [("new", "Create a new course")] + [
            (pk, f"Use “{c.title}” ({c.slug})") for pk, c in self.courses.items()]

    def clean(self):
        data = super().clean()
        if data.get("choice") == "new":
            if not data.get("title"):
                self.add_error("title", "Give the new course a title.")
            slug = data.get("slug") or slugify(data.get("title") or "")[:64]
            if not slug:
                self.add_error("slug", "Give the new course a short name (letters, digits, hyphens).")
            elif Course.objects.filter(slug=slug).exists():
                self.add_error("slug", "A course with this short name exists; choose another.")
            data["slug"] = slug
        return data


@never_cache
@require_http_methods(["GET", "POST"])
def link_course(request):
    """The first instructor launch from an LMS course: create a course here or pick one they teach."""
    info, lti_launch = _session_launch(request)
    if info["role"] != Role.INSTRUCTOR:
        raise Http404("Only an instructor links an LMS course.")
    context = lti_launch.context
    existing = CourseLink.objects.filter(context=context).select_related("course").first()
    if existing is not None:
        enrol(existing.course, request.user, Role.INSTRUCTOR)
        return _continue(request, lti_launch, existing)
    mine = Course.objects.filter(memberships__user=request.user, memberships__role=Role.INSTRUCTOR,
                                 memberships__is_active=True).order_by("title")
    initial = {"title": context.title or context.label, "slug": slugify(context.label or context.title)[:64]}
    form = LinkForm(request.POST or None, courses=mine, initial=initial)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            if form.cleaned_data["choice"] == "new":
                course = Course.objects.create(title=form.cleaned_data["title"], slug=form.cleaned_data["slug"])
            else:
                course = form.courses[form.cleaned_data["choice"]]
            link, _ = CourseLink.objects.get_or_create(context=context, defaults={"course": course,
                                                                                   "linked_by": request.user})
            enrol(link.course, request.user, Role.INSTRUCTOR)
        log.info("LTI context %r linked to course %s by %s", context.id_on_platform, link.course.slug,
                 request.user.username)
        return _continue(request, lti_launch, link)
    return render(request, "lti/link_course.html", {"form": form, "context": context})


@never_cache
@require_http_methods(["GET", "POST"])
def deep_link(request):
    """Deep linking: the instructor picks assignments or quizzes; the LMS gets one LtiResourceLink each,
    with a lineItem where the activity is graded."""
    info, lti_launch = _session_launch(request)
    if not info.get("deep_link") or info["role"] == Role.STUDENT:
        raise Http404("No deep-linking request in this session.")
    link = CourseLink.objects.select_related("course").filter(context=lti_launch.context).first()
    if link is None:
        return redirect("lti:link_course")
    course = link.course
    if not Membership.objects.filter(course=course, user=request.user, role__in=(Role.INSTRUCTOR, Role.TA),
                                     is_active=True).exists():
        raise Http404("Not staff of this course.")
    choices = activities.activities(course)
    settings_claim = lti_launch.get_claim(
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings") or {}
    multiple = bool(settings_claim.get("accept_multiple", True))
    if request.method == "POST":
        picked = [a for a in choices if a.key in request.POST.getlist("activity")]
        if not picked or (len(picked) > 1 and not multiple):
            messages.error(request, "Pick one activity." if not multiple else "Pick at least one activity.")
        else:
            resources = []
            for a in picked:
                resource = (DeepLinkResource().set_url(request.build_absolute_uri(reverse("lti:launch")))
                            .set_title(a.title).set_custom_params({"activity": a.key}))
                if a.points > 0:
                    resource.set_lineitem(PyLineItem().set_label(a.title).set_score_maximum(a.points)
                                          .set_resource_id(a.key).set_tag(a.key))
                resources.append(resource)
            jwt = lti_launch.get_message_launch().get_deep_link().get_response_jwt(resources)
            return_url = settings_claim["deep_link_return_url"]
            log.info("LTI deep link: %s returned %s to %s", request.user.username, [a.key for a in picked],
                     _origin(return_url))
            response = render(request, "lti/deep_link_return.html", {"return_url": return_url, "jwt": jwt,
                                                                      "picked": picked})
            # The site's policy allows forms to post to the site only; this one posts to the LMS.
            from courseplatform.core.csp import POLICY
            response["Content-Security-Policy"] = POLICY.format(nonce=request.csp_nonce).replace(
                "form-action 'self'", f"form-action 'self' {_origin(return_url)}")
            return response
    return render(request, "lti/deep_link.html", {"course": course, "choices": choices, "multiple": multiple})


# --- staff pages -----------------------------------------------------------------------------------


class RegistrationForm(forms.ModelForm):
    deployment_ids = forms.CharField(
        help_text="The deployment id(s) the LMS shows for this tool, comma-separated.", max_length=2000)

    class Meta:
        model = LtiRegistration
        fields = ["name", "issuer", "client_id", "audience", "auth_url", "token_url", "keyset_url"]
        help_texts = {"issuer": "Moodle: the site's URL. Canvas: https://canvas.instructure.com.",
                      "auth_url": "The LMS's OIDC authentication request URL.",
                      "token_url": "The LMS's OAuth2 access token URL.",
                      "keyset_url": "The LMS's public keyset (JWKS) URL."}


def superuser(user) -> bool:
    return user.is_active and user.is_superuser


@never_cache
@login_required
@user_passes_test(superuser)
@require_http_methods(["GET", "POST"])
def registrations(request):
    """Site administrators: register an LMS, see the tool's values, rotate the tool's key."""
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            registration = form.save()
            for dep in {d.strip() for d in form.cleaned_data["deployment_ids"].split(",") if d.strip()}:
                LtiDeployment.objects.create(registration=registration, deployment_id=dep, is_active=True)
        messages.success(request, f"Registered “{registration.name}”.")
        return redirect("lti:registrations")
    ensure_key()
    return render(request, "lti/registrations.html", {
        "form": form, "values": tool_values(request),
        "registrations": LtiRegistration.objects.prefetch_related("deployments").order_by("name"),
        "keys": Key.objects.order_by("-datetime_created"),
    })


@login_required
@user_passes_test(superuser)
@require_POST
def rotate_key(request):
    """A new signing key; the previous ones stay in the JWKS for LTI_KEY_GRACE_DAYS (LMSs cache it)."""
    from .keys import rotate

    key, dropped = rotate()
    messages.success(request, f"New signing key {key}; {dropped} old key(s) removed from the JWKS.")
    return redirect("lti:registrations")


@never_cache
@course_role_required(Role.INSTRUCTOR, Role.TA)
def course_page(request, course_slug):
    """Staff: the LMS courses linked here, the tool's values, roster sync, and every score's passback."""
    course = request.course
    links = list(CourseLink.objects.filter(course=course).select_related("context__deployment__registration"))
    rows = Passback.objects.filter(link__course=course).select_related("user", "link").order_by(
        "activity", "user__last_name", "user__username")
    counts = {s: rows.filter(state=s).count() for s in PassbackState.values}
    return render(request, "lti/course.html", {
        "links": links, "passbacks": rows, "counts": counts, "values": tool_values(request),
    })


@require_POST
@course_role_required(Role.INSTRUCTOR)
def sync_roster(request, course_slug):
    from .roster import sync_roster as do_sync

    links = CourseLink.objects.filter(course=request.course).select_related("context__deployment__registration")
    if not links:
        messages.error(request, "No LMS course is linked to this course.")
    for link in links:
        result = do_sync(link)
        (messages.success if result.ok else messages.error)(request, result.message)
    return redirect("lti:course", course_slug=request.course.slug)


@require_POST
@course_role_required(Role.INSTRUCTOR, Role.TA)
def resend(request, course_slug):
    """Send every failed (and still pending) score again now."""
    n = passback.resend_course(request.course)
    messages.success(request, f"{n} score(s) queued for sending to the LMS.")
    return redirect("lti:course", course_slug=request.course.slug)


