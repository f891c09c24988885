"""The tenant travels with a Celery task: sent inside a tenant's context, run inside it."""

import pytest

from apps.projects.db import tenant_db
from apps.projects.tenants.celery import TENANT_HEADER, carry_tenant, enter_tenant, leave_tenant
from apps.projects.tenants.context import current_tenant, tenant_context
from config.celery import app


@app.task(name="tests.provisioning.where_am_i")
def where_am_i() -> tuple[str | None, str]:
    tenant = current_tenant()
    return (tenant.slug if tenant else None), tenant_db()


@pytest.mark.parametrize("isolation", ["schema", "database"])
def test_a_task_runs_in_the_tenant_it_was_sent_from(new_tenant, isolation: str) -> None:
    tenant = new_tenant(isolation=isolation)
    headers: dict = {}
    with tenant_context(tenant):
        carry_tenant(headers=headers)
        expected_database = tenant_db()
    assert headers == {TENANT_HEADER: str(tenant.tenant_id)}

    where_am_i.push_request(headers=headers)
    try:
        enter_tenant(task=where_am_i)
        inside = where_am_i.run()
        leave_tenant(task=where_am_i)
    finally:
        where_am_i.pop_request()

    assert inside == (tenant.slug, expected_database)
    assert current_tenant() is None


def test_a_task_sent_outside_any_tenant_carries_none() -> None:
    headers: dict = {}

    carry_tenant(headers=headers)

    assert headers == {}


def test_the_projects_service_connects_the_tenant_handlers_to_celery() -> None:
    from celery import signals

    def uids(signal: object) -> set:
        return {lookup_key[0] for lookup_key, _ in signal.receivers}

    assert "projects.carry_tenant" in uids(signals.before_task_publish)
    assert "projects.enter_tenant" in uids(signals.task_prerun)
    assert "projects.leave_tenant" in uids(signals.task_postrun)
