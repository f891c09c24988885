"""ASGI entry point. Services with Channels installed also answer WebSockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.projects")

django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402  (needs the app registry loaded above)

if "channels" in settings.INSTALLED_APPS:
    from channels.routing import ProtocolTypeRouter, URLRouter

    from config.routing import websocket_urlpatterns

    application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": URLRouter(websocket_urlpatterns)})
else:
    application = django_asgi_app
