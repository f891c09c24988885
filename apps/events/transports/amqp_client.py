"""RabbitMQ plumbing under the RabbitMQ transport (apps/events/transports/rabbitmq.py).

py-amqp (kombu's own transport) directly: one long-lived connection per process, and
publisher confirms collected for a whole batch instead of one round trip per message.
"""

import logging
import socket
import time
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

import amqp
from amqp.exceptions import AMQPError
from django.conf import settings

from apps.events.transports.base import PublishNotConfirmed

logger = logging.getLogger(__name__)

# What a lost or refused broker connection looks like; callers reconnect on these.
BROKER_ERRORS: tuple[type[BaseException], ...] = (AMQPError, OSError, socket.timeout, ConnectionError)

PERSISTENT = 2


def broker_connect(*, url: str | None = None, name: str = "events", heartbeat: int = 30) -> amqp.Connection:
    parts = urlsplit(url or settings.EVENTS_BROKER_URL)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    connection = amqp.Connection(
        host=f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}",
        userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtual_host=vhost or "/",
        heartbeat=heartbeat,
        connect_timeout=5,
        client_properties={"connection_name": name},
    )
    connection.connect()
    return connection


def exchange_declare(channel: amqp.Channel, *, exchange: str | None = None) -> str:
    exchange = exchange or settings.EVENTS_EXCHANGE
    channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
    return exchange


def event_message(*, body: bytes, event_id: str, event_type: str, headers: dict | None = None) -> amqp.Message:
    return amqp.Message(
        body,
        content_type="application/json",
        delivery_mode=PERSISTENT,
        message_id=event_id,
        type=event_type,
        timestamp=int(time.time()),
        application_headers=headers or {},
    )


class ConfirmingPublisher:
    """Publishes batches on one channel in confirm mode and waits once for all their confirms."""

    def __init__(self, connection: amqp.Connection) -> None:
        self.connection = connection
        self.channel = connection.channel()
        self.channel.confirm_select()
        self._next_tag = 1
        self._unconfirmed: set[int] = set()
        self._nacked: set[int] = set()
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)

    def _settle(self, delivery_tag: int, multiple: bool) -> set[int]:
        settled = {tag for tag in self._unconfirmed if tag <= delivery_tag} if multiple else {delivery_tag}
        self._unconfirmed -= settled
        return settled

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked |= self._settle(delivery_tag, multiple)

    def publish(self, messages: Iterable[tuple[str, str, amqp.Message]], *, timeout: float = 10.0) -> int:
        """Sends (exchange, routing_key, message) triples; returns once RabbitMQ stored them all."""
        self._nacked.clear()
        count = 0
        for exchange, routing_key, message in messages:
            self.channel.basic_publish(message, exchange=exchange, routing_key=routing_key)
            self._unconfirmed.add(self._next_tag)
            self._next_tag += 1
            count += 1
        deadline = time.monotonic() + timeout
        while self._unconfirmed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishNotConfirmed(f"{len(self._unconfirmed)} of {count} messages not confirmed in {timeout}s")
            try:
                self.connection.drain_events(timeout=remaining)
            except TimeoutError:
                continue
        if self._nacked:
            raise PublishNotConfirmed(f"RabbitMQ refused {len(self._nacked)} of {count} messages")
        return count


def connection_close(connection: amqp.Connection | None) -> None:
    """Closes quietly: used on paths where the connection may already be dead."""
    if connection is None:
        return
    try:
        connection.close()
    except BROKER_ERRORS:
        pass
    except Exception:
        logger.debug("closing a broken broker connection", exc_info=True)
        try:
            connection.collect()
        except Exception:
            logger.debug("collecting a broken broker connection", exc_info=True)
