from django.conf import settings

from apps.tenancy.models import Placement, Tenant
from apps.tenancy.slugs import slug_check


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


def slug_availability(*, slug: str) -> dict:
    """Whether signup would accept `slug` now: the same rules, then whether a tenant has it.

    `reason` says why not in a sentence, `code` as a word (slugs.SlugProblem's codes, or
    `taken`); both are null when it is available. A slug can still be taken between this answer
    and the signup: signup checks again, and the unique row decides.
    """
    problem = slug_check(slug)
    if problem is None and Tenant.objects.filter(slug=slug).exists():
        domain = tenant_domain_name(slug=slug)
        return {"slug": slug, "available": False, "code": "taken", "reason": f"{domain} is taken"}
    if problem is None:
        return {"slug": slug, "available": True, "code": None, "reason": None}
    return {"slug": slug, "available": False, "code": problem.code, "reason": problem.message}


def placement_for_new_tenant() -> Placement | None:
    return Placement.objects.filter(accepts_new_tenants=True).order_by("-is_default", "name").first()


def tenant_domain_name(*, slug: str) -> str:
    return f"{slug}.{settings.BASE_DOMAIN}"
