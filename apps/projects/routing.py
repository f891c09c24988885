"""WebSocket routes of the projects service (settings.WEBSOCKET_URLCONF; config/asgi.py serves them)."""

from django.urls import path

from apps.projects.consumers import BoardConsumer

websocket_urlpatterns: list = [
    path("ws/boards/<int:board_id>/", BoardConsumer.as_asgi()),
]
