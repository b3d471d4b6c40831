"""Production settings pass Django's deploy check; without SECRET_KEY the site refuses to start."""
from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_manage(args, tmp_path, **env_extra):
    # DJANGO_ALLOW_ASYNC_UNSAFE is set by the browser tests (tests/conftest.py) and fails the deploy check.
    drop = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(COURSEPLATFORM_VAR=str(tmp_path / "var"), **env_extra)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_passes_with_production_settings(tmp_path):
    key = "".join(secrets.choice(string.ascii_letters + string.digits + "!@#%^&*(-_=+)") for _ in range(50))
    r = run_manage(["check", "--deploy", "--fail-level", "WARNING"], tmp_path,
                   DEBUG="0", SECRET_KEY=key, ALLOWED_HOSTS="example.edu")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "System check identified no issues" in r.stdout


def test_check_deploy_fails_with_debug_on(tmp_path):
    r = run_manage(["check", "--deploy", "--fail-level", "WARNING"], tmp_path, DEBUG="1")
    assert r.returncode != 0
    assert "security.W018" in r.stderr + r.stdout  # DEBUG must be off in production


def test_missing_secret_key_is_refused(tmp_path):
    r = run_manage(["check"], tmp_path, DEBUG="0")
    assert r.returncode != 0
    assert "SECRET_KEY is not set" in r.stderr


def test_importing_the_settings_creates_no_folder_and_setup_creates_the_local_ones(tmp_path):
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "STATIC_ROOT"}}
    env.update(COURSEPLATFORM_VAR=str(var), DEBUG="1")
    code = ("import os, pathlib, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'courseplatform.settings'\n"
            "import courseplatform.settings\n"
            "var = pathlib.Path(sys.argv[1]); print('after import:', var.exists())\n"
            "import django; django.setup()\n"
            "print('after setup:', sorted(str(p.relative_to(var)) for p in var.rglob('*') if p.is_dir()))\n")
    r = subprocess.run([sys.executable, "-c", code, str(var)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "after import: False" in r.stdout
    assert "after setup: ['celery', 'celery/control', 'celery/processed', 'celery/queue', 'static']" in r.stdout
