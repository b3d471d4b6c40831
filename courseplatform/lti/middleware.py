"""Pages of a session started by an LTI launch may be framed by that LMS.

The site's policy is frame-ancestors 'self' and X-Frame-Options DENY (core/csp.py). For a session
whose launch came from an LMS, the LMS's origins (views.frame_ancestors) are added to frame-ancestors
and X-Frame-Options is dropped, on that session's responses only. Over HTTPS its session and CSRF
cookies are sent SameSite=None; Secure (a cross-site iframe gets no Lax cookie); every other session
keeps the site's defaults. A browser that blocks third-party cookies altogether gets the OIDC login's
new-window offer instead (templates/lti/cookie_check.html).

Sits right after SecurityMiddleware, so that it sees the headers and cookies the inner middleware set.
"""
from __future__ import annotations

import re

from django.conf import settings

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d+)?$")


class LtiFrameMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        info = session.get("lti") if session is not None else None
        if not info:
            return response
        origins = [o for o in info.get("frame_ancestors", []) if _ORIGIN.match(o)]
        csp = response.get("Content-Security-Policy", "")
        if origins and "frame-ancestors 'self'" in csp:
            response["Content-Security-Policy"] = csp.replace(
                "frame-ancestors 'self'", "frame-ancestors 'self' " + " ".join(origins))
            if "X-Frame-Options" in response:
                del response["X-Frame-Options"]
        if request.is_secure():
            for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
                if name in response.cookies:
                    response.cookies[name]["samesite"] = "None"
                    response.cookies[name]["secure"] = True
        return response
