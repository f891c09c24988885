"""Django admin for platform staff on the apex host: tenants, domains, placements."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.tenancy import services
from apps.tenancy.models import Domain, Placement, Tenant, TenantStatus

admin.site.site_header = "Kanban platform: tenants"


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "status", "isolation", "placement", "provisioning_attempts", "created_at")
    list_filter = ("status", "isolation", "placement")
    search_fields = ("slug", "name", "owner_email", "id")
    readonly_fields = (
        "id", "status", "failure_reason", "provisioning_attempts", "owner_user_id", "schema_version",
        "created_at", "updated_at", "provisioned_at",
    )  # fmt: skip
    inlines = [DomainInline]
    actions = ["retry_provisioning"]

    @admin.action(description="Retry provisioning of the selected tenants")
    def retry_provisioning(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        retried, skipped = [], []
        for tenant in queryset:
            if tenant.status == TenantStatus.ACTIVE:
                skipped.append(tenant.slug)
                continue
            services.tenant_provisioning_retry(tenant=tenant, actor_id=f"staff:{request.user.pk}")
            retried.append(tenant.slug)
        if retried:
            self.message_user(request, f"Provisioning requested again for: {', '.join(retried)}", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"Already active, left alone: {', '.join(skipped)}", messages.WARNING)


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("domain", "tenant", "is_primary")
    search_fields = ("domain", "tenant__slug")


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "accepts_new_tenants", "is_default")
