from django.conf import settings

from apps.tenancy.models import Placement, Tenant


def tenant_get_by_slug(*, slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug).first()


def tenant_public_status(*, tenant: Tenant) -> dict:
    return {
        "id": str(tenant.id),
        "slug": tenant.slug,
        "name": tenant.name,
        "status": tenant.status,
        "isolation": tenant.isolation,
        "failure_reason": tenant.failure_reason or None,
    }


def placement_for_new_tenant() -> Placement | None:
    return Placement.objects.filter(accepts_new_tenants=True).order_by("-is_default", "name").first()


def tenant_domain_name(*, slug: str) -> str:
    return f"{slug}.{settings.BASE_DOMAIN}"
