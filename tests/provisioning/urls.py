"""A tenant-scoped probe view for the routing tests (the board's own views come later)."""

from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest, JsonResponse
from django.urls import path

from apps.projects.tenants.context import current_tenant


def probe(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        ContentType.objects.create(app_label="probe", model=request.GET["mark"])
    tenant = current_tenant()
    return JsonResponse(
        {
            "tenant": tenant.slug if tenant else None,
            "database": ContentType.objects.db_manager().db,
            "marks": sorted(ContentType.objects.filter(app_label="probe").values_list("model", flat=True)),
        }
    )


urlpatterns = [path("probe", probe)]
