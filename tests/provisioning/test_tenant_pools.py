"""Database-mode tenants share a capped set of connection pools per process (apps/projects/db.py).

Real tenant databases; pg_stat_activity says which databases this process holds connections to.
"""

import os
import threading
import time

import pytest
from django.db import connections

from apps.projects.db import tenant_pools
from apps.projects.models import Project
from apps.projects.tenants.context import tenant_context
from apps.projects.tenants.models import Tenant


def _open_tenant_databases(tenants: list[Tenant]) -> set[str]:
    """The tenant databases this process has a connection to, as the server sees it."""
    names = [tenant.database_name for tenant in tenants]
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT datname FROM pg_stat_activity WHERE datname = ANY(%s)",
            [names],
        )
        return {row[0] for row in cursor.fetchall()} & set(names)


def _alias(tenant: Tenant) -> str:
    return f"tenant_{tenant.tenant_id.hex}"  # not tenant_alias(): that would use the pool


@pytest.fixture
def three_database_tenants(new_tenant, settings) -> list[Tenant]:
    settings.TENANT_DB_POOLS_MAX = 2
    tenant_pools.close_all()
    return [new_tenant(isolation="database") for _ in range(3)]


def test_a_process_keeps_at_most_the_cap_of_tenant_pools_open(three_database_tenants) -> None:
    first, second, third = three_database_tenants

    for tenant in (first, second, third):
        with tenant_context(tenant):
            assert Project.objects.count() == 0

    assert len(tenant_pools) == 2
    assert _alias(first) not in tenant_pools  # the least recently used pool was closed...
    # ...and so were its connections, while the two open pools keep theirs for the next request.
    assert _open_tenant_databases(three_database_tenants) == {second.database_name, third.database_name}


def test_a_tenant_pool_busy_in_another_thread_is_never_closed_under_it(three_database_tenants) -> None:
    first, second, third = three_database_tenants
    holding, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def long_request() -> None:
        with tenant_context(first):
            seen.append(Project.objects.count())  # takes a connection from first's pool
            holding.set()
            release.wait(10)
            seen.append(Project.objects.count())  # the same connection, still usable
        connections.close_all()

    worker = threading.Thread(target=long_request)
    worker.start()
    assert holding.wait(10)
    try:
        for tenant in (second, third):  # beyond the cap: second is evicted, not the busy first
            with tenant_context(tenant):
                Project.objects.count()
        assert _alias(first) in tenant_pools
        assert _alias(second) not in tenant_pools
    finally:
        release.set()
        worker.join(10)
    assert seen == [0, 0]


def test_pool_sizes_follow_the_process_setting() -> None:
    options = connections["default"].settings_dict["OPTIONS"]["pool"]
    assert options["max_size"] == int(os.environ.get("DB_POOL_MAX_SIZE", "4"))
    assert connections["default"].settings_dict["CONN_MAX_AGE"] == 0


def test_an_idle_tenant_pool_closes_its_connections(new_tenant, settings) -> None:
    settings.TENANT_DB_POOL_MAX_IDLE = 0.5
    tenant = new_tenant(isolation="database")
    with tenant_context(tenant):
        assert Project.objects.count() == 0
    connections[_alias(tenant)].close()  # back to the pool, as at the end of a request
    assert _open_tenant_databases([tenant]) == {tenant.database_name}

    deadline = time.monotonic() + 10
    while _open_tenant_databases([tenant]) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert _open_tenant_databases([tenant]) == set()
    assert _alias(tenant) in tenant_pools  # the pool stays, empty, ready for the next request
