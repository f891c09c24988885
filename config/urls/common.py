"""URL patterns every service serves, and its JSON error handlers."""

from django.urls import include, path

urlpatterns = [path("", include("apps.common.urls"))]

handler404 = "apps.common.errors.not_found"
handler500 = "apps.common.errors.server_error"
