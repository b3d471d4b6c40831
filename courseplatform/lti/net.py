"""HTTP to the LMS: one session class with a timeout on every request (requests has no default)."""
from __future__ import annotations

import requests
from django.conf import settings


class TimeoutSession(requests.Session):
    def __init__(self):
        super().__init__()
        self.headers["User-Agent"] = "courseplatform-lti"

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", settings.LTI_HTTP_TIMEOUT_S)
        return super().request(*args, **kwargs)


def service_connector(registration):
    from pylti1p3.service_connector import ServiceConnector

    from .tool import ensure_key

    ensure_key()
    return ServiceConnector(registration.to_registration(), requests_session=TimeoutSession())
