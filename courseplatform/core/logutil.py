"""Logging helpers used by settings.LOGGING, so that web (gunicorn), Django and Celery lines look alike.

- UTCFormatter: every process stamps its lines in UTC with an explicit "Z" (gunicorn wrote local
  time, Celery UTC: the same event had two clocks).
- ClientErrorsWithoutTraceback: a refused request (403 PermissionDenied, 404, 400) is one line, not
  a full traceback; server errors (5xx) keep theirs.
"""
from __future__ import annotations

import logging
import time


class UTCFormatter(logging.Formatter):
    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


class ClientErrorsWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
