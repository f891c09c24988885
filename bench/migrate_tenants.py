"""migrate_tenants over many real tenants: the skip path, and real migration runs.

    .venv/bin/python bench/migrate_tenants.py [--tenants 1000] [--stale 20]

1. provisions N schema-mode tenants (real schemas, cloned from the template);
2. times `migrate_tenants` with all N at the target (the skip path: no migration run);
3. migrates the board app of `--stale` tenants away for real, then times migrate_tenants
   bringing them back, with 1 and with 2 workers.
"""

import argparse
import io
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provisioning import bench_cleanup, bench_django_setup
from results import Result, results_report, target_at_most


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--stale", type=int, default=20)
    args = parser.parse_args()
    database = bench_django_setup("migrate_tenants")
    try:
        results = run(args.tenants, args.stale)
    finally:
        bench_cleanup(database)
    results_report("migrate_tenants", results)


def _timed_command(*args: str) -> tuple[float, str]:
    from django.core.management import call_command

    out = io.StringIO()
    started = time.perf_counter()
    call_command("migrate_tenants", *args, "--skip-shared", "--no-progress", stdout=out, stderr=io.StringIO())
    return time.perf_counter() - started, out.getvalue().strip().splitlines()[0]


def _make_stale(tenants: list) -> None:
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    from apps.projects.tenants.models import Tenant

    connection = connections["default"]
    for tenant in tenants:
        connection.set_schema(tenant.schema_name)
        MigrationExecutor(connection).migrate([("projects", None)])
    connection.set_schema_to_public()
    Tenant.objects.filter(pk__in=[t.pk for t in tenants]).update(schema_version="stale")


def run(count: int, stale: int) -> list[Result]:
    from apps.projects.tenants import services

    started = time.perf_counter()
    tenants = []
    for _ in range(count):
        tenant_id = uuid.uuid4()
        tenant = services.tenant_provision(tenant_id=tenant_id, slug=f"m{tenant_id.hex[:12]}", name="Bench")
        assert tenant.status == "active", tenant.failure_reason
        tenants.append(tenant)
    provisioned = time.perf_counter() - started
    print(f"provisioned {count} schema-mode tenants in {provisioned:.1f}s ({provisioned / count * 1000:.0f} ms each)")
    print("| run | tenants | to migrate | workers | seconds |")
    print("|---|---:|---:|---:|---:|")
    seconds, summary = _timed_command("--workers", "2")
    print(f"| all up to date (skip path) | {count} | 0 | 2 | {seconds:.2f} |  <!-- {summary} -->")
    # The target is for 1,000 tenants: fewer (the smoke size) are held to it too.
    results = [
        Result(
            f"{count:,} up-to-date tenants: migrate_tenants",
            seconds,
            "s",
            "<= 10 s",
            target_at_most(seconds, 10),
            detail=f"provisioned in {provisioned / count * 1000:.0f} ms each",
        )
    ]
    for workers in (1, 2):
        _make_stale(tenants[:stale])
        seconds, summary = _timed_command("--workers", str(workers))
        print(f"| {stale} behind by one real migration | {count} | {stale} | {workers} | {seconds:.2f} |")
        results.append(Result(f"{stale} of {count:,} behind by one migration, {workers} worker(s)", seconds, "s"))
    return results


if __name__ == "__main__":
    main()
