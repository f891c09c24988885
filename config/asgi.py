"""ASGI entry point. A service that names its WebSocket routes in settings.WEBSOCKET_URLCONF (a
module with `websocket_urlpatterns`, like ROOT_URLCONF for HTTP) also answers WebSockets, through
Channels."""

from importlib import import_module

from django.core.asgi import get_asgi_application

from config.entrypoint import settings_module_required

settings_module_required("config.asgi")

django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402  (needs the app registry loaded above)

if getattr(settings, "WEBSOCKET_URLCONF", None):
    from channels.routing import ProtocolTypeRouter, URLRouter

    websocket_urlpatterns = import_module(settings.WEBSOCKET_URLCONF).websocket_urlpatterns
    application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": URLRouter(websocket_urlpatterns)})
else:
    application = django_asgi_app
