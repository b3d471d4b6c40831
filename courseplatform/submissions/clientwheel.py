"""The student client's wheel, built by the site from client/ and served at
/client/courseplatform_client-<version>-py3-none-any.whl, so that a notebook installs it with

    %pip install -q https://<site>/client/courseplatform_client-<version>-py3-none-any.whl

The client is pure Python with no dependencies, so the wheel is written with the standard
library's zipfile (PEP 427: the package, then *.dist-info/METADATA, WHEEL, entry_points.txt and
RECORD with sha256 digests), no build tool and no network. The build is deterministic (fixed
timestamps, sorted entries) and done once per process on the first request; it is rebuilt when a
source file changes. No login is needed: the client holds no course data.
"""
from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
import zipfile
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpResponse
from django.urls import reverse

DIST = "courseplatform_client"
PROJECT = "courseplatform-client"
_LOCK = threading.Lock()
_CACHE: dict = {}


def client_dir() -> Path:
    return Path(settings.BASE_DIR) / "client"


def package_dir() -> Path:
    return client_dir() / DIST


def version() -> str:
    text = (package_dir() / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__\s*=\s*"([0-9][0-9A-Za-z.+-]*)"', text, re.M)
    if not m:
        raise RuntimeError("client/courseplatform_client/__init__.py has no __version__")
    return m.group(1)


def wheel_name(ver: str | None = None) -> str:
    return f"{DIST}-{ver or version()}-py3-none-any.whl"


def _sources() -> list[Path]:
    return sorted(p for p in package_dir().rglob("*.py") if "__pycache__" not in p.parts)


def _metadata(ver: str) -> str:
    readme = client_dir() / "README.md"
    body = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {PROJECT}\n"
        f"Version: {ver}\n"
        "Summary: Check and submit courseplatform assignments from Colab, Jupyter or a terminal.\n"
        "Requires-Python: >=3.9\n"
        "Description-Content-Type: text/markdown\n"
        "\n" + body
    )


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def build() -> bytes:
    """The wheel's bytes (deterministic for the same sources)."""
    ver = version()
    info = f"{DIST}-{ver}.dist-info"
    files: list[tuple[str, bytes]] = []
    for path in _sources():
        files.append((path.relative_to(client_dir()).as_posix(), path.read_bytes()))
    files.append((f"{info}/METADATA", _metadata(ver).encode("utf-8")))
    files.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: courseplatform\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    files.append((f"{info}/entry_points.txt", b"[console_scripts]\ncourseplatform = courseplatform_client.cli:main\n"))
    files.append((f"{info}/top_level.txt", f"{DIST}\n".encode()))
    record = "".join(f"{name},{_digest(data)},{len(data)}\n" for name, data in files) + f"{info}/RECORD,,\n"
    files.append((f"{info}/RECORD", record.encode("utf-8")))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
    return buf.getvalue()


def _stamp() -> tuple:
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in _sources())


def wheel() -> tuple[str, bytes]:
    """(file name, bytes), built on first use and again when a source file changed."""
    with _LOCK:
        stamp = _stamp()
        if _CACHE.get("stamp") != stamp:
            _CACHE.update(stamp=stamp, name=wheel_name(), data=build())
        return _CACHE["name"], _CACHE["data"]


def serve(request, name: str):
    try:
        current, data = wheel()
    except (OSError, RuntimeError):
        raise Http404("The client package is not available on this site.") from None
    if name != current:
        raise Http404(f"No such file; the current client is {current}.")
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{current}"'
    response["Content-Length"] = str(len(data))
    response["Cache-Control"] = "public, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def install_url(request) -> str:
    return request.build_absolute_uri(reverse("client-wheel", args=[wheel_name()]))


def site_url(request) -> str:
    return request.build_absolute_uri("/").rstrip("/")
