import uuid

import psycopg
import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connections

from apps.projects.tenants import selectors, services
from apps.projects.tenants.context import database_role_password, tenant_alias, tenant_context
from apps.projects.tenants.models import ProvisioningStatus, Tenant


class SimulatedCrash(Exception):
    pass


def _connect_as_tenant_role(tenant: Tenant, database: str) -> psycopg.Connection:
    url = settings.TENANT_DATABASE_SERVERS[tenant.placement]
    host_part = url.split("@", 1)[1]
    password = database_role_password(role=tenant.database_role)
    return psycopg.connect(f"postgres://{tenant.database_role}:{password}@{host_part}/{database}", autocommit=True)


def test_database_tenant_gets_its_own_database_role_and_migrated_tables(new_tenant) -> None:
    tenant = new_tenant(isolation="database")

    assert tenant.status == ProvisioningStatus.ACTIVE, tenant.failure_reason
    assert tenant.database_name == f"{settings.TENANT_DATABASE_PREFIX}{tenant.tenant_id.hex}"
    assert tenant.steps_done == list(services.DATABASE_STEPS)
    assert tenant.schema_version == selectors.migration_target_version()
    with _connect_as_tenant_role(tenant, tenant.database_name) as db:
        tables = db.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", [tenant.schema_name]
        ).fetchone()[0]
        role = db.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        assert role.fetchone() == (False, False, False)
    assert tables > 0


def test_tenant_role_can_read_and_write_but_not_change_the_schema(new_tenant) -> None:
    tenant = new_tenant(isolation="database")

    with _connect_as_tenant_role(tenant, tenant.database_name) as db:
        db.execute(f"SET search_path = {tenant.schema_name}")
        db.execute("INSERT INTO django_content_type (app_label, model) VALUES ('role', 'probe')")
        assert db.execute("SELECT count(*) FROM django_content_type WHERE app_label = 'role'").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("CREATE TABLE intruder (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("DROP TABLE django_content_type")


def test_tenant_role_cannot_connect_to_another_tenants_database(new_tenant) -> None:
    acme, globex = new_tenant(isolation="database"), new_tenant(isolation="database")

    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        _connect_as_tenant_role(acme, globex.database_name)


def test_database_tenants_and_schema_tenants_see_only_their_own_rows(new_tenant) -> None:
    acme, globex, initech = new_tenant(isolation="database"), new_tenant(isolation="database"), new_tenant()

    with tenant_context(acme):
        ContentType.objects.create(app_label="isolation", model="acme_only")
        assert ContentType.objects.db_manager().db == tenant_alias(acme)
    for other in (globex, initech):
        with tenant_context(other):
            assert not ContentType.objects.filter(app_label="isolation").exists()
    with tenant_context(acme):
        assert list(ContentType.objects.filter(app_label="isolation").values_list("model", flat=True)) == ["acme_only"]
    # The tenant's rows went through its own least-privilege connection, not the default one.
    assert connections[tenant_alias(acme)].settings_dict["USER"] == acme.database_role


def test_the_registry_stays_on_the_default_database_inside_a_database_tenant(new_tenant) -> None:
    acme = new_tenant(isolation="database")

    with tenant_context(acme):
        assert Tenant.objects.db_manager().db == "default"
        assert Tenant.objects.filter(pk=acme.pk).exists()


@pytest.mark.parametrize("crash_after", ["role_created", "database_created", "schema_renamed", "privileges_granted"])
def test_a_database_run_that_crashed_midway_is_resumed_to_active(crash_after: str) -> None:
    tenant_id = uuid.uuid4()
    slug = f"d{tenant_id.hex[:10]}"

    def crash(tenant: Tenant, step: str) -> None:
        if step == crash_after:
            raise SimulatedCrash(step)

    with pytest.raises(SimulatedCrash):
        services.tenant_provision(tenant_id=tenant_id, slug=slug, name="D", isolation="database", on_step=crash)
    assert Tenant.objects.get(tenant_id=tenant_id).status == ProvisioningStatus.PROVISIONING

    resumed = services.tenant_provision(tenant_id=tenant_id, slug=slug, name="D", isolation="database")

    assert resumed.status == ProvisioningStatus.ACTIVE, resumed.failure_reason
    assert resumed.steps_done == list(services.DATABASE_STEPS)
    with tenant_context(resumed):
        assert ContentType.objects.filter(app_label="contenttypes").exists()


def test_unknown_placement_fails_with_a_reason_and_a_retry_succeeds_once_registered(new_tenant) -> None:
    failed = new_tenant(isolation="database", placement="secondary")

    assert failed.status == ProvisioningStatus.FAILED
    assert "secondary" in failed.failure_reason
    assert failed.steps_done == ["registry_recorded"]

    # The second server is the same PostgreSQL under another address: the placement code path is real.
    settings.TENANT_DATABASE_SERVERS["secondary"] = settings.POSTGRES_URL.replace("127.0.0.1", "localhost")
    try:
        retried = services.tenant_provision(
            tenant_id=failed.tenant_id, slug=failed.slug, name=failed.name, isolation="database", placement="secondary"
        )
        assert retried.status == ProvisioningStatus.ACTIVE, retried.failure_reason
        assert retried.failure_reason == ""
        assert connections[tenant_alias(retried)].settings_dict["HOST"] == "localhost"
        with tenant_context(retried):
            assert ContentType.objects.exists()
        services.tenant_destroy(tenant=retried)
    finally:
        del settings.TENANT_DATABASE_SERVERS["secondary"]
