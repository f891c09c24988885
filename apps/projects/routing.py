"""WebSocket routes of the projects service (settings.WEBSOCKET_URLCONF; config/asgi.py serves them)."""

from django.urls import path, re_path

from apps.projects.consumers import BoardConsumer, SharedTaskConsumer
from apps.projects.share import CODE_PATTERN

websocket_urlpatterns: list = [
    path("ws/boards/<int:board_id>/", BoardConsumer.as_asgi()),
    re_path(rf"^ws/shared/(?P<code>{CODE_PATTERN})/$", SharedTaskConsumer.as_asgi()),
]
