"""Writes over the event plumbing that are not publishing (publishing is apps.events.outbox.publish)."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.events.broker import ConsumerQueues, broker_connect, connection_close, event_message

# Headers that describe a failed delivery; a replayed message starts again without them.
_FAILURE_HEADERS = {
    "x-attempt",
    "x-last-error",
    "x-dead-kind",
    "x-dead-reason",
    "x-attempts",
    "x-consumer",
    "x-dead-at",
    "x-original-routing-key",
}


def dead_letters_replay(*, service: str, event_ids: set[str] | None = None, queue_prefix: str | None = None) -> int:
    """Moves dead letters (all, or those with these event ids) back to the service's queue.

    Each is re-queued with a fresh attempt count and acked from the dead-letter queue only
    after RabbitMQ confirmed the copy. Returns how many were replayed.
    """
    queues = ConsumerQueues.for_service(service, prefix=queue_prefix)
    connection = broker_connect(name=f"dlq-replay-{service}")
    try:
        channel = connection.channel()
        _, waiting, _ = channel.queue_declare(queues.dead, durable=True, auto_delete=False)
        replayed = 0
        for _ in range(waiting):
            message = channel.basic_get(queues.dead, no_ack=False)
            if message is None:
                break
            event_id = str(message.properties.get("message_id") or "")
            if event_ids is not None and event_id not in event_ids:
                continue
            headers = {
                key: value
                for key, value in (message.properties.get("application_headers") or {}).items()
                if key not in _FAILURE_HEADERS
            }
            copy = event_message(
                body=message.body,
                event_id=event_id,
                event_type=str(message.properties.get("type") or ""),
                headers=headers,
            )
            channel.basic_publish_confirm(copy, exchange="", routing_key=queues.main, confirm_timeout=10)
            channel.basic_ack(message.delivery_info["delivery_tag"])
            replayed += 1
        channel.close()  # the ones not replayed go back to the dead-letter queue
        return replayed
    finally:
        connection_close(connection)


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
