"""Tenancy's reactions to the projects service's provisioning reports. Thin."""

from apps.events.catalog import Envelope
from apps.events.consumer import handles
from apps.tenancy import services


@handles("TenantProvisioned")
def on_tenant_provisioned(event: Envelope) -> None:
    services.tenant_mark_active(tenant_id=event.data["tenant_id"], schema_version=event.data.get("schema_version", ""))


@handles("TenantProvisioningFailed")
def on_tenant_provisioning_failed(event: Envelope) -> None:
    """A failed attempt: the tenant stays `provisioning` while the projects service retries by itself."""
    data = event.data
    services.tenant_mark_failed(
        tenant_id=data["tenant_id"],
        reason=data.get("reason") or "",
        attempt=data.get("attempt"),
        max_attempts=data.get("max_attempts"),
        next_attempt_at=data.get("next_attempt_at"),
    )
