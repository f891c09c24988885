"""URL patterns every service serves, its OpenAPI document's view, and its error handlers (apps/common/errors.py).

Each service's urlconf re-exports the four handlers: Django looks for them on ROOT_URLCONF.
"""

from typing import TYPE_CHECKING

from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, include, path

if TYPE_CHECKING:
    from ninja import NinjaAPI

urlpatterns = [path("", include("apps.common.urls"))]

handler400 = "apps.common.errors.bad_request"
handler403 = "apps.common.errors.permission_denied"
handler404 = "apps.common.errors.not_found"
handler500 = "apps.common.errors.server_error"


def openapi_path(api: "NinjaAPI | None" = None) -> URLPattern:
    """`/openapi.json`: the service's OpenAPI document, from its Ninja `api`, or drf-spectacular's without one.

    The gateway merges every service's document (gateway/openapi.py); `manage.py openapi` prints it.
    """
    if api is None:
        from drf_spectacular.views import SpectacularJSONAPIView

        return path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi")
    ninja_api = api

    def openapi(request: HttpRequest) -> JsonResponse:
        return JsonResponse(ninja_api.get_openapi_schema())

    return path("openapi.json", openapi, name="openapi")
