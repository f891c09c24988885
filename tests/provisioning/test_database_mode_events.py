"""A database-mode tenant's board lives in its own database and its events in the service's outbox:
the event is written only once the board change has committed."""

import pytest
from django.db import transaction

from apps.events.models import OutboxEvent
from apps.projects.db import tenant_db
from apps.projects.models import Project
from apps.projects.permissions import CallerClaims
from apps.projects.services import projects as project_services
from apps.projects.tenants.context import tenant_context


def _owner(tenant) -> CallerClaims:
    return CallerClaims(
        user_id="owner-1", tenant_id=str(tenant.tenant_id), roles=("owner",), permissions=frozenset({"create_project"})
    )


def _events_of(tenant) -> list[str]:
    return list(
        OutboxEvent.objects.using("default")
        .filter(tenant_id=str(tenant.tenant_id))
        .order_by("id")
        .values_list("event_type", flat=True)
    )


def test_a_committed_change_in_a_tenant_database_is_in_the_outbox(new_tenant) -> None:
    tenant = new_tenant(isolation="database")

    with tenant_context(tenant):
        assert tenant_db() != "default"
        project_services.project_create(caller=_owner(tenant), key="KEPT", name="Kept")

    assert _events_of(tenant) == ["ProjectCreated", "ProjectUserAdded"]


def test_a_rolled_back_change_in_a_tenant_database_publishes_nothing(new_tenant) -> None:
    tenant = new_tenant(isolation="database")

    with tenant_context(tenant), pytest.raises(RuntimeError), transaction.atomic(using=tenant_db()):
        project_services.project_create(caller=_owner(tenant), key="GONE", name="Rolled back")
        raise RuntimeError("the caller changed its mind")

    with tenant_context(tenant):
        assert not Project.objects.using(tenant_db()).exists()
    assert _events_of(tenant) == []


def test_the_event_waits_for_the_tenant_s_commit(new_tenant) -> None:
    tenant = new_tenant(isolation="database")

    with tenant_context(tenant), transaction.atomic(using=tenant_db()):
        project_services.project_create(caller=_owner(tenant), key="LATE", name="Not yet committed")
        assert _events_of(tenant) == []

    assert _events_of(tenant) == ["ProjectCreated", "ProjectUserAdded"]
