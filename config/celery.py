"""The Celery app: background jobs on RabbitMQ, one queue per service.

A worker runs per service, with that service's settings:
    DJANGO_SETTINGS_MODULE=config.settings.<svc> celery -A config.celery worker -Q <svc>
Tasks (`apps/<svc>/tasks.py`) are thin callers of services. Settings: the CELERY_* block of
config/settings/base.py (publisher confirms, late acks, re-queue on a lost worker).

The tenant travels with the task: the sender's current tenant (projects' tenant context)
becomes a `tenant_id` message header, and the worker runs the task inside that tenant's
context, like tenant-schemas-celery does for schemas but also for database-mode tenants.
"""

from contextlib import AbstractContextManager
from typing import Any

from celery import Celery, signals
from django.apps import apps as django_apps
from django.conf import settings

app = Celery("kanban")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

TENANT_HEADER = "tenant_id"
# Apps every service carries (each service's copy works on that service's own database).
SHARED_APPS = {"common", "events"}


def route_task(name: str, args: object, kwargs: object, options: object, task: object = None, **kw: Any) -> dict:
    """`apps.<service>.….task` goes to the `<service>` queue; shared apps' tasks to the sender's own."""
    parts = name.split(".")
    if len(parts) < 3 or parts[0] != "apps":
        return {"queue": app.conf.task_default_queue}
    if parts[1] in SHARED_APPS:
        return {"queue": getattr(settings, "SERVICE_NAME", app.conf.task_default_queue)}
    return {"queue": parts[1]}


app.conf.task_routes = (route_task,)


def _projects_tenants_installed() -> bool:
    return django_apps.ready and django_apps.is_installed("apps.projects.tenants")


@signals.before_task_publish.connect
def carry_tenant(headers: dict | None = None, **kwargs: Any) -> None:
    if headers is None or headers.get(TENANT_HEADER) or not _projects_tenants_installed():
        return
    from apps.projects.tenants.context import current_tenant

    tenant = current_tenant()
    if tenant is not None:
        headers[TENANT_HEADER] = str(tenant.tenant_id)


def _task_tenant_id(task: Any) -> str | None:
    request = task.request
    return (getattr(request, "headers", None) or {}).get(TENANT_HEADER) or request.get(TENANT_HEADER)


@signals.task_prerun.connect
def enter_tenant(task: Any = None, **kwargs: Any) -> None:
    tenant_id = _task_tenant_id(task) if task is not None else None
    if not tenant_id or not _projects_tenants_installed():
        return
    from apps.projects.tenants.context import tenant_context
    from apps.projects.tenants.selectors import tenant_get

    context: AbstractContextManager = tenant_context(tenant_get(tenant_id=tenant_id))
    context.__enter__()
    task._tenant_context = context


@signals.task_postrun.connect
def leave_tenant(task: Any = None, **kwargs: Any) -> None:
    context = getattr(task, "_tenant_context", None)
    if context is not None:
        task._tenant_context = None
        context.__exit__(None, None, None)
