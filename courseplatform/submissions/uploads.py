"""Refuse oversized uploads while they stream in, never reading them whole.

Two layers: a request whose Content-Length is already above the limit is refused before
its body is read; otherwise SizeLimitUploadHandler (first in request.upload_handlers)
counts bytes as Django parses the multipart body and stops the upload once the limit is
passed. Django's own handlers spool files above FILE_UPLOAD_MAX_MEMORY_SIZE to disk.
"""
from __future__ import annotations

from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from .validation import max_bytes

MULTIPART_SLACK = 64 * 1024  # form fields and multipart boundaries around the file


class SizeLimitUploadHandler(FileUploadHandler):
    def __init__(self, request=None, limit: int | None = None):
        super().__init__(request)
        self.limit = limit if limit is not None else max_bytes()
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.limit + MULTIPART_SLACK:
            self._refuse()
        return None

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self._refuse()
        return raw_data

    def file_complete(self, file_size):
        return None

    def _refuse(self):
        if self.request is not None:
            self.request.upload_too_large = True
        raise StopUpload(connection_reset=True)


def install_limit(request) -> bool:
    """Put the limiting handler first; returns False if the declared body is already too large."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    request.upload_too_large = declared > max_bytes() + MULTIPART_SLACK
    request.upload_handlers.insert(0, SizeLimitUploadHandler(request))
    return not request.upload_too_large
