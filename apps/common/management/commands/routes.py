"""Prints what this service serves, for tests/routes to check against its apps/<service>/routes.toml.

    DJANGO_SETTINGS_MODULE=config.settings.identity python manage.py routes

JSON: `http` maps one sample path per URL pattern (`<int:id>` becomes `1`; a regex pattern
contributes its literal start) to the module of its view, `websocket` lists the WebSocket routes'
sample paths, `static_url` is where WhiteNoise serves static files.
"""

import json
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils.module_loading import import_string

_CONVERTER = re.compile(r"<(?:[^:<>]+:)?[^<>]+>")
_REGEX_SPECIAL = re.compile(r"[\\^$.|?*+()\[\]{}]")


def _sample(pattern: object) -> str:
    if isinstance(pattern, RoutePattern):
        return _CONVERTER.sub("1", str(pattern))
    if isinstance(pattern, RegexPattern):
        text = str(pattern).removeprefix("^")
        special = _REGEX_SPECIAL.search(text)
        return text[: special.start()] if special else text
    return str(pattern)


def url_paths(patterns: Iterable[URLPattern | URLResolver], prefix: str = "/") -> dict[str, str]:
    """Sample path -> the module of the view that answers it."""
    paths: dict[str, str] = {}
    for entry in patterns:
        here = prefix + _sample(entry.pattern)
        if isinstance(entry, URLResolver):
            paths.update(url_paths(entry.url_patterns, here))
        else:
            view = getattr(entry.callback, "func", entry.callback)  # functools.partial (Ninja)
            paths.setdefault(here, getattr(view, "__module__", "") or "")
    return paths


def websocket_paths() -> dict[str, str]:
    """The paths of the ASGI application's `websocket` URLRouter, if it has one (Channels)."""
    application = import_string(settings.ASGI_APPLICATION)
    router = getattr(application, "application_mapping", {}).get("websocket")
    while router is not None and not hasattr(router, "routes"):
        router = getattr(router, "inner", None)  # Channels middleware wraps the router
    return url_paths(router.routes) if router is not None else {}


class Command(BaseCommand):
    help = "Print the paths this service serves (JSON), to check against its routes.toml."

    def handle(self, *args: Any, **options: Any) -> None:
        served = {
            "service": settings.SERVICE_NAME,
            "http": dict(sorted(url_paths(get_resolver().url_patterns).items())),
            "websocket": dict(sorted(websocket_paths().items())),
            "static_url": settings.STATIC_URL,
        }
        self.stdout.write(json.dumps(served, indent=2))
