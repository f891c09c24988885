from django.http import HttpRequest, JsonResponse
from django.urls import path

from apps.common.ninja import platform_api
from config.urls.common import handler400, handler403, handler404, handler500
from config.urls.common import urlpatterns as common_urls

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

api = platform_api(title="Shortener", urls_namespace="shortener-api")


def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(api.get_openapi_schema())


urlpatterns = [
    *common_urls,
    path("openapi.json", openapi, name="openapi"),
    path("api/", api.urls),
]
