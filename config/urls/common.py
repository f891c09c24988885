"""URL patterns every service serves, and its error handlers (apps/common/errors.py).

Each service's urlconf re-exports the four handlers: Django looks for them on ROOT_URLCONF.
"""

from django.urls import include, path

urlpatterns = [path("", include("apps.common.urls"))]

handler400 = "apps.common.errors.bad_request"
handler403 = "apps.common.errors.permission_denied"
handler404 = "apps.common.errors.not_found"
handler500 = "apps.common.errors.server_error"
