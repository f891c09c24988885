"""Background jobs of tenant provisioning (worker-projects; scheduled by beat). Thin: services do the work."""

from celery import shared_task

from apps.projects.tenants import services


@shared_task(name="apps.projects.tenants.tasks.provisioning_retries_due")
def provisioning_retries_due() -> list[str]:
    """Retries the failed provisionings whose next attempt is due; returns their slugs."""
    return [tenant.slug for tenant in services.tenant_provisioning_retries_due()]
