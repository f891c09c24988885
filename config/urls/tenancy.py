from django.contrib import admin
from django.urls import include, path

from config.urls.common import handler400, handler403, handler404, handler500, openapi_path
from config.urls.common import urlpatterns as common_urls

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    *common_urls,
    openapi_path(),
    path("admin/", admin.site.urls),
    path("", include("apps.tenancy.urls")),
]
