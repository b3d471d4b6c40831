"""The site builds the client's wheel itself (zipfile, no network) and serves it under its
PEP 427 name; pip installs it, and the installed package is the client in client/."""
from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
import zipfile

from django.urls import reverse


def test_wheel_is_deterministic_and_its_record_is_right():
    from courseplatform.submissions import clientwheel

    a, b = clientwheel.build(), clientwheel.build()
    assert a == b
    zf = zipfile.ZipFile(io.BytesIO(a))
    names = zf.namelist()
    ver = clientwheel.version()
    info = f"courseplatform_client-{ver}.dist-info"
    assert {"courseplatform_client/__init__.py", "courseplatform_client/cli.py", f"{info}/METADATA", f"{info}/WHEEL",
            f"{info}/RECORD", f"{info}/entry_points.txt"} <= set(names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    meta = zf.read(f"{info}/METADATA").decode()
    assert "Name: courseplatform-client" in meta and f"Version: {ver}" in meta and "Requires-Python: >=3.9" in meta
    assert "Requires-Dist" not in meta  # no dependencies at all
    assert "courseplatform = courseplatform_client.cli:main" in zf.read(f"{info}/entry_points.txt").decode()
    rows = [r.split(",") for r in zf.read(f"{info}/RECORD").decode().splitlines()]
    assert {r[0] for r in rows} == set(names)
    for name, digest, size in rows:
        if name.endswith("RECORD"):
            continue
        data = zf.read(name)
        want = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert digest == want and int(size) == len(data), name


def test_site_serves_the_wheel_without_login_and_pip_installs_it(client, tmp_path):
    from courseplatform.submissions import clientwheel

    name = clientwheel.wheel_name()
    r = client.get(reverse("client-wheel", args=[name]))
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    assert client.get("/client/courseplatform_client-0.0.0-py3-none-any.whl").status_code == 404
    assert client.get("/client/..%2Fsettings.py").status_code == 404
    wheel = tmp_path / name
    wheel.write_bytes(r.content)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--disable-pip-version-check",
                    "--target", str(target), str(wheel)], check=True, timeout=300)
    out = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                          "import courseplatform_client as cp; print(cp.__version__, cp.__file__)", str(target)],
                         check=True, capture_output=True, text=True).stdout
    assert out.startswith(clientwheel.version() + " " + str(target))
    assert (target / "bin" / "courseplatform").is_file()
