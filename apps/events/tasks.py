"""Background jobs of the event plumbing. Thin: the work is in services."""

from celery import shared_task

from apps.events import services


@shared_task(name="apps.events.tasks.outbox_purge")  # type: ignore[untyped-decorator]  # Celery is untyped
def outbox_purge(older_than_hours: int | None = None) -> int:
    return services.outbox_purge(older_than_hours=older_than_hours)
