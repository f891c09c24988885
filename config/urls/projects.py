from django.urls import include, path

from apps.common.ninja import platform_api
from apps.projects import api as projects_api
from config.urls.common import handler400, handler403, handler404, handler500, openapi_path
from config.urls.common import urlpatterns as common_urls

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

api = platform_api(title="Projects", urls_namespace="projects-api")
projects_api.install(api)

urlpatterns = [
    *common_urls,
    openapi_path(api),
    path("api/", api.urls),
    path("", include("apps.projects.urls")),
    path("", include("apps.projects.sharing_urls")),
]
