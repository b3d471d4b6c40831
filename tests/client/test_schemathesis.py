"""schemathesis (pinned in requirements.txt) generates requests from /api/openapi.json and sends
them to the app (in-process WSGI, the test database): no generated request may get a 5xx, with or
without a valid token. The course, an assignment and the token exist, so valid paths are reachable."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from courseplatform.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


@pytest.fixture(autouse=True)
def _keep_test_connection():
    """As Django's test client does: the in-process WSGI calls must not close the test's database
    connection (request_started/finished close old connections)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(student, course, tmp_path, settings):
    from cp_helpers import write_pack

    from courseplatform.submissions.models import ApiToken
    from courseplatform.submissions.sync import sync_pack

    settings.SUBMISSION_MAX_BYTES = 64 * 1024
    sync_pack(course, write_pack(tmp_path / "assignments"))
    return ApiToken.issue(student)[1]


def test_the_schema_documents_the_client_endpoints():
    paths = schema.raw_schema["paths"]
    assert "/api/courses/{course}/assignments/{slug}/checks" in paths
    assert "429" in paths["/api/courses/{course}/assignments/{slug}/checks"]["post"]["responses"]
    assert "/api/submissions/{submission_id}" in paths and "/api/me" in paths


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_no_generated_request_gets_a_server_error(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error])
    case.call_and_validate(checks=[not_a_server_error])
