"""How tenancy shows the projects service's provisioning reports: a failed attempt that will be
retried keeps the tenant `provisioning` and says so; a final failure is `failed` with its reason."""

import uuid

import pytest
from django.test import Client

from apps.events.catalog import envelope_create
from apps.tenancy.handlers import on_tenant_provisioned, on_tenant_provisioning_failed
from apps.tenancy.models import Tenant, TenantStatus

pytestmark = pytest.mark.django_db


def _tenant() -> Tenant:
    slug = f"retry-{uuid.uuid4().hex[:8]}"
    return Tenant.objects.create(
        slug=slug, name="Retry Co", isolation="database", owner_email=f"{slug}@retry.test", status="provisioning"
    )


def _failed(tenant: Tenant, **data: object) -> None:
    body = {"tenant_id": str(tenant.id), "slug": tenant.slug, "reason": "OperationalError: connection refused", **data}
    on_tenant_provisioning_failed(
        envelope_create("TenantProvisioningFailed", body, tenant_id=str(tenant.id), actor_id=None)
    )


def test_an_attempt_that_will_be_retried_keeps_the_tenant_provisioning(client: Client) -> None:
    tenant = _tenant()

    _failed(tenant, attempt=1, max_attempts=5, next_attempt_at="2026-12-01T22:00:05+00:00")
    shown = client.get(f"/api/tenants/{tenant.slug}").json()

    assert shown["status"] == "provisioning"
    assert shown["failure_reason"] == (
        "attempt 1 of 5 failed: OperationalError: connection refused; retrying at 2026-12-01T22:00:05+00:00"
    )

    on_tenant_provisioned(
        envelope_create(
            "TenantProvisioned",
            {"tenant_id": str(tenant.id), "slug": tenant.slug, "isolation": "database", "schema_version": "v1"},
            tenant_id=str(tenant.id),
            actor_id=None,
        )
    )
    assert client.get(f"/api/tenants/{tenant.slug}").json()["status"] == "active"


def test_the_last_attempt_leaves_the_tenant_failed_with_its_reason(client: Client) -> None:
    tenant = _tenant()

    _failed(tenant, attempt=5, max_attempts=5, next_attempt_at=None)
    shown = client.get(f"/api/tenants/{tenant.slug}").json()

    assert shown["status"] == "failed"
    assert shown["failure_reason"] == "gave up after 5 attempts: OperationalError: connection refused"
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.FAILED


def test_a_report_without_retry_fields_is_a_final_failure(client: Client) -> None:
    tenant = _tenant()

    _failed(tenant)

    assert client.get(f"/api/tenants/{tenant.slug}").json()["status"] == "failed"
