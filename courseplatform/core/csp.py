"""The site's Content-Security-Policy, sent on every response that does not set its own (the
notebook frame sends a stricter one, submissions/notebooks.py FRAME_CSP).

Scripts, styles, fonts and images come from the site itself only: no inline <script>, no inline
event handlers (site.js handles data-confirm / data-select-all), no CDN. Images may also be data:
URLs (matplotlib plots in feedback). Pages may be framed only by the site itself. A <style> element
is allowed only with the request's nonce (request.csp_nonce, in base.html's <meta name="csp-nonce">):
the code editor (CodeMirror) mounts its styles that way.
"""
from __future__ import annotations

import secrets

POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'nonce-{nonce}'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "frame-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(18)
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = POLICY.format(nonce=request.csp_nonce)
        return response
