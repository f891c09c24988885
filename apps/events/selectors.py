"""Reads over the event plumbing: the dead-letter queues and the live stream (developer tools)."""

import json
import threading
from collections.abc import Iterator

from django.conf import settings

from apps.events.catalog import routing_key_for
from apps.events.transports import transport_connect
from apps.events.transports.base import ConsumerQueues, DeadLetter

__all__ = ["DeadLetter", "dead_letters_list", "events_tail"]


def dead_letters_list(*, service: str, limit: int = 100, queue_prefix: str | None = None) -> list[DeadLetter]:
    """The first `limit` dead letters of a service, left in place."""
    queues = ConsumerQueues.for_service(service, prefix=queue_prefix)
    transport = transport_connect(name=f"dlq-list-{service}")
    try:
        return transport.dead_letters(queues, limit=limit)
    finally:
        transport.close()


def events_tail(
    *, event_type: str | None = None, stop: threading.Event | None = None, exchange: str | None = None
) -> Iterator[dict]:
    """Live events from the exchange, from now on, until `stop` is set."""
    transport = transport_connect(name="events-tail")
    try:
        for body in transport.tail(
            exchange=exchange or settings.EVENTS_EXCHANGE,
            binding=routing_key_for(event_type) if event_type else "#",
            stop=stop,
        ):
            try:
                yield json.loads(body)
            except ValueError:
                yield {"unparseable": body.decode(errors="replace")}
    finally:
        transport.close()
