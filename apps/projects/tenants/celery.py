"""The tenant travels with a Celery task: the sender's current tenant (apps.projects.tenants.context)
becomes a `tenant_id` message header, and the worker runs the task inside that tenant's context,
like tenant-schemas-celery does for schemas, but also for database-mode tenants.

Connected by ProjectTenantsConfig.ready(), so only a process that has the tenant registry
installed (the projects service and its worker) carries tenants.
"""

from contextlib import AbstractContextManager
from typing import Any

from celery import signals

TENANT_HEADER = "tenant_id"


def carry_tenant(headers: dict | None = None, **kwargs: Any) -> None:
    if headers is None or headers.get(TENANT_HEADER):
        return
    from apps.projects.tenants.context import current_tenant

    tenant = current_tenant()
    if tenant is not None:
        headers[TENANT_HEADER] = str(tenant.tenant_id)


def _task_tenant_id(task: Any) -> str | None:
    request = task.request
    return (getattr(request, "headers", None) or {}).get(TENANT_HEADER) or request.get(TENANT_HEADER)


def enter_tenant(task: Any = None, **kwargs: Any) -> None:
    tenant_id = _task_tenant_id(task) if task is not None else None
    if not tenant_id:
        return
    from apps.projects.tenants.context import tenant_context
    from apps.projects.tenants.selectors import tenant_get

    context: AbstractContextManager = tenant_context(tenant_get(tenant_id=tenant_id))
    context.__enter__()
    task._tenant_context = context


def leave_tenant(task: Any = None, **kwargs: Any) -> None:
    context = getattr(task, "_tenant_context", None)
    if context is not None:
        task._tenant_context = None
        context.__exit__(None, None, None)


def connect() -> None:
    """Hook the three handlers to Celery's signals (idempotent)."""
    signals.before_task_publish.connect(carry_tenant, weak=False, dispatch_uid="projects.carry_tenant")
    signals.task_prerun.connect(enter_tenant, weak=False, dispatch_uid="projects.enter_tenant")
    signals.task_postrun.connect(leave_tenant, weak=False, dispatch_uid="projects.leave_tenant")
