"""WebSocket routes of the projects service."""

websocket_urlpatterns: list = []
