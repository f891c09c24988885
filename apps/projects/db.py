"""Which database connection serves the current tenant's board tables.

Schema-mode tenants: the default connection, switched to the tenant's schema. Database-mode
tenants: a run-time alias chosen by the tenancy router (apps.projects.tenants.routers).
Transactions, row locks and on-commit hooks must use that alias.
"""

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper


def tenant_db() -> str:
    from apps.projects.models import Task

    return router.db_for_write(Task) or "default"


def tenant_connection() -> BaseDatabaseWrapper:
    return connections[tenant_db()]
