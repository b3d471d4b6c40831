"""Where the push server runs: `make run` (one uvicorn process with the in-memory layer when there
is no Redis) and compose (the `live` service with its health check and the Redis channel layer)."""
from __future__ import annotations

from pathlib import Path

import yaml

from courseplatform import devserver

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_serves_pages_and_sockets_from_one_process_without_redis(settings):
    """settings.py sets CHANNEL_LAYER_URL from CHANNEL_LAYER_URL or a redis:// broker, else leaves it empty."""
    settings.CHANNEL_LAYER_URL = ""
    settings.DEVSERVER_WEB_WORKERS = 4
    web = devserver._commands()["web"]
    assert web[1:4] == ["-m", "uvicorn", "courseplatform.asgi:application"]
    assert web[web.index("--workers") + 1] == "1"  # the in-memory layer is one process's
    settings.CHANNEL_LAYER_URL = "redis://127.0.0.1:6379/0"
    web = devserver._commands()["web"]
    assert web[web.index("--workers") + 1] == "4"  # Redis joins the processes


def test_compose_runs_the_push_service_with_a_health_check():
    from tests.ops.test_compose import env_example, interpolate

    compose = yaml.safe_load(interpolate((ROOT / "docker" / "compose.yml").read_text(), env_example()))
    live = compose["services"]["live"]
    assert live["command"][:2] == ["uvicorn", "courseplatform.asgi:application"]
    assert live["healthcheck"]["test"] and live["healthcheck"]["interval"]
    assert live["environment"]["CHANNEL_LAYER_URL"].startswith("redis://")
    assert compose["services"]["web"]["environment"]["CHANNEL_LAYER_URL"] == live["environment"]["CHANNEL_LAYER_URL"]


def test_asgi_routes_sockets_and_pages():
    from channels.routing import ProtocolTypeRouter

    from courseplatform.asgi import application

    assert isinstance(application, ProtocolTypeRouter)
    assert set(application.application_mapping) == {"http", "websocket"}
