"""The Celery app: background jobs on RabbitMQ, one queue per service.

A worker runs per service, with that service's settings:
    DJANGO_SETTINGS_MODULE=config.settings.<svc> celery -A config.celery worker -Q <svc>
Tasks (`apps/<svc>/tasks.py`) are thin callers of services. Settings: the CELERY_* block of
config/settings/base.py (publisher confirms, late acks, re-queue on a lost worker).

A service that needs more of Celery connects its own signals from its AppConfig.ready()
(the projects service carries the tenant with each task: apps/projects/tenants/celery.py).
"""

from typing import Any

from celery import Celery
from django.conf import settings

app = Celery("kanban")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

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
