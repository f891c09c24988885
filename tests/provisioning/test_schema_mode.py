import uuid

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django_tenants.utils import schema_exists

from apps.projects.tenants import selectors, services
from apps.projects.tenants.context import tenant_context
from apps.projects.tenants.models import Domain, ProvisioningStatus, Tenant


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


def test_schema_tenant_becomes_active_with_the_template_tables_and_migration_records(new_tenant) -> None:
    tenant = new_tenant()

    assert tenant.status == ProvisioningStatus.ACTIVE, tenant.failure_reason
    assert schema_exists(tenant.schema_name)
    assert tenant.schema_version == selectors.migration_target_version()
    assert tenant.steps_done == list(services.SCHEMA_STEPS)
    assert Domain.objects.get(tenant=tenant).domain == f"{tenant.slug}.{settings.BASE_DOMAIN}"
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


def test_schema_tenants_see_only_their_own_rows(new_tenant) -> None:
    acme, globex = new_tenant(), new_tenant()

    with tenant_context(acme):
        ContentType.objects.create(app_label="isolation", model="acme_only")
    with tenant_context(globex):
        assert not ContentType.objects.filter(app_label="isolation").exists()
        ContentType.objects.create(app_label="isolation", model="globex_only")
    with tenant_context(acme):
        assert list(ContentType.objects.filter(app_label="isolation").values_list("model", flat=True)) == ["acme_only"]


def test_identity_sequences_continue_after_the_copied_rows(new_tenant) -> None:
    tenant = new_tenant()

    with tenant_context(tenant):
        highest = ContentType.objects.order_by("-id").values_list("id", flat=True).first()
        created = ContentType.objects.create(app_label="isolation", model="next")

    assert created.id > highest


def test_provisioning_twice_is_a_no_op(new_tenant) -> None:
    tenant = new_tenant()

    again = services.tenant_provision(tenant_id=tenant.tenant_id, slug=tenant.slug, name=tenant.name)

    assert again.pk == tenant.pk
    assert again.status == ProvisioningStatus.ACTIVE
    assert Tenant.objects.filter(tenant_id=tenant.tenant_id).count() == 1


@pytest.mark.parametrize("crash_after", ["registry_recorded", "template_ready", "schema_cloned", "domain_recorded"])
def test_a_run_that_crashed_midway_is_resumed_to_active(new_tenant, crash_after: str) -> None:
    tenant_id = uuid.uuid4()
    slug = f"c{tenant_id.hex[:10]}"

    def crash(tenant: Tenant, step: str) -> None:
        if step == crash_after:
            raise SimulatedCrash(step)

    with pytest.raises(SimulatedCrash):
        services.tenant_provision(tenant_id=tenant_id, slug=slug, name="Crashy", on_step=crash)
    halfway = Tenant.objects.get(tenant_id=tenant_id)
    assert halfway.status == ProvisioningStatus.PROVISIONING
    assert halfway.steps_done[-1] == crash_after

    resumed = services.tenant_provision(tenant_id=tenant_id, slug=slug, name="Crashy")

    assert resumed.status == ProvisioningStatus.ACTIVE, resumed.failure_reason
    assert resumed.steps_done == list(services.SCHEMA_STEPS)
    assert schema_exists(resumed.schema_name)


def test_unknown_isolation_is_refused_before_anything_is_created() -> None:
    tenant_id = uuid.uuid4()

    with pytest.raises(services.ProvisioningError):
        services.tenant_provision(tenant_id=tenant_id, slug="weird", name="Weird", isolation="cluster")

    assert not Tenant.objects.filter(tenant_id=tenant_id).exists()
