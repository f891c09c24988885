import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from apps.projects.tenants import selectors, services
from apps.projects.tenants.context import tenant_admin_alias
from apps.projects.tenants.models import Tenant


def _migrate_tenants(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("migrate_tenants", *args, "--skip-shared", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _table_exists(alias: str, schema: str, table: str) -> bool:
    connection = connections[alias]
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{schema}.{table}"])
        return cursor.fetchone()[0]


def _unapply_projects_app(tenant: Tenant) -> str:
    """Really migrates the tenant's board tables away (app `projects` to zero); returns the alias."""
    alias = tenant_admin_alias(tenant) if tenant.is_database_mode else "default"
    connection = connections[alias]
    connection.set_schema(tenant.schema_name)
    MigrationExecutor(connection).migrate([("projects", None)])
    connection.set_schema_to_public()
    Tenant.objects.filter(pk=tenant.pk).update(schema_version="stale")
    return alias


@pytest.mark.parametrize("isolation", ["schema", "database"])
def test_a_tenant_behind_the_target_is_really_migrated_and_recorded(new_tenant, isolation: str) -> None:
    tenant = new_tenant(isolation=isolation)
    alias = _unapply_projects_app(tenant)
    assert not _table_exists(alias, tenant.schema_name, "projects_project")

    out, err = _migrate_tenants("--tenant", tenant.slug)

    assert "1 to migrate" in out
    assert "migrated 1, failed 0" in out
    assert "1/1" in err  # the progress bar
    assert _table_exists(alias, tenant.schema_name, "projects_project")
    tenant.refresh_from_db()
    assert tenant.schema_version == selectors.migration_target_version()


def test_tenants_at_the_target_are_skipped_without_a_migration_run(new_tenant) -> None:
    first, second = new_tenant(), new_tenant(isolation="database")

    out, _ = _migrate_tenants("--tenant", first.slug, "--tenant", second.slug)

    assert "2 active tenants, 2 up to date, 0 to migrate" in out
    assert "migrated 0, failed 0" in out


def test_dry_run_lists_pending_migrations_and_changes_nothing(new_tenant) -> None:
    tenant = new_tenant()
    alias = _unapply_projects_app(tenant)

    out, _ = _migrate_tenants("--tenant", tenant.slug, "--dry-run")

    assert f"{tenant.slug} (schema): projects.0001_initial" in out
    assert not _table_exists(alias, tenant.schema_name, "projects_project")
    tenant.refresh_from_db()
    assert tenant.schema_version == "stale"


def test_one_broken_tenant_is_reported_and_the_others_still_migrate(new_tenant) -> None:
    healthy, broken = new_tenant(), new_tenant()
    _unapply_projects_app(healthy)
    Tenant.objects.filter(pk=broken.pk).update(schema_version="stale")
    with connections["default"].cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {broken.schema_name} CASCADE")  # its storage is gone

    with pytest.raises(CommandError, match="1 tenant"):
        _migrate_tenants("--tenant", healthy.slug, "--tenant", broken.slug, "--workers", "2")

    healthy.refresh_from_db()
    broken.refresh_from_db()
    assert healthy.schema_version == selectors.migration_target_version()
    assert healthy.last_migration_error == ""
    assert broken.schema_version == "stale"
    assert broken.last_migration_error != ""
    services.tenant_destroy(tenant=broken)
