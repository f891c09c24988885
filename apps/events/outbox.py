"""Publishing: an event becomes an outbox row in the caller's transaction.

The row commits or rolls back with the change it describes; the relay
(`manage.py relay_outbox`) sends committed rows to RabbitMQ. A trigger on the table
NOTIFYs the relay, and PostgreSQL delivers that only on commit.
"""

from django.db import connections

from apps.events.catalog import Envelope, envelope_create


class OutboxError(RuntimeError):
    """publish() was called where it cannot keep its promise (outside a transaction)."""


_INSERT = (
    "INSERT INTO events_outboxevent (event_id, event_type, routing_key, tenant_id, aggregate_id, body)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
)


def publish(
    event_type: str,
    data: dict,
    *,
    tenant_id: str | None,
    actor_id: str | None,
    aggregate_id: str | None = None,
    trace_id: str | None = None,
    using: str = "default",
) -> Envelope:
    """Validates the event and writes it to the outbox of database `using`, in the open transaction.

    Raises `apps.events.catalog.InvalidEvent` for an unknown type or data that breaks the
    type's schema, which fails the caller's transaction like any other exception.
    """
    connection = connections[using]
    if not connection.in_atomic_block:
        raise OutboxError(
            f"publish({event_type!r}) must run inside transaction.atomic(using={using!r}), "
            "so the event commits or rolls back with the change it describes"
        )
    envelope = envelope_create(event_type, data, tenant_id=tenant_id, actor_id=actor_id, trace_id=trace_id)
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            [
                envelope.id,
                envelope.type,
                envelope.routing_key,
                envelope.tenant_id,
                None if aggregate_id is None else str(aggregate_id),
                envelope.to_json().decode(),
            ],
        )
    return envelope
