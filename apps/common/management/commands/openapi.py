"""Prints this service's OpenAPI document: what its `/openapi.json` answers (config/urls/common.py).

    DJANGO_SETTINGS_MODULE=config.settings.projects python manage.py openapi

platform/openapi.py merges every service's document as the gateway does, for the committed snapshot.
"""

import json
from typing import Any

from django.core.management.base import BaseCommand
from django.test import RequestFactory
from django.urls import resolve


def openapi_document() -> dict[str, Any]:
    request = RequestFactory().get("/openapi.json")
    response = resolve("/openapi.json").func(request)
    if hasattr(response, "render"):
        response.render()
    document: dict[str, Any] = json.loads(response.content)
    return document


class Command(BaseCommand):
    help = "Print this service's OpenAPI document (JSON)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(openapi_document(), indent=2, sort_keys=True))
