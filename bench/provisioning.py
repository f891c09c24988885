"""How long until a new tenant answers queries, by provisioning method, in one run.

    .venv/bin/python bench/provisioning.py [--tenants 15]

Methods, each on the same fresh database:
- replay:  CREATE SCHEMA + run every tenant-app migration (what django-tenants does by default)
- clone (django-tenants): its plpgsql clone_schema() of the template schema, DATA mode
- clone (catalog copy): tenant_provision() in schema mode (apps/projects/tenants/cloning.py)
- database: tenant_provision() in database mode (CREATE DATABASE ... TEMPLATE, role, grants)
"Ready" = provisioned and one query through the tenant's routing answered.
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg
from results import Result, db_prefix, results_report, target_at_most

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")


def bench_django_setup(name: str) -> str:
    """A fresh database `bench_<name>`, the projects service pointed at it; returns its name."""
    database = f"{db_prefix()}{name}"
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        server.execute(f'CREATE DATABASE "{database}"')
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.projects",
        DATABASE_URL=f"{POSTGRES_URL}/{database}",
        TENANT_TEMPLATE_DATABASE=f"{database}_tenant_template",
        TENANT_DATABASE_PREFIX=f"{database}_tenant_",
        LOG_LEVEL="WARNING",
    )
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    return database


def bench_cleanup(database: str) -> None:
    from django.db import connections

    from apps.projects.tenants import services
    from apps.projects.tenants.models import Tenant

    for tenant in Tenant.objects.filter(isolation="database"):
        services.tenant_destroy(tenant=tenant)
    connections.close_all()
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as server:
        for name in (database, f"{database}_tenant_template"):
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=15)
    parser.add_argument("--queries", type=int, default=2000, help="queries per mode for the routing cost")
    args = parser.parse_args()
    database = bench_django_setup("provisioning")
    try:
        results = run(args.tenants)
        results += routing(args.queries)
    finally:
        bench_cleanup(database)
    results_report("provisioning", results)


# What each method's p50 must stay within, when it has a target (issue 4).
TARGETS_MS = {"clone (catalog copy, schema mode)": 200, "database mode (CREATE DATABASE TEMPLATE)": 1000}


def run(count: int) -> list[Result]:
    from django.conf import settings
    from django.contrib.contenttypes.models import ContentType
    from django.db import connections
    from django_tenants.clone import CloneSchema
    from django_tenants.postgresql_backend.base import FakeTenant

    from apps.projects.tenants import selectors, services
    from apps.projects.tenants.context import tenant_context

    services.template_schema_ensure()
    services.template_database_ensure(placement="default")
    migrations = len(selectors.migration_target()[1])

    def ready(tenant: object) -> None:
        with tenant_context(tenant):
            ContentType.objects.count()

    def replay() -> None:
        schema = f"r_{uuid.uuid4().hex}"
        with connections["default"].cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{schema}"')
        services._schema_migrate(alias="default", schema_name=schema)
        with tenant_context(FakeTenant(schema)):
            ContentType.objects.count()

    def clone_django_tenants() -> None:
        schema = f"c_{uuid.uuid4().hex}"
        CloneSchema().clone_schema(settings.TENANT_TEMPLATE_SCHEMA, schema, "DATA")
        connections["default"].set_schema(schema)
        ContentType.objects.count()
        connections["default"].set_schema_to_public()

    def provision(isolation: str) -> None:
        tenant_id = uuid.uuid4()
        tenant = services.tenant_provision(
            tenant_id=tenant_id, slug=f"b{tenant_id.hex[:12]}", name="Bench", isolation=isolation
        )
        assert tenant.status == "active", tenant.failure_reason
        ready(tenant)

    # The fast methods first: the slow ones leave many schemas behind, and order should not favour us.
    methods = {
        "clone (catalog copy, schema mode)": lambda: provision("schema"),
        "database mode (CREATE DATABASE TEMPLATE)": lambda: provision("database"),
        "replay migrations": replay,
        "clone (django-tenants clone_schema)": clone_django_tenants,
    }
    FakeTenant.is_database_mode = False  # the context helpers ask every tenant this
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", [settings.TENANT_TEMPLATE_SCHEMA]
        )
        tables = cursor.fetchone()[0]
    print(f"{count} tenants per method; tenant apps: {tables} tables, {migrations} leaf migrations")
    print(f"| {'method':42} | p50 ms | p95 ms | mean ms |")
    print(f"|{'-' * 44}|-------:|-------:|--------:|")
    results = []
    for label, method in methods.items():
        method()  # warm-up: caches, first connection
        timings = []
        for _ in range(count):
            started = time.perf_counter()
            method()
            timings.append((time.perf_counter() - started) * 1000)
        print(
            f"| {label:42} | {percentile(timings, 0.5):6.0f} | {percentile(timings, 0.95):6.0f} "
            f"| {statistics.mean(timings):7.0f} |"
        )
        p50, limit = percentile(timings, 0.5), TARGETS_MS.get(label)
        results.append(
            Result(
                f"tenant ready p50: {label}",
                p50,
                "ms",
                f"<= {limit:,} ms" if limit else "",
                target_at_most(p50, limit) if limit else None,
                detail=f"p95 {percentile(timings, 0.95):.0f} ms, {count} tenants",
            )
        )
    return results


def routing(queries: int = 2000) -> list[Result]:
    """What routing a query costs: schema mode (default alias) vs database mode (runtime alias)."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connections

    from apps.projects.tenants import services
    from apps.projects.tenants.context import tenant_alias, tenant_context

    print(f"\n| routing ({queries} queries each) | first query ms | per query us |")
    print("|---|---:|---:|")
    results = []
    for isolation in ("schema", "database"):
        tenant_id = uuid.uuid4()
        tenant = services.tenant_provision(
            tenant_id=tenant_id, slug=f"q{tenant_id.hex[:12]}", name="Bench", isolation=isolation
        )
        alias = tenant_alias(tenant) if tenant.is_database_mode else "default"
        connections[alias].close()
        started = time.perf_counter()
        with tenant_context(tenant):
            ContentType.objects.exists()
        first = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        for _ in range(queries):
            with tenant_context(tenant):
                ContentType.objects.exists()
        per_query = (time.perf_counter() - started) / queries * 1e6
        print(f"| {isolation} mode, tenant_context + 1 query | {first:.1f} | {per_query:.0f} |")
        results.append(
            Result(f"{isolation} mode: tenant_context + 1 query", per_query, "us", detail=f"first {first:.1f} ms")
        )
    return results


if __name__ == "__main__":
    main()
