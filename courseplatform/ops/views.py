"""/metrics: the Prometheus text format, for the scraper (a bearer token) or a site administrator."""
from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from .metrics import DatabaseCollector


def _authorised(request) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode()):
        return True
    return bool(request.user.is_authenticated and request.user.is_superuser)


def _exposition() -> bytes:
    if settings.PROMETHEUS_MULTIPROC_DIR:
        process = CollectorRegistry()
        multiprocess.MultiProcessCollector(process)  # every gunicorn worker's request metrics, summed
    else:
        process = REGISTRY  # this process's request metrics (django-prometheus)
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector())
    return generate_latest(process) + generate_latest(database)


@require_GET
def metrics(request):
    if not _authorised(request):
        response = HttpResponseForbidden("Metrics need the scraper's bearer token (METRICS_TOKEN) or an administrator.\n",
                                         content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(_exposition(), content_type=CONTENT_TYPE_LATEST)
