from django.urls import path

from .consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/<int:live_id>/", LiveConsumer.as_asgi()),
]
