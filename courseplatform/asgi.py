"""The ASGI application: the whole site over HTTP (Django) plus the live quizzes' WebSockets
(Django Channels, courseplatform/live/routing.py).

`make run` serves everything through it (uvicorn, one process, in-memory channel layer); in
production it runs as its own service (docker/compose.yml "live") next to gunicorn, with the Redis
channel layer, and the proxy sends /ws/ to it (any path works: it serves the pages too).
"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "courseplatform.settings")
django_asgi_app = get_asgi_application()  # first: sets up Django before the consumers import models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from courseplatform.live.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    # The Origin must be one of ALLOWED_HOSTS (no cross-site socket rides on a student's cookie).
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})
