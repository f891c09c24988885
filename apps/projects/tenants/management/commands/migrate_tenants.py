"""Migrates every tenant (schema and database mode) to the tenant apps' migrations on disk.

    python manage.py migrate_tenants [--workers N] [--dry-run] [--tenant SLUG ...] [--skip-shared]

Tenants whose recorded version is the target are skipped with one query, without a
migration run. The rest migrate in parallel threads (one connection each); a failing
tenant is recorded and reported, and the others go on. Use this, not plain `migrate`
(django-tenants' migrate_schemas knows nothing of database-mode tenants).
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from apps.projects.tenants import selectors, services
from apps.projects.tenants.context import tenant_admin_alias
from apps.projects.tenants.models import Tenant


class ProgressBar:
    def __init__(self, total: int, *, stream: Any, enabled: bool) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.stream, self.enabled = stream, enabled and total > 0
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def advance(self, *, failed: bool) -> None:
        with self.lock:
            self.done += 1
            self.failed += int(failed)
            if not self.enabled:
                return
            width = 30
            filled = int(width * self.done / self.total)
            elapsed = time.monotonic() - self.started
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"failed={self.failed} {elapsed:.1f}s"
            )
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()


def _pending_migrations(tenant: Tenant) -> list[str]:
    _, leaves = selectors.migration_target()
    alias = tenant_admin_alias(tenant) if tenant.is_database_mode else "default"
    connection = connections[alias]
    connection.set_schema(tenant.schema_name)
    try:
        plan = MigrationExecutor(connection).migration_plan(list(leaves))
        return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
    finally:
        connection.set_schema_to_public()
        if alias != "default":
            connection.close()


class Command(BaseCommand):
    help = "Migrate every tenant's schema or database, skipping tenants already at the target."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workers", type=int, default=2, help="tenants migrated at once (threads)")
        parser.add_argument("--dry-run", action="store_true", help="list what would be migrated; change nothing")
        parser.add_argument("--tenant", action="append", dest="slugs", help="only this tenant (repeatable)")
        parser.add_argument("--skip-shared", action="store_true", help="do not migrate the public schema first")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        dry_run, slugs = options["dry_run"], options["slugs"]
        if not options["skip_shared"] and not dry_run:
            call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        target = selectors.migration_target_version()
        if not dry_run:
            services.template_schema_ensure()
        behind = list(selectors.tenants_behind(target_version=target, slugs=slugs))
        active = selectors.tenants_active_count(slugs=slugs)
        self.stdout.write(
            f"target {target}: {active} active tenants, {active - len(behind)} up to date, {len(behind)} to migrate"
        )
        if dry_run:
            for tenant in behind:
                pending = _pending_migrations(tenant)
                self.stdout.write(
                    f"  {tenant.slug} ({tenant.isolation}): {', '.join(pending) or 'record version only'}"
                )
            return
        failures = self._migrate_all(behind, target=target, workers=max(1, options["workers"]), options=options)
        elapsed = time.monotonic() - started
        self.stdout.write(f"migrated {len(behind) - len(failures)}, failed {len(failures)} in {elapsed:.2f}s")
        for slug, error in failures:
            self.stderr.write(f"  FAILED {slug}: {error}")
        if failures:
            raise CommandError(f"{len(failures)} tenant(s) failed to migrate")

    def _migrate_all(self, tenants: list[Tenant], *, target: str, workers: int, options: dict) -> list[tuple[str, str]]:
        progress = ProgressBar(len(tenants), stream=self.stderr, enabled=not options["no_progress"])
        failures: list[tuple[str, str]] = []
        placements = {tenant.placement for tenant in tenants if tenant.is_database_mode}
        for placement in placements:
            services.template_database_ensure(placement=placement)

        def migrate_one(tenant: Tenant) -> None:
            try:
                services.tenant_migrate(tenant=tenant, target_version=target)
            except Exception as exc:  # noqa: BLE001 - one tenant's failure must not stop the others
                error = f"{type(exc).__name__}: {exc}"
                services.tenant_migration_failure_record(tenant=tenant, error=error)
                failures.append((tenant.slug, error))
                progress.advance(failed=True)
            else:
                progress.advance(failed=False)
            finally:
                connections.close_all()

        if workers == 1:
            for tenant in tenants:
                migrate_one(tenant)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="migrate-tenant") as pool:
                for future in as_completed([pool.submit(migrate_one, tenant) for tenant in tenants]):
                    future.result()
        return sorted(failures)
