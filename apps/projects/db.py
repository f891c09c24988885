"""Which database connection serves the current tenant's board tables, and the bound on how many
connections database-mode tenants may hold.

Schema-mode tenants: the default connection, switched to the tenant's schema. Database-mode
tenants: a run-time alias chosen by the tenancy router (apps.projects.tenants.routers).
Transactions, row locks and on-commit hooks must use that alias.

Each database-mode tenant's alias has its own small psycopg pool (TENANT_DB_POOL_MAX_SIZE,
idle connections closed after TENANT_DB_POOL_MAX_IDLE seconds). A process keeps at most
TENANT_DB_POOLS_MAX of those pools open: using one more closes the least recently used idle
pool, so a process that serves a thousand tenants still holds at most
TENANT_DB_POOLS_MAX x TENANT_DB_POOL_MAX_SIZE tenant connections (the budget,
platform/dbbudget.py). A pool is idle when no thread has a connection from it; with at least as
many pools allowed as the process has threads, one always is (a thread gives back its own idle
connections of other tenants first).
"""

import threading
from collections import OrderedDict

from django.apps import apps
from django.conf import settings
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
from psycopg_pool import PoolTimeout


def tenant_db() -> str:
    # By label, not by import: models.py (through storage.py) needs this module, not the reverse.
    return router.db_for_write(apps.get_model("projects", "Task")) or "default"


def tenant_connection() -> BaseDatabaseWrapper:
    return connections[tenant_db()]


class TenantPools:
    """The database-mode aliases of this process whose pools may be open, least recently used first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aliases: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, alias: str) -> bool:
        return alias in self._aliases

    def __len__(self) -> int:
        return len(self._aliases)

    def touch(self, alias: str) -> None:
        """`alias` is about to be used: it becomes the most recently used; beyond the cap, the least
        recently used idle pool is closed. Raises PoolTimeout (a 503) when every other pool is busy."""
        with self._lock:
            if alias in self._aliases:
                self._aliases.move_to_end(alias)
                return
            while len(self._aliases) >= settings.TENANT_DB_POOLS_MAX:
                for name in self._aliases:
                    _release_own(name)
                victim = next((name for name in self._aliases if _pool_idle(name)), None)
                if victim is None:
                    raise PoolTimeout(
                        f"all {settings.TENANT_DB_POOLS_MAX} tenant database pools of this process are in use"
                    )
                self._aliases.pop(victim)
                _pool_close(victim)
            self._aliases[alias] = None

    def forget(self, alias: str) -> None:
        """Closes the alias's pool now (a dropped tenant database)."""
        with self._lock:
            self._aliases.pop(alias, None)
            _pool_close(alias)

    def close_all(self) -> None:
        with self._lock:
            for alias in list(self._aliases):
                _pool_close(alias)
            self._aliases.clear()


def _release_own(alias: str) -> None:
    """Gives back this thread's connection of `alias` if it is not in a transaction: outside a request
    (a consumer, a task) Django keeps a connection until told, so switching tenants would otherwise
    hold every tenant's pool busy."""
    wrapper = getattr(connections._connections, alias, None)
    if wrapper is not None and wrapper.connection is not None and not wrapper.in_atomic_block:
        wrapper.close()


def _pool_idle(alias: str) -> bool:
    pool = PostgresWrapper._connection_pools.get(alias)
    if pool is None:
        return True
    stats = pool.get_stats()
    return stats["pool_size"] == stats["pool_available"] and stats["requests_waiting"] == 0


def _pool_close(alias: str) -> None:
    # Django keeps one pool per alias for the whole process (a class attribute); the next use of
    # the alias opens a fresh one. Connections a thread still holds close when it returns them.
    pool = PostgresWrapper._connection_pools.pop(alias, None)
    if pool is not None:
        pool.close(timeout=1.0)


tenant_pools = TenantPools()
