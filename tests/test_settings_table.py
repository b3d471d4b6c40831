"""One settings surface (issue 23): every environment variable is read once, in settings.py, and
listed in the README's configuration table; the engine's own reads (grader/, no Django) are listed
there too; nothing else in courseplatform/ reads the environment or an undefined setting.

These tests read the code as text: a new os.environ read anywhere, or a variable missing from the
table, fails them."""
from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "courseplatform"
SETTINGS = PACKAGE / "settings.py"

# How settings.py reads a variable: os.environ.get("X" / os.environ["X"] / env_bool("X" / env_list("X"
# / dj_database_url's env="X".
SETTINGS_READ = re.compile(r'(?:os\.environ\.get\(|os\.environ\[|os\.getenv\(|env_bool\(|env_list\(|env=)\s*"([A-Z][A-Z0-9_]*)"')
ANY_READ = re.compile(r'os\.environ\.get\(|os\.environ\[|os\.getenv\(|environ\.get\(')
ENGINE_READ = re.compile(r'(?:os\.environ\.get\(|os\.environ\[|os\.getenv\()\s*"([A-Z][A-Z0-9_]*)"')
TABLE_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", re.M)


def readme_table() -> dict[str, tuple[str, str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Configuration (environment)", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): (m.group(2).strip(), m.group(3).strip(), m.group(4).strip()) for m in TABLE_ROW.finditer(section)}


def settings_reads() -> set[str]:
    return set(SETTINGS_READ.findall(SETTINGS.read_text()))


def engine_reads() -> set[str]:
    return {name for path in (ROOT / "grader").rglob("*.py") for name in ENGINE_READ.findall(path.read_text())}


def test_every_variable_read_is_in_the_readme_table_and_every_row_is_read():
    table = readme_table()
    read = settings_reads() | engine_reads()
    assert read - set(table) == set(), "read but not documented in README.md's configuration table"
    assert set(table) - read == set(), "documented in README.md's configuration table but read by nothing"
    engine = engine_reads()
    for name, (setting, default, meaning) in table.items():
        assert default and meaning, f"{name}: a default and a meaning"
        if name.startswith("GRADER_"):
            assert setting == "engine", f"{name} is the engine's own (grader/), not a Django setting"
        if setting == "engine":
            assert name in engine, f"{name}: the table says the engine reads it, and grader/ does not"
        else:
            assert setting.strip("()`") and hasattr(settings, setting.strip("()`")), \
                f"{name}: the table names setting {setting}, which settings.py does not define"


def test_the_environment_is_read_in_settings_py_only():
    """Outside settings.py, courseplatform/ reads django.conf.settings (choosing the settings module
    with os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...) is not a read)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path == SETTINGS:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if ANY_READ.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_every_setting_the_code_reads_is_defined():
    """No getattr(settings, NAME, default) for a setting settings.py never defines: each is defined
    once (with its default) and read as settings.NAME."""
    getattrs, undefined = [], []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        getattrs += [f"{path.relative_to(ROOT)}: {m}" for m in re.findall(r"getattr\(settings,\s*\"(\w+)\"", text)]
        undefined += [f"{path.relative_to(ROOT)}: {name}" for name in re.findall(r"\bsettings\.([A-Z][A-Z0-9_]+)", text)
                      if not hasattr(settings, name)]
    assert getattrs == [] and undefined == []


def test_site_url_is_read_from_the_environment():
    """SITE_URL was documented but never defined, so reminder e-mails linked to localhost."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, SITE_URL="https://courses.example.edu/", DJANGO_SETTINGS_MODULE="courseplatform.settings",
               DEBUG="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", "from django.conf import settings; print(settings.SITE_URL)"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "https://courses.example.edu", out.stderr
