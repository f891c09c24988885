"""Provisioning and migrating tenant storage in the projects service.

Every step checks the real state before acting (a schema that exists was cloned: the
clone is one transaction; a database that exists was created: CREATE DATABASE is atomic),
so a run that crashed anywhere can simply be started again. The step log on the registry
row says how far the last run got.
"""

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta

import psycopg
from django.conf import settings
from django.core.management.sql import emit_post_migrate_signal
from django.db import DatabaseError, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django_tenants.clone import CloneSchema
from django_tenants.utils import quote_schema_name, schema_exists
from psycopg import sql

from apps.projects.db import tenant_pools
from apps.projects.tenants import selectors
from apps.projects.tenants.cloning import CloneScript, UnsupportedTemplate, clone_script_build
from apps.projects.tenants.context import (
    database_role_password,
    server_url,
    template_database_alias,
    tenant_admin_alias,
    tenant_alias,
)
from apps.projects.tenants.models import Domain, Isolation, ProvisioningStatus, Tenant
from apps.projects.tenants.outbox import tenant_outbox_ensure

logger = logging.getLogger(__name__)

SCHEMA_STEPS = ("registry_recorded", "template_ready", "schema_cloned", "domain_recorded", "version_recorded")
DATABASE_STEPS = (
    "registry_recorded",
    "role_created",
    "template_ready",
    "database_created",
    "schema_renamed",
    "privileges_granted",
    "domain_recorded",
    "version_recorded",
)
StepObserver = Callable[[Tenant, str], None]


class ProvisioningError(Exception):
    """Provisioning could not finish now; it may work on a later attempt."""


class ProvisioningRefused(ProvisioningError):
    """Provisioning can never work as asked (an unknown placement or isolation): not retried."""


# What a later attempt may get past (a server that was down, a template that vanished) ...
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (psycopg.Error, DatabaseError, OSError, ProvisioningError)
# ... and what it cannot.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (ProvisioningRefused, LookupError)
# A retry claimed by a worker that then died is taken up again after this long.
RETRY_LEASE = timedelta(minutes=10)


# Process-level caches: the migrations on disk do not change under a running process.
_templates_ready: dict[tuple[str, str], str] = {}
_clone_scripts: dict[str, CloneScript | None] = {}


# --- migrating one schema (a tenant's, or a template) -------------------------------


def _schema_migrate(*, alias: str, schema_name: str) -> int:
    """Applies the tenant apps' unapplied migrations to one schema; returns how many."""
    connection = connections[alias]
    # The recorder table must be created inside this schema, not found in public.
    connection.set_schema(schema_name, include_public=False)
    MigrationRecorder(connection).ensure_schema()
    connection.set_schema(schema_name)
    try:
        executor = MigrationExecutor(connection)
        _, leaves = selectors.migration_target()
        plan = executor.migration_plan(list(leaves))
        if plan:
            executor.migrate(list(leaves), plan=plan)
            emit_post_migrate_signal(verbosity=0, interactive=False, db=alias, plan=plan)
        return len(plan)
    finally:
        connection.set_schema_to_public()


@contextmanager
def _advisory_lock(alias: str, key: str) -> Iterator[None]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [key])
    try:
        yield
    finally:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])


def template_schema_ensure() -> str:
    """The template schema, migrated to the target; returns the target version."""
    version = selectors.migration_target_version()
    schema = settings.TENANT_TEMPLATE_SCHEMA
    if _templates_ready.get(("default", schema)) == version and schema_exists(schema):
        return version
    connection = connections["default"]
    connection.set_schema_to_public()
    with _advisory_lock("default", f"tenant-template:{schema}"):
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_schema_name(schema)}")
        if _schema_migrate(alias="default", schema_name=schema):
            _clone_scripts.pop(schema, None)
    _templates_ready[("default", schema)] = version
    return version


def _clone_script() -> CloneScript | None:
    schema = settings.TENANT_TEMPLATE_SCHEMA
    if schema not in _clone_scripts:
        try:
            _clone_scripts[schema] = clone_script_build(connection=connections["default"], template_schema=schema)
        except UnsupportedTemplate as exc:
            logger.warning("falling back to django-tenants clone_schema: %s", exc)
            _clone_scripts[schema] = None
    return _clone_scripts[schema]


def schema_clone(*, schema_name: str) -> None:
    """A new schema with the template's tables, constraints, indexes and rows, in one transaction."""
    connection = connections["default"]
    connection.set_schema_to_public()
    script = _clone_script()
    with transaction.atomic(using="default"):
        if script is None:
            CloneSchema().clone_schema(settings.TENANT_TEMPLATE_SCHEMA, schema_name, "DATA")
        else:
            with connection.cursor() as cursor:
                cursor.execute(script.for_schema(quote_schema_name(schema_name)))
    connection.set_schema_to_public()


# --- database mode: a server, a role, a database -------------------------------------


def _server_connect(placement: str, database: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(f"{server_url(placement)}/{database}", autocommit=True, connect_timeout=10)


def _database_exists(server: psycopg.Connection, name: str) -> bool:
    return server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def _template_lock_key() -> str:
    return f"tenant-template-db:{settings.TENANT_TEMPLATE_DATABASE}"


def template_database_ensure(*, placement: str) -> str:
    """The template database on a server, migrated to the target; returns the target version.

    Its existence is checked on the server every time (one query): the process cache only
    saves re-running migrations, since the template can be dropped under a running process.
    Creating and migrating it holds an exclusive advisory lock; cloning it holds the shared one
    (_database_create), so nobody clones a template that is being made.
    """
    version = selectors.migration_target_version()
    name = settings.TENANT_TEMPLATE_DATABASE
    with _server_connect(placement) as server:
        if _templates_ready.get((placement, name)) == version and _database_exists(server, name):
            return version
        server.execute("SELECT pg_advisory_lock(hashtext(%s))", [_template_lock_key()])
        if not _database_exists(server, name):
            logger.warning("template database %s is missing on placement %s: creating it", name, placement)
            server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            server.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
        alias = template_database_alias(placement)
        try:
            connection = connections[alias]
            connection.set_schema_to_public()
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_schema_name(settings.TENANT_TEMPLATE_SCHEMA)}")
            _schema_migrate(alias=alias, schema_name=settings.TENANT_TEMPLATE_SCHEMA)
            # Every tenant database cloned from here has its own outbox (apps/projects/tenants/outbox.py).
            tenant_outbox_ensure(alias=alias, schema=settings.TENANT_TEMPLATE_SCHEMA)
        finally:
            # CREATE DATABASE ... TEMPLATE refuses a template that has any connection open.
            connections[alias].close()
            server.execute("SELECT pg_advisory_unlock(hashtext(%s))", [_template_lock_key()])
    _templates_ready[(placement, name)] = version
    return version


def _role_ensure(tenant: Tenant) -> None:
    password = database_role_password(role=tenant.database_role)
    role = sql.Identifier(tenant.database_role)
    with _server_connect(tenant.placement) as server:
        exists = server.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [tenant.database_role]).fetchone()
        verb = "ALTER" if exists else "CREATE"
        server.execute(
            sql.SQL(
                "{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
                "CONNECTION LIMIT 50 PASSWORD {}"
            ).format(sql.SQL(verb), role, sql.Literal(password))
        )


def _database_clone(server: psycopg.Connection, tenant: Tenant) -> bool:
    """CREATE DATABASE from the template, under the template's shared lock; False when the template is gone."""
    template = settings.TENANT_TEMPLATE_DATABASE
    server.execute("SELECT pg_advisory_lock_shared(hashtext(%s))", [_template_lock_key()])
    try:
        deadline = time.monotonic() + 10
        while not _database_exists(server, tenant.database_name):
            if not _database_exists(server, template):
                return False
            try:
                server.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(tenant.database_name), sql.Identifier(template)
                    )
                )
            except psycopg.errors.InvalidCatalogName:
                return False  # dropped between the check and the clone (a DROP takes no advisory lock)
            except psycopg.errors.ObjectInUse:
                # Another session is on the template (a concurrent migration or clone): wait.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return True
    finally:
        server.execute("SELECT pg_advisory_unlock_shared(hashtext(%s))", [_template_lock_key()])


def _database_create(tenant: Tenant) -> None:
    """The tenant's database, cloned from the template; a template that vanished is made again."""
    for _ in range(3):
        with _server_connect(tenant.placement) as server:
            if _database_clone(server, tenant):
                return
        # Outside the shared lock: making the template takes the exclusive one.
        _templates_ready.pop((tenant.placement, settings.TENANT_TEMPLATE_DATABASE), None)
        template_database_ensure(placement=tenant.placement)
    raise ProvisioningError(f"the template database {settings.TENANT_TEMPLATE_DATABASE} keeps disappearing")


def _schema_rename(tenant: Tenant) -> None:
    with _server_connect(tenant.placement, tenant.database_name) as db:
        has_tenant_schema = db.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [tenant.schema_name]).fetchone()
        if not has_tenant_schema:
            db.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(settings.TENANT_TEMPLATE_SCHEMA), sql.Identifier(tenant.schema_name)
                )
            )


def _privileges_grant(tenant: Tenant) -> None:
    """The role may connect to its database and read and write its tables: no DDL, nothing else."""
    role, schema, database = (
        sql.Identifier(n) for n in (tenant.database_role, tenant.schema_name, tenant.database_name)
    )
    statements = [
        "REVOKE ALL ON DATABASE {database} FROM PUBLIC",
        "GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role}",
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        "GRANT USAGE ON SCHEMA {schema} TO {role}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
        # Tables later migrations create (as the owner) are the role's to use as well.
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
    ]
    with _server_connect(tenant.placement, tenant.database_name) as db, db.transaction():
        for statement in statements:
            db.execute(sql.SQL(statement).format(role=role, schema=schema, database=database))


# --- provisioning ---------------------------------------------------------------------


def tenant_register(
    *, tenant_id: uuid.UUID | str, slug: str, name: str, isolation: str = Isolation.SCHEMA, placement: str = "default"
) -> Tenant:
    """The registry row (idempotent): a retry keeps the names the first attempt chose."""
    tenant_uuid = uuid.UUID(str(tenant_id))
    if isolation not in Isolation.values:
        raise ProvisioningRefused(f"unknown isolation {isolation!r}")
    database_name = f"{settings.TENANT_DATABASE_PREFIX}{tenant_uuid.hex}" if isolation == Isolation.DATABASE else ""
    tenant, created = Tenant.objects.get_or_create(
        tenant_id=tenant_uuid,
        defaults={
            "schema_name": f"t_{tenant_uuid.hex}",
            "slug": slug,
            "name": name,
            "isolation": isolation,
            "placement": placement,
            "database_name": database_name,
            "database_role": f"tenant_{tenant_uuid.hex}" if isolation == Isolation.DATABASE else "",
            "status": ProvisioningStatus.PROVISIONING,
        },
    )
    if not created and tenant.status != ProvisioningStatus.ACTIVE:
        # A new request (a retry from tenancy): a fresh round of automatic attempts.
        tenant.status = ProvisioningStatus.PROVISIONING
        tenant.failure_reason = ""
        tenant.provisioning_attempts = 0
        tenant.next_attempt_at = None
        tenant.save(
            update_fields=["status", "failure_reason", "provisioning_attempts", "next_attempt_at", "updated_at"]
        )
    return tenant


def _step_record(tenant: Tenant, step: str, observer: StepObserver | None) -> None:
    if step not in tenant.steps_done:
        tenant.steps_done = [*tenant.steps_done, step]
        Tenant.objects.filter(pk=tenant.pk).update(steps_done=tenant.steps_done, updated_at=timezone.now())
    if observer is not None:
        observer(tenant, step)


def _domain_record(tenant: Tenant) -> None:
    Domain.objects.get_or_create(
        domain=selectors.tenant_domain_name(slug=tenant.slug), defaults={"tenant": tenant, "is_primary": True}
    )


def _version_record(tenant: Tenant, version: str) -> None:
    tenant.schema_version = version
    tenant.migrated_at = timezone.now()
    tenant.status = ProvisioningStatus.ACTIVE
    tenant.failure_reason = ""
    tenant.next_attempt_at = None
    tenant.save(
        update_fields=["schema_version", "migrated_at", "status", "failure_reason", "next_attempt_at", "updated_at"]
    )


def _run_schema_steps(tenant: Tenant, observer: StepObserver | None) -> None:
    version = template_schema_ensure()
    _step_record(tenant, "template_ready", observer)
    if not schema_exists(tenant.schema_name):
        schema_clone(schema_name=tenant.schema_name)
    _step_record(tenant, "schema_cloned", observer)
    _domain_record(tenant)
    _step_record(tenant, "domain_recorded", observer)
    _version_record(tenant, version)
    _step_record(tenant, "version_recorded", observer)


def _run_database_steps(tenant: Tenant, observer: StepObserver | None) -> None:
    server_url(tenant.placement)  # an unknown placement fails here, before anything is created
    _role_ensure(tenant)
    _step_record(tenant, "role_created", observer)
    version = template_database_ensure(placement=tenant.placement)
    _step_record(tenant, "template_ready", observer)
    _database_create(tenant)
    _step_record(tenant, "database_created", observer)
    _schema_rename(tenant)
    _step_record(tenant, "schema_renamed", observer)
    _privileges_grant(tenant)
    _step_record(tenant, "privileges_granted", observer)
    _domain_record(tenant)
    _step_record(tenant, "domain_recorded", observer)
    _version_record(tenant, version)
    _step_record(tenant, "version_recorded", observer)


def tenant_provision(
    *,
    tenant_id: uuid.UUID | str,
    slug: str,
    name: str,
    isolation: str = Isolation.SCHEMA,
    placement: str = "default",
    on_step: StepObserver | None = None,
) -> Tenant:
    """Creates (or finishes creating) a tenant's storage. Returns the tenant, active or failed.

    `on_step(tenant, step)` is called after each step: benchmarks time the steps with it,
    and tests use it to stop a run midway as a crash would.
    """
    connections["default"].set_schema_to_public()
    tenant = tenant_register(tenant_id=tenant_id, slug=slug, name=name, isolation=isolation, placement=placement)
    if tenant.status == ProvisioningStatus.ACTIVE:
        return tenant
    return _provision_attempt(tenant, on_step)


def retry_delays() -> tuple[int, ...]:
    """Seconds before each automatic retry; a tenant gets 1 + len(...) attempts in all."""
    return tuple(settings.TENANT_PROVISIONING_RETRY_SECONDS)


def _provision_attempt(tenant: Tenant, on_step: StepObserver | None) -> Tenant:
    _step_record(tenant, "registry_recorded", on_step)
    # Inside a transaction (the consumer's: the handler's effects commit with its processed-event
    # row) a failed query would poison it; a savepoint keeps it usable for recording the failure.
    attempt = transaction.atomic(using="default") if connections["default"].in_atomic_block else nullcontext()
    try:
        with attempt:
            if tenant.is_database_mode:
                _run_database_steps(tenant, on_step)
            else:
                _run_schema_steps(tenant, on_step)
    except PERMANENT_ERRORS as exc:
        _failure_record(tenant, exc, retryable=False)
    except RETRYABLE_ERRORS as exc:
        _failure_record(tenant, exc, retryable=True)
    return tenant


def _failure_record(tenant: Tenant, exc: BaseException, *, retryable: bool) -> None:
    """Marks the attempt failed; schedules the next one while the retries last."""
    logger.exception("provisioning tenant %s failed (attempt %s)", tenant.slug, tenant.provisioning_attempts + 1)
    connections["default"].set_schema_to_public()
    delays = retry_delays()
    tenant.provisioning_attempts += 1
    tenant.status = ProvisioningStatus.FAILED
    tenant.failure_reason = f"{type(exc).__name__}: {exc}"[:1000]
    tenant.next_attempt_at = None
    if retryable and tenant.provisioning_attempts <= len(delays):
        tenant.next_attempt_at = timezone.now() + timedelta(seconds=delays[tenant.provisioning_attempts - 1])
    Tenant.objects.filter(pk=tenant.pk).update(
        status=tenant.status,
        failure_reason=tenant.failure_reason,
        provisioning_attempts=tenant.provisioning_attempts,
        next_attempt_at=tenant.next_attempt_at,
        updated_at=timezone.now(),
    )


def tenant_provisioning_retries_due(*, now: datetime | None = None, limit: int = 10) -> list[Tenant]:
    """Runs the automatic retries that are due (Celery beat calls this every few seconds).

    Each tenant is claimed under a row lock by pushing its next attempt RETRY_LEASE ahead, so
    two workers never take the same one, and one whose worker died is taken up after the lease.
    Every attempt is reported like the first (TenantProvisioned / TenantProvisioningFailed).
    """
    now = now or timezone.now()
    attempted: list[Tenant] = []
    for _ in range(limit):
        connections["default"].set_schema_to_public()
        with transaction.atomic():
            tenant = (
                Tenant.objects.select_for_update(skip_locked=True)
                .filter(next_attempt_at__lte=now)
                .exclude(status=ProvisioningStatus.ACTIVE)
                .order_by("next_attempt_at")
                .first()
            )
            if tenant is None:
                break
            tenant.status = ProvisioningStatus.PROVISIONING
            tenant.next_attempt_at = now + RETRY_LEASE
            tenant.save(update_fields=["status", "next_attempt_at", "updated_at"])
        logger.info("retrying provisioning of tenant %s (attempt %s)", tenant.slug, tenant.provisioning_attempts + 1)
        tenant = _provision_attempt(tenant, None)
        tenant_provisioning_report(tenant=tenant)
        attempted.append(tenant)
    return attempted


def tenant_provisioning_report(*, tenant: Tenant, trace_id: str | None = None) -> None:
    """Tells the platform (tenancy above all) how provisioning ended, through the outbox."""
    from apps.events.outbox import publish

    with transaction.atomic():
        if tenant.status == ProvisioningStatus.ACTIVE:
            publish(
                "TenantProvisioned",
                {
                    "tenant_id": str(tenant.tenant_id),
                    "slug": tenant.slug,
                    "isolation": tenant.isolation,
                    "schema_version": tenant.schema_version,
                },
                tenant_id=str(tenant.tenant_id),
                actor_id=None,
                aggregate_id=str(tenant.tenant_id),
                trace_id=trace_id,
            )
        else:
            publish(
                "TenantProvisioningFailed",
                {
                    "tenant_id": str(tenant.tenant_id),
                    "slug": tenant.slug,
                    "reason": tenant.failure_reason,
                    "attempt": tenant.provisioning_attempts,
                    "max_attempts": 1 + len(retry_delays()),
                    "next_attempt_at": tenant.next_attempt_at.isoformat() if tenant.next_attempt_at else None,
                },
                tenant_id=str(tenant.tenant_id),
                actor_id=None,
                aggregate_id=str(tenant.tenant_id),
                trace_id=trace_id,
            )


def tenant_destroy(*, tenant: Tenant) -> None:
    """Drops a tenant's schema or database and role, and its registry row (tests, benchmarks, offboarding)."""
    connections["default"].set_schema_to_public()
    if tenant.is_database_mode:
        for alias in (tenant_alias(tenant), tenant_admin_alias(tenant)):
            connections[alias].close()
            tenant_pools.forget(alias)  # the database is dropped below: no pooled connection may stay
            connections.settings.pop(alias, None)
            settings.DATABASES.pop(alias, None)
        with _server_connect(tenant.placement) as server:
            server.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(tenant.database_name))
            )
            server.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(tenant.database_role)))
    else:
        with connections["default"].cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {quote_schema_name(tenant.schema_name)} CASCADE")
    Tenant.objects.filter(pk=tenant.pk).delete()


# --- migrating every tenant -------------------------------------------------------------


def tenant_migrate(*, tenant: Tenant, target_version: str) -> int:
    """Brings one tenant to the target and records it; returns how many migrations ran."""
    if tenant.is_database_mode:
        alias = tenant_admin_alias(tenant)
        try:
            applied = _schema_migrate(alias=alias, schema_name=tenant.schema_name)
            tenant_outbox_ensure(alias=alias, schema=tenant.schema_name)  # tenants made before it existed
        finally:
            connections[alias].close()
    else:
        applied = _schema_migrate(alias="default", schema_name=tenant.schema_name)
    connections["default"].set_schema_to_public()
    Tenant.objects.filter(pk=tenant.pk).update(
        schema_version=target_version, migrated_at=timezone.now(), last_migration_error="", updated_at=timezone.now()
    )
    return applied


def tenant_migration_failure_record(*, tenant: Tenant, error: str) -> None:
    connections["default"].set_schema_to_public()
    Tenant.objects.filter(pk=tenant.pk).update(last_migration_error=error[:2000], updated_at=timezone.now())
