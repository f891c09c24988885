from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView

from apps.identity.admin import admin_site
from config.urls.common import handler400, handler403, handler404, handler500
from config.urls.common import urlpatterns as common_urls

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    *common_urls,
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("admin/", admin_site.urls),
    path("", include("apps.identity.urls")),
]
