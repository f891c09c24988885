"""The projects service's paths of sharing (issue 11), none behind a sign-in: a shared task's
view (its pass comes from the shortener) and the shortener's internal check. Apart from
apps/projects/urls.py, whose pages all send an anonymous visitor to sign in."""

from django.urls import path, re_path

from apps.projects import internal, views
from apps.projects.share import CODE_PATTERN

urlpatterns = [
    re_path(rf"^shared/(?P<code>{CODE_PATTERN})$", views.shared_page, name="shared-page"),
    # Service to service (the shortener); the gateway never routes /internal/.
    path("internal/tasks/<int:task_id>/share-check", internal.task_share_check, name="internal-task-share-check"),
]
