"""Logs: a refused request is one line (no traceback, not twice), every line is stamped in UTC."""
from __future__ import annotations

import io
import logging
import logging.config
import re

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def site_log():
    """The site's own LOGGING, writing into a buffer; the test runner's logging is restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {name: (lg.handlers[:], lg.propagate, lg.level) for name, lg in
                                            logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)})
    logging.config.dictConfig(django_settings.LOGGING)
    console = logging.getLogger("django").handlers[0]
    buffer = io.StringIO()
    console.setStream(buffer)
    yield buffer
    root.handlers[:], root.level = saved[0], saved[1]
    for name, (handlers, propagate, level) in saved[2].items():
        lg = logging.getLogger(name)
        lg.handlers[:], lg.propagate, lg.level = handlers, propagate, level


def test_a_403_is_logged_once_without_a_traceback_in_utc(site_log, client_for, course, student):
    r = client_for(student).get(reverse("courses:roster", args=[course.slug]))
    assert r.status_code == 403
    lines = [line for line in site_log.getvalue().splitlines() if line.strip()]
    forbidden = [line for line in lines if "Forbidden" in line]
    assert len(forbidden) == 1, lines
    assert "Traceback" not in site_log.getvalue()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING django.request: Forbidden", forbidden[0])


def test_a_server_error_keeps_its_traceback(site_log):
    logging.getLogger("django.request").error("Internal Server Error: /x", exc_info=ValueError("boom"),
                                              extra={"status_code": 500})
    assert "ValueError: boom" in site_log.getvalue()
