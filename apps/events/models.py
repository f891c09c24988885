"""The outbox, the processed-events record, and the probe consumer's effects."""

from django.db import models
from django.db.models.functions import Now


class OutboxEvent(models.Model):
    """An event written in its producer's transaction, waiting for (or done with) the relay.

    `id` orders events; the relay publishes unsent rows in `id` order, one aggregate at a
    time, and sets `sent_at` only after RabbitMQ confirmed the message.
    """

    event_id = models.UUIDField(unique=True)
    event_type = models.CharField(max_length=100)
    routing_key = models.CharField(max_length=150)
    # One outbox serves every tenant of a service (projects keeps it in the public schema).
    # NULL, as in the envelope, means "not about a tenant" (a platform-wide event).
    tenant_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    aggregate_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    # The envelope exactly as validated, so the relay sends the bytes that were checked.
    body = models.TextField()
    created_at = models.DateTimeField(db_default=Now())
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], name="events_outbox_unsent", condition=models.Q(sent_at__isnull=True)),
            models.Index(fields=["sent_at"], name="events_outbox_sent_at"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class ProcessedEvent(models.Model):
    """An event a consumer has applied: written in the same transaction as the handler's effects."""

    consumer = models.CharField(max_length=100)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    processed_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [models.UniqueConstraint(fields=["consumer", "event_id"], name="events_processed_once")]
        indexes = [models.Index(fields=["processed_at"], name="events_processed_at")]

    def __str__(self) -> str:
        return f"{self.consumer}: {self.event_type} {self.event_id}"


class ProbeRecord(models.Model):
    """One row per event applied by the `probe` consumer (`manage.py consume probe`).

    A real effect in PostgreSQL: end-to-end smoke checks, the round-trip tests and the
    benchmark count these. Deliberately not unique on `event_id`, so a duplicate
    application would show up as a second row instead of being hidden by a constraint.
    """

    consumer = models.CharField(max_length=100)
    event_id = models.UUIDField(db_index=True)
    event_type = models.CharField(max_length=100)
    tenant_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    occurred_at = models.DateTimeField()
    applied_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"{self.consumer}: {self.event_type} {self.event_id}"
