#!/usr/bin/env python3
"""The PostgreSQL connection budget of the whole platform, from platform/processes.toml.

    python platform/dbbudget.py [--postgres-url URL]   # the table, and the check against max_connections

Every process keeps bounded pools (config/settings/base.py): at most DB_POOL_MAX_SIZE connections
per database alias, per OS process. What one entry of processes.toml can open at once is

    instances x (pool + tenant pools) + db_direct

where instances is gunicorn's --workers (Celery's --concurrency: prefork children, each with its
own pools), pool is DB_POOL_MAX_SIZE, tenant pools are what a projects process may keep for
database-mode tenants (TENANT_DB_POOLS_MAX pools of min(TENANT_DB_POOL_MAX_SIZE, pool)), and
db_direct counts connections opened outside Django's pools. The sum over every process is the
budget; it must leave MARGIN connections of max_connections for administrators, migrations,
one-shot commands and test suites. tests/platform/test_dbbudget.py and tests/security/test_capacity.py
check it, and docs/benchmarks.md ("Connection budget") shows the table.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCESSES_FILE = ROOT / "platform" / "processes.toml"
# Settings whose processes have no PostgreSQL database (config/settings/analytics.py: DATABASES = {}).
NO_POSTGRES = frozenset({"analytics"})
# The projects service routes database-mode tenants to pools of their own (apps/projects/db.py).
TENANT_ROUTING = frozenset({"projects"})
# Defaults of config/settings/projects.py; a process may override them in its `env`.
TENANT_DEFAULTS = {"TENANT_DB_POOLS_MAX": 4, "TENANT_DB_POOL_MAX_SIZE": 2}
MARGIN = 20


@dataclass(frozen=True)
class ProcessBudget:
    name: str
    instances: int
    pool: int
    tenant_pools: int
    direct: int

    @property
    def total(self) -> int:
        return self.instances * (self.pool + self.tenant_pools) + self.direct


def _option(command: list[str], flag: str, default: int) -> int:
    if flag in command:
        return int(command[command.index(flag) + 1])
    return default


def instances_of(command: list[str]) -> int:
    """OS processes one entry runs, each with its own pools."""
    if command[0] == "gunicorn":
        return _option(command, "--workers", 1)
    if command[0] == "uvicorn":
        return _option(command, "--workers", 1)
    if command[0] == "celery" and "worker" in command:
        return _option(command, "--concurrency", 1)
    return 1


def budget_rows(path: Path = PROCESSES_FILE) -> list[ProcessBudget]:
    """One row per process that can reach PostgreSQL; raises ValueError when one states no pool size."""
    with path.open("rb") as handle:
        document = tomllib.load(handle)
    rows = []
    for name, entry in document.get("process", {}).items():
        settings = entry.get("settings")
        if settings is None or settings in NO_POSTGRES:
            continue
        env = entry.get("env", {})
        if "DB_POOL_MAX_SIZE" not in env:
            raise ValueError(f"process {name} uses PostgreSQL but sets no DB_POOL_MAX_SIZE in its env")
        pool = int(env["DB_POOL_MAX_SIZE"])
        tenant_pools = 0
        if settings in TENANT_ROUTING and pool:
            count = int(env.get("TENANT_DB_POOLS_MAX", TENANT_DEFAULTS["TENANT_DB_POOLS_MAX"]))
            size = min(int(env.get("TENANT_DB_POOL_MAX_SIZE", TENANT_DEFAULTS["TENANT_DB_POOL_MAX_SIZE"])), pool)
            tenant_pools = count * size
        rows.append(
            ProcessBudget(
                name=name,
                instances=instances_of(list(entry["command"])),
                pool=pool,
                tenant_pools=tenant_pools,
                direct=int(entry.get("db_direct", 0)),
            )
        )
    return rows


def budget_total(rows: list[ProcessBudget]) -> int:
    return sum(row.total for row in rows)


def max_connections(postgres_url: str) -> int:
    import psycopg

    with psycopg.connect(f"{postgres_url.rstrip('/')}/postgres", connect_timeout=5) as connection:
        return int(connection.execute("SHOW max_connections").fetchone()[0])


def budget_table(rows: list[ProcessBudget]) -> str:
    lines = [
        "| process | instances | pool | tenant pools | direct | at most |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {row.name} | {row.instances} | {row.pool} | {row.tenant_pools} | {row.direct} | {row.total} |"
        for row in rows
    ]
    lines.append(f"| **budget** | | | | | **{budget_total(rows)}** |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres-url", default=None, help="check against this server's max_connections")
    args = parser.parse_args()
    rows = budget_rows()
    print(budget_table(rows))
    total = budget_total(rows)
    url = args.postgres_url or __import__("os").environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    try:
        limit = max_connections(url)
    except Exception as exc:  # noqa: BLE001 - the table is still worth printing
        print(f"budget {total}; max_connections unknown ({type(exc).__name__}: {exc})")
        return 0
    verdict = "ok" if total <= limit - MARGIN else "TOO HIGH"
    print(f"budget {total} of max_connections {limit} (margin {MARGIN} kept for admin and tests): {verdict}")
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
