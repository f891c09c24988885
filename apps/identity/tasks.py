"""Background jobs of the identity service. Thin: the work is in services."""

from datetime import timedelta

from celery import shared_task

from apps.identity import services


@shared_task(name="apps.identity.tasks.refresh_tokens_purge")
def refresh_tokens_purge(older_than_hours: int = 24) -> int:
    """Deletes refresh-token rows that expired more than `older_than_hours` ago (services.refresh_tokens_purge)."""
    return services.refresh_tokens_purge(older_than=timedelta(hours=older_than_hours))
