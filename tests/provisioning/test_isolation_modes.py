"""Provisioning a tenant in either isolation mode: a schema in the shared database, or a database
(and a least-privilege role) of its own. What holds for both is one test over both modes."""

import uuid

import psycopg
import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django_tenants.utils import schema_exists

from apps.projects.tenants import selectors, services
from apps.projects.tenants.context import database_role_password, tenant_alias, tenant_context
from apps.projects.tenants.models import Domain, ProvisioningStatus, Tenant

MODES = ["schema", "database"]
STEPS = {"schema": services.SCHEMA_STEPS, "database": services.DATABASE_STEPS}
CRASH_POINTS = [
    *[("schema", step) for step in ("registry_recorded", "template_ready", "schema_cloned", "domain_recorded")],
    *[("database", step) for step in ("role_created", "database_created", "schema_renamed", "privileges_granted")],
]


class SimulatedCrash(Exception):
    """Stands for the process dying between two steps: nothing catches it."""


def _rows(sql: str, params: list | None = None) -> list[tuple]:
    with connections["default"].cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _catalog(schema: str) -> dict[str, list]:
    """The schema's structure with its own name taken out, so two schemas compare."""

    def unqualified(rows: list[tuple]) -> list[tuple]:
        return [tuple(str(v).replace(f"{schema}.", "") if v is not None else v for v in row) for row in rows]

    catalog = {
        "columns": _rows(
            """SELECT table_name, column_name, data_type, is_nullable, collation_name, is_identity
                 FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2""",
            [schema],
        ),
        "constraints": _rows(
            """SELECT c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid, false)
                 FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s ORDER BY 1, 2""",
            [schema],
        ),
        "indexes": _rows(
            """SELECT indexname, replace(indexdef, ' ON ' || quote_ident(schemaname) || '.', ' ON ')
                 FROM pg_indexes WHERE schemaname = %s ORDER BY 1""",
            [schema],
        ),
    }
    return {name: unqualified(rows) for name, rows in catalog.items()}


def _connect_as_tenant_role(tenant: Tenant, database: str) -> psycopg.Connection:
    url = settings.TENANT_DATABASE_SERVERS[tenant.placement]
    host_part = url.split("@", 1)[1]
    password = database_role_password(role=tenant.database_role)
    return psycopg.connect(f"postgres://{tenant.database_role}:{password}@{host_part}/{database}", autocommit=True)


# Both modes


@pytest.mark.parametrize("isolation", MODES)
def test_a_tenant_becomes_active_at_the_migration_target_with_every_step_done(new_tenant, isolation: str) -> None:
    tenant = new_tenant(isolation=isolation)

    assert tenant.status == ProvisioningStatus.ACTIVE, tenant.failure_reason
    assert tenant.schema_version == selectors.migration_target_version()
    assert tenant.steps_done == list(STEPS[isolation])
    assert Domain.objects.get(tenant=tenant).domain == f"{tenant.slug}.{settings.BASE_DOMAIN}"


@pytest.mark.parametrize("isolation", MODES)
def test_tenants_see_only_their_own_rows(new_tenant, isolation: str) -> None:
    """Two tenants of one mode and one of the other: only the tenant that wrote a row sees it."""
    other_mode = "database" if isolation == "schema" else "schema"
    acme, globex, initech = (
        new_tenant(isolation=isolation),
        new_tenant(isolation=isolation),
        new_tenant(isolation=other_mode),
    )

    with tenant_context(acme):
        ContentType.objects.create(app_label="isolation", model="acme_only")
        used = ContentType.objects.db_manager().db
    for other in (globex, initech):
        with tenant_context(other):
            assert not ContentType.objects.filter(app_label="isolation").exists()
            ContentType.objects.create(app_label="isolation", model="other")
    with tenant_context(acme):
        assert list(ContentType.objects.filter(app_label="isolation").values_list("model", flat=True)) == ["acme_only"]
    if isolation == "database":
        # The tenant's rows went through its own least-privilege connection, not the default one.
        assert used == tenant_alias(acme)
        assert connections[tenant_alias(acme)].settings_dict["USER"] == acme.database_role
    else:
        assert used == "default"  # a schema tenant is the shared database with its schema on the search path


@pytest.mark.parametrize("isolation", MODES)
def test_provisioning_twice_is_a_no_op(new_tenant, isolation: str) -> None:
    tenant = new_tenant(isolation=isolation)

    again = services.tenant_provision(
        tenant_id=tenant.tenant_id, slug=tenant.slug, name=tenant.name, isolation=isolation
    )

    assert again.pk == tenant.pk
    assert again.status == ProvisioningStatus.ACTIVE
    assert Tenant.objects.filter(tenant_id=tenant.tenant_id).count() == 1


@pytest.mark.parametrize(("isolation", "crash_after"), CRASH_POINTS)
def test_a_run_that_crashed_midway_is_resumed_to_active(isolation: str, crash_after: str) -> None:
    tenant_id = uuid.uuid4()
    slug = f"c{tenant_id.hex[:10]}"

    def crash(tenant: Tenant, step: str) -> None:
        if step == crash_after:
            raise SimulatedCrash(step)

    with pytest.raises(SimulatedCrash):
        services.tenant_provision(tenant_id=tenant_id, slug=slug, name="Crashy", isolation=isolation, on_step=crash)
    halfway = Tenant.objects.get(tenant_id=tenant_id)
    assert halfway.status == ProvisioningStatus.PROVISIONING
    assert halfway.steps_done[-1] == crash_after

    resumed = services.tenant_provision(tenant_id=tenant_id, slug=slug, name="Crashy", isolation=isolation)

    assert resumed.status == ProvisioningStatus.ACTIVE, resumed.failure_reason
    assert resumed.steps_done == list(STEPS[isolation])
    with tenant_context(resumed):
        assert ContentType.objects.filter(app_label="contenttypes").exists()


def test_unknown_isolation_is_refused_before_anything_is_created() -> None:
    tenant_id = uuid.uuid4()

    with pytest.raises(services.ProvisioningError):
        services.tenant_provision(tenant_id=tenant_id, slug="weird", name="Weird", isolation="cluster")

    assert not Tenant.objects.filter(tenant_id=tenant_id).exists()


# Schema mode


def test_a_schema_tenant_has_the_template_s_tables_and_migration_records(new_tenant) -> None:
    tenant = new_tenant()

    assert schema_exists(tenant.schema_name)
    applied = "SELECT app, name FROM {}.django_migrations ORDER BY app, name"
    assert _rows(applied.format(tenant.schema_name)) == _rows(applied.format(settings.TENANT_TEMPLATE_SCHEMA))
    assert len(_rows(applied.format(tenant.schema_name))) > 0


def test_cloned_schema_matches_the_template_catalog_name_for_name(new_tenant) -> None:
    tenant = new_tenant()

    clone, template = _catalog(tenant.schema_name), _catalog(settings.TENANT_TEMPLATE_SCHEMA)

    assert clone["columns"] == template["columns"]
    assert clone["constraints"] == template["constraints"]
    assert clone["indexes"] == template["indexes"]
    assert len(template["constraints"]) > 0


def test_identity_sequences_continue_after_the_copied_rows(new_tenant) -> None:
    tenant = new_tenant()

    with tenant_context(tenant):
        highest = ContentType.objects.order_by("-id").values_list("id", flat=True).first()
        created = ContentType.objects.create(app_label="isolation", model="next")

    assert created.id > highest


# Database mode


def test_database_tenant_gets_its_own_database_role_and_migrated_tables(new_tenant) -> None:
    tenant = new_tenant(isolation="database")

    assert tenant.database_name == f"{settings.TENANT_DATABASE_PREFIX}{tenant.tenant_id.hex}"
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


def test_the_registry_stays_on_the_default_database_inside_a_database_tenant(new_tenant) -> None:
    acme = new_tenant(isolation="database")

    with tenant_context(acme):
        assert Tenant.objects.db_manager().db == "default"
        assert Tenant.objects.filter(pk=acme.pk).exists()


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
