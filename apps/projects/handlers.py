"""The projects service's reactions to other services' events: identity's user events (the
people directory) and the shortener's URLExpired (a shared task's link ended).

Thin: services/people.py does the work, in the tenant's storage. A user event can arrive before
the tenant's storage is provisioned (identity creates the owner while TenantCreated is on its
way): the handler then fails and the consumer retries it with backoff.
"""

from django.db import transaction

from apps.events.catalog import Envelope
from apps.events.consumer import handles
from apps.projects.db import tenant_db
from apps.projects.services import people as people_services
from apps.projects.services import sharing as sharing_services
from apps.projects.share import CODE_LENGTH_MAX


class TenantNotReady(Exception):
    """The event's tenant has no active storage here yet."""


def _active_tenant(tenant_id: str) -> object:
    from apps.projects.tenants.models import ProvisioningStatus
    from apps.projects.tenants.selectors import tenant_get

    tenant = tenant_get(tenant_id=tenant_id)
    if tenant is None or tenant.status != ProvisioningStatus.ACTIVE:
        raise TenantNotReady(f"tenant {tenant_id} is not provisioned here yet")
    return tenant


@handles("UserPermissionChanged")
def on_user_permission_changed(event: Envelope) -> None:
    """Joined, changed role in or left the organization: the directory follows."""
    from apps.projects.tenants.context import tenant_context

    data = event.data
    with tenant_context(_active_tenant(data["tenant_id"])), transaction.atomic(using=tenant_db()):
        is_member = bool(data["roles"])
        people_services.person_upsert(
            user_id=data["user_id"],
            name=data.get("full_name"),
            email=data.get("email"),
            is_member=is_member,
            roles=data["roles"],
        )
        if is_member and data.get("project_id") and event.actor_id:
            people_services.person_project_join(
                tenant_id=data["tenant_id"],
                user_id=data["user_id"],
                project_id=int(data["project_id"]),
                role=str(data.get("project_role") or "member"),
                invited_by=event.actor_id,
            )


@handles("UserUpdated")
def on_user_updated(event: Envelope) -> None:
    """A profile change (accounts are not per tenant): every tenant that knows the person follows.
    One query per active tenant: names change rarely (a per-tenant UserUpdated from identity would
    make this one tenant)."""
    from apps.projects.tenants.context import tenant_context
    from apps.projects.tenants.models import ProvisioningStatus, Tenant

    data = event.data
    for tenant in Tenant.objects.filter(status=ProvisioningStatus.ACTIVE):
        with tenant_context(tenant), transaction.atomic(using=tenant_db()):
            people_services.person_rename(user_id=data["user_id"], name=data.get("full_name"), email=data.get("email"))


@handles("URLExpired")
def on_url_expired(event: Envelope) -> None:
    """A short link stopped working (revoked, expired, used up): if it shared one of the tenant's
    tasks, its shared view refuses its passes from now on and its open views close (used up: it
    takes no more visitors, its passes run out by themselves; services/sharing.py)."""
    from apps.projects.tenants.context import tenant_context

    code, reason = str(event.data["code"]), str(event.data["reason"])
    # No shared view can have this code: too long for one, or a link to a URL, not to a task.
    if not event.tenant_id or len(code) > CODE_LENGTH_MAX or ("task_id" in event.data and not event.data["task_id"]):
        return
    with tenant_context(_active_tenant(event.tenant_id)), transaction.atomic(using=tenant_db()):
        sharing_services.shared_link_end(code=code, reason=reason, ended_at=event.occurred_at, event_id=event.id)
