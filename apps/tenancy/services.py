"""Writes of the tenancy service: signup, provisioning requests and their outcome.

Provisioning itself happens in the projects service: signup writes the tenant and a
TenantCreated event in one transaction; the projects service provisions and answers
with TenantProvisioned or TenantProvisioningFailed (apps/tenancy/handlers.py).
"""

import logging
import uuid

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.common.exceptions import Conflict, InvalidInput, ServiceError
from apps.tenancy import selectors
from apps.tenancy.errors import IdentityUnavailable, SlugTaken
from apps.tenancy.models import Domain, Isolation, Tenant, TenantStatus
from apps.tenancy.slugs import slug_check

logger = logging.getLogger(__name__)


def _owner_create(*, tenant: Tenant, email: str, password: str, full_name: str, email_verified: bool = False) -> str:
    """The tenant's owner, through identity's internal endpoint; returns the user id.

    "" when the address already had an account: identity then offers it the ownership by mail
    instead, and the signer's answer must not differ (docs/identity.md, signup).
    """
    url = f"{settings.SERVICE_URLS['identity'].rstrip('/')}/internal/tenant-owners"
    body = {
        "tenant_id": str(tenant.id),
        "tenant_slug": tenant.slug,
        "tenant_name": tenant.name,
        "email": email,
        "password": password,
        "full_name": full_name,
        "email_verified": email_verified,
    }
    try:
        response = httpx.post(
            url,
            json=body,
            headers={"X-Internal-Token": settings.INTERNAL_API_TOKEN},
            timeout=settings.IDENTITY_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise IdentityUnavailable(f"The identity service did not answer: {type(exc).__name__}") from exc
    if response.status_code == 201:
        return str(response.json().get("user_id") or "")
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        error = {}
    if response.status_code in (400, 409, 422):
        # Identity's own verdict on the owner (weak password, bad email, email taken) is the caller's to fix.
        fields = error.get("fields")
        raise ServiceError(
            error.get("message", "The owner was refused"),
            code=error.get("code", "owner_refused"),
            status=response.status_code,
            **({"fields": fields} if fields else {}),
        )
    raise IdentityUnavailable(f"The identity service answered {response.status_code}")


def _provisioning_request(*, tenant: Tenant, actor_id: str | None, trace_id: str | None) -> None:
    from apps.events.outbox import publish

    publish(
        "TenantCreated",
        {
            "tenant_id": str(tenant.id),
            "slug": tenant.slug,
            "name": tenant.name,
            "isolation": tenant.isolation,
            "placement": tenant.placement.name if tenant.placement else None,
            "owner_user_id": tenant.owner_user_id or None,
        },
        tenant_id=str(tenant.id),
        actor_id=actor_id,
        aggregate_id=str(tenant.id),
        trace_id=trace_id,
    )


def _slug_taken(slug: str) -> SlugTaken:
    message = f"{selectors.tenant_domain_name(slug=slug)} is taken"
    return SlugTaken(message, fields={"slug": [message]})


def tenant_signup(
    *,
    name: str,
    slug: str,
    owner_email: str,
    owner_password: str,
    isolation: str = Isolation.SCHEMA,
    owner_full_name: str = "",
    owner_email_verified: bool = False,
    trace_id: str | None = None,
) -> Tenant:
    """A new tenant, its domain and its owner; its storage is requested from the projects service."""
    problem = slug_check(slug)
    if problem:
        raise InvalidInput(
            problem.message, code="invalid_slug", fields={"slug": [problem.message]}, reason=problem.code
        )
    if isolation not in Isolation.values:
        message = f"isolation is one of {', '.join(Isolation.values)}"
        raise InvalidInput(message, code="invalid_isolation", fields={"isolation": [message]})
    if selectors.tenant_get_by_slug(slug=slug) is not None:
        raise _slug_taken(slug)
    placement = None
    if isolation == Isolation.DATABASE:
        placement = selectors.placement_for_new_tenant()
        if placement is None:
            raise ServiceError("No placement accepts database-mode tenants now", code="no_placement", status=503)
    try:
        # The slug's unique row is held while identity creates the owner: a concurrent signup
        # for the same slug waits, then fails, and nothing half-made is left on either side.
        with transaction.atomic():
            tenant = Tenant.objects.create(
                id=uuid.uuid4(),
                slug=slug,
                name=name,
                isolation=isolation,
                placement=placement,
                owner_email=owner_email,
                status=TenantStatus.PROVISIONING,
                provisioning_attempts=1,
            )
            Domain.objects.create(domain=selectors.tenant_domain_name(slug=slug), tenant=tenant, is_primary=True)
            tenant.owner_user_id = _owner_create(
                tenant=tenant,
                email=owner_email,
                password=owner_password,
                full_name=owner_full_name,
                email_verified=owner_email_verified,
            )
            tenant.save(update_fields=["owner_user_id", "updated_at"])
            _provisioning_request(tenant=tenant, actor_id=tenant.owner_user_id, trace_id=trace_id)
    except IntegrityError as exc:
        raise _slug_taken(slug) from exc
    return tenant


def tenant_provisioning_retry(*, tenant: Tenant, actor_id: str | None = None, trace_id: str | None = None) -> Tenant:
    """Asks for provisioning again; the projects service resumes from its step log."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update(of=("self",)).select_related("placement").get(pk=tenant.pk)
        if tenant.status == TenantStatus.ACTIVE:
            raise Conflict(f"Tenant {tenant.slug} is already active", code="not_retryable")
        tenant.status = TenantStatus.PROVISIONING
        tenant.failure_reason = ""
        tenant.provisioning_attempts += 1
        tenant.save(update_fields=["status", "failure_reason", "provisioning_attempts", "updated_at"])
        _provisioning_request(tenant=tenant, actor_id=actor_id, trace_id=trace_id)
    return tenant


def tenant_mark_active(*, tenant_id: str, schema_version: str = "") -> Tenant | None:
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update(of=("self",)).filter(pk=tenant_id).first()
        if tenant is None:
            logger.warning("TenantProvisioned for unknown tenant %s", tenant_id)
            return None
        tenant.status = TenantStatus.ACTIVE
        tenant.failure_reason = ""
        tenant.schema_version = schema_version or tenant.schema_version
        tenant.provisioned_at = tenant.provisioned_at or timezone.now()
        tenant.save(update_fields=["status", "failure_reason", "schema_version", "provisioned_at", "updated_at"])
    return tenant


def tenant_mark_failed(
    *,
    tenant_id: str,
    reason: str,
    attempt: int | None = None,
    max_attempts: int | None = None,
    next_attempt_at: str | None = None,
) -> Tenant | None:
    """Records a failed provisioning attempt.

    With `next_attempt_at` the projects service will try again by itself: the tenant stays
    `provisioning` and `failure_reason` says which attempt failed, why, and when the next one is.
    Without it the failure is final: `failed`, with the reason (an admin may retry).
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update(of=("self",)).filter(pk=tenant_id).first()
        if tenant is None:
            logger.warning("TenantProvisioningFailed for unknown tenant %s", tenant_id)
            return None
        if tenant.status == TenantStatus.ACTIVE:
            return tenant  # a late report of an earlier attempt: the later success stands
        reason = reason or "unknown"
        if next_attempt_at:
            tenant.status = TenantStatus.PROVISIONING
            tenant.failure_reason = (
                f"attempt {attempt} of {max_attempts} failed: {reason}; retrying at {next_attempt_at}"
            )[:1000]
        else:
            tenant.status = TenantStatus.FAILED
            gave_up = f"gave up after {attempt} attempts: " if attempt and attempt > 1 else ""
            tenant.failure_reason = f"{gave_up}{reason}"[:1000]
        tenant.save(update_fields=["status", "failure_reason", "updated_at"])
    return tenant
