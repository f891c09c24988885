"""The projects service's reactions to tenancy's events. Thin: services do the work."""

from apps.events.catalog import Envelope
from apps.events.consumer import handles
from apps.projects.tenants import services


@handles("TenantCreated")
def on_tenant_created(event: Envelope) -> None:
    """Provisions (or resumes provisioning) the tenant's storage, then reports how it ended.

    A retry from tenancy is a new TenantCreated for the same tenant: provisioning resumes.
    """
    data = event.data
    tenant = services.tenant_provision(
        tenant_id=data["tenant_id"],
        slug=data["slug"],
        name=data["name"],
        isolation=data.get("isolation", "schema"),
        placement=data.get("placement") or "default",
    )
    services.tenant_provisioning_report(tenant=tenant, trace_id=event.trace_id)
