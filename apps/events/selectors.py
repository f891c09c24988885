"""Reads over the event plumbing: the dead-letter queues and the live stream (developer tools)."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import amqp

from apps.events.broker import ConsumerQueues, broker_connect, connection_close, exchange_declare
from apps.events.catalog import routing_key_for


@dataclass(frozen=True)
class DeadLetter:
    event_id: str
    event_type: str
    kind: str
    reason: str
    attempts: int
    dead_at: str
    body: str


def dead_letter_from_message(message: amqp.Message) -> DeadLetter:
    headers = message.properties.get("application_headers") or {}

    def text(name: str) -> str:
        value = headers.get(name, "")
        return value.decode() if isinstance(value, bytes) else str(value)

    body = message.body.decode(errors="replace") if isinstance(message.body, bytes) else str(message.body)
    return DeadLetter(
        event_id=str(message.properties.get("message_id") or ""),
        event_type=str(message.properties.get("type") or ""),
        kind=text("x-dead-kind"),
        reason=text("x-dead-reason"),
        attempts=int(headers.get("x-attempts", 0) or 0),
        dead_at=text("x-dead-at"),
        body=body,
    )


def dead_letters_list(*, service: str, limit: int = 100, queue_prefix: str | None = None) -> list[DeadLetter]:
    """The first `limit` dead letters of a service, left in place (read unacked, then released)."""
    queues = ConsumerQueues.for_service(service, prefix=queue_prefix)
    connection = broker_connect(name=f"dlq-list-{service}")
    try:
        channel = connection.channel()
        channel.queue_declare(queues.dead, durable=True, auto_delete=False)
        found = []
        while len(found) < limit:
            message = channel.basic_get(queues.dead, no_ack=False)
            if message is None:
                break
            found.append(dead_letter_from_message(message))
        # Closing the channel hands every unacked message back to the queue, in order.
        channel.close()
        return found
    finally:
        connection_close(connection)


def events_tail(
    *, event_type: str | None = None, stop: threading.Event | None = None, exchange: str | None = None
) -> Iterator[dict]:
    """Live events from the exchange, through a private queue that disappears with the caller."""
    connection = broker_connect(name="events-tail")
    received: list[amqp.Message] = []
    try:
        channel = connection.channel()
        exchange = exchange_declare(channel, exchange=exchange)
        queue, _, _ = channel.queue_declare("", exclusive=True, auto_delete=True)
        channel.queue_bind(queue, exchange, routing_key_for(event_type) if event_type else "#")
        channel.basic_consume(queue, callback=received.append, no_ack=True)
        while stop is None or not stop.is_set():
            try:
                connection.drain_events(timeout=0.5)
            except TimeoutError:
                continue
            while received:
                message = received.pop(0)
                try:
                    yield json.loads(message.body)
                except ValueError:
                    yield {"unparseable": message.body.decode(errors="replace")}
    finally:
        connection_close(connection)
