from django.urls import path

from apps.common.ninja import platform_api
from apps.shortener.api import router
from apps.shortener.views import link_follow
from config.urls.common import handler400, handler403, handler404, handler500, openapi_path
from config.urls.common import urlpatterns as common_urls

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

api = platform_api(title="Shortener", urls_namespace="shortener-api")
api.add_router("/", router)

urlpatterns = [
    *common_urls,
    openapi_path(api),
    path("api/", api.urls),
    path("s/<str:code>", link_follow, name="link-follow"),
]
