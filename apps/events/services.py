"""Writes over the event plumbing that are not publishing (publishing is apps.events.outbox.publish)."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.events.transports import transport_connect
from apps.events.transports.base import ConsumerQueues


def dead_letters_replay(*, service: str, event_ids: set[str] | None = None, queue_prefix: str | None = None) -> int:
    """Moves dead letters (all, or those with these event ids) back to the service's consumer.

    Each goes back with a fresh attempt count, and leaves the dead letters only once the
    broker stored its copy. Returns how many were replayed.
    """
    queues = ConsumerQueues.for_service(service, prefix=queue_prefix)
    transport = transport_connect(name=f"dlq-replay-{service}")
    try:
        return transport.dead_letters_replay(queues, event_ids=event_ids)
    finally:
        transport.close()


def outbox_purge(*, older_than_hours: int | None = None, using: str = "default", chunk: int = 10_000) -> int:
    """Deletes outbox rows sent more than `older_than_hours` ago (default EVENTS_OUTBOX_RETENTION_HOURS)."""
    from apps.events.models import OutboxEvent

    hours = settings.EVENTS_OUTBOX_RETENTION_HOURS if older_than_hours is None else older_than_hours
    cutoff = timezone.now() - timedelta(hours=hours)
    deleted = 0
    while True:
        with transaction.atomic(using=using):
            ids = list(OutboxEvent.objects.using(using).filter(sent_at__lt=cutoff).values_list("pk", flat=True)[:chunk])
            if not ids:
                return deleted
            deleted += OutboxEvent.objects.using(using).filter(pk__in=ids).delete()[0]
