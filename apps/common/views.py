from django.conf import settings
from django.http import HttpRequest, JsonResponse

from apps.common.readiness import readiness_report


def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers. Says nothing about its backing servers."""
    return JsonResponse({"status": "ok", "service": settings.SERVICE_NAME})


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: every backing server this service needs answers."""
    ready, checks = readiness_report()
    body = {"status": "ok" if ready else "unavailable", "service": settings.SERVICE_NAME, "checks": checks}
    return JsonResponse(body, status=200 if ready else 503)
