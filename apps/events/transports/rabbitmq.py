"""The RabbitMQ transport: a topic exchange, durable queues, delay queues and a dead-letter queue.

A consumer's queue is bound to its routing keys. A retry goes to the queue of its delay,
which holds it for that long (`x-message-ttl`) and then dead-letters it back into the main
queue; one queue per delay, because a per-message TTL would wait behind a longer one at the
head. Copies the consumer publishes itself (retries, dead letters) are confirmed before the
original is acked.
"""

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence

import amqp

from apps.events.transports.amqp_client import (
    BROKER_ERRORS,
    ConfirmingPublisher,
    broker_connect,
    connection_close,
    event_message,
    exchange_declare,
)
from apps.events.transports.base import (
    ConsumerQueues,
    DeadLetter,
    Delivery,
    Outgoing,
    dead_letter_from,
    replay_headers,
)

ERRORS = BROKER_ERRORS


def queues_declare(
    channel: amqp.Channel, queues: ConsumerQueues, *, exchange: str, routing_keys: Iterable[str]
) -> None:
    channel.queue_declare(queues.main, durable=True, auto_delete=False)
    for routing_key in sorted(set(routing_keys)):
        channel.queue_bind(queues.main, exchange, routing_key)
    for delay, name in queues.retries:
        channel.queue_declare(
            name,
            durable=True,
            auto_delete=False,
            arguments={"x-message-ttl": delay, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queues.main},
        )
    channel.queue_declare(queues.dead, durable=True, auto_delete=False)


def _delivery(message: amqp.Message) -> Delivery:
    body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
    return Delivery(
        body=body,
        event_id=str(message.properties.get("message_id") or ""),
        event_type=str(message.properties.get("type") or ""),
        routing_key=str(message.delivery_info.get("routing_key", "")),
        headers=dict(message.properties.get("application_headers") or {}),
        receipt=message.delivery_info["delivery_tag"],
    )


class RabbitTransport:
    kind = "RabbitMQ"

    def __init__(self, *, url: str, name: str) -> None:
        self.connection = broker_connect(url=url, name=name)
        self._publisher: ConfirmingPublisher | None = None
        self._declared: set[str] = set()
        self._channel: amqp.Channel | None = None
        self._queues: ConsumerQueues | None = None
        self._buffer: list[Delivery] = []

    # Publishing ---------------------------------------------------------------------------

    def publish(self, messages: Iterable[Outgoing], *, exchange: str, timeout: float = 10.0) -> int:
        if self._publisher is None:
            self._publisher = ConfirmingPublisher(self.connection)
        if exchange and exchange not in self._declared:
            exchange_declare(self._publisher.channel, exchange=exchange)
            self._declared.add(exchange)
        return self._publisher.publish(
            (
                (
                    exchange,
                    message.routing_key,
                    event_message(
                        body=message.body,
                        event_id=message.event_id,
                        event_type=message.event_type,
                        headers=dict(message.headers),
                    ),
                )
                for message in messages
            ),
            timeout=timeout,
        )

    # Consuming ----------------------------------------------------------------------------

    def subscribe(self, queues: ConsumerQueues, *, exchange: str, bindings: Sequence[str], prefetch: int) -> None:
        channel = self.connection.channel()
        exchange_declare(channel, exchange=exchange)
        queues_declare(channel, queues, exchange=exchange, routing_keys=bindings)
        channel.basic_qos(0, prefetch, False)
        channel.basic_consume(queues.main, callback=lambda message: self._buffer.append(_delivery(message)))
        self._channel, self._queues = channel, queues

    def receive(self, *, wait: float, max_count: int) -> list[Delivery]:
        if not self._buffer:
            try:
                self.connection.drain_events(timeout=wait)
            except TimeoutError:
                return []
        # Take whatever else is already arriving, up to a batch.
        while len(self._buffer) < max_count:
            try:
                self.connection.drain_events(timeout=0.001)
            except TimeoutError:
                break
        batch = self._buffer[:max_count]
        del self._buffer[:max_count]
        return batch

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        assert self._channel is not None
        if len(deliveries) == 1:
            self._channel.basic_ack(deliveries[0].receipt)
        elif deliveries:
            # Deliveries are settled in order, so one ack covers the batch and nothing later.
            self._channel.basic_ack(max(d.receipt for d in deliveries), multiple=True)  # type: ignore[type-var]

    def _send_copy(self, delivery: Delivery, *, queue: str, headers: Mapping[str, object]) -> None:
        assert self._channel is not None
        copy = event_message(
            body=delivery.body, event_id=delivery.event_id, event_type=delivery.event_type, headers=dict(headers)
        )
        self._channel.basic_publish_confirm(copy, exchange="", routing_key=queue, confirm_timeout=10)
        self._channel.basic_ack(delivery.receipt)

    def retry(self, delivery: Delivery, *, attempt: int, headers: Mapping[str, object]) -> int:
        assert self._queues is not None
        delay, queue = self._queues.retries[attempt - 1]
        self._send_copy(delivery, queue=queue, headers=headers)
        return delay

    def dead_letter(self, delivery: Delivery, *, headers: Mapping[str, object]) -> None:
        assert self._queues is not None
        self._send_copy(delivery, queue=self._queues.dead, headers=headers)

    # Dead letters -------------------------------------------------------------------------

    def dead_letters(self, queues: ConsumerQueues, *, limit: int) -> list[DeadLetter]:
        channel = self.connection.channel()
        channel.queue_declare(queues.dead, durable=True, auto_delete=False)
        found: list[DeadLetter] = []
        while len(found) < limit:
            message = channel.basic_get(queues.dead, no_ack=False)
            if message is None:
                break
            found.append(dead_letter_from(_delivery(message)))
        channel.close()  # hands every unacked message back to the queue, in order
        return found

    def dead_letters_replay(self, queues: ConsumerQueues, *, event_ids: set[str] | None) -> int:
        channel = self.connection.channel()
        _, waiting, _ = channel.queue_declare(queues.dead, durable=True, auto_delete=False)
        replayed = 0
        for _ in range(waiting):
            message = channel.basic_get(queues.dead, no_ack=False)
            if message is None:
                break
            delivery = _delivery(message)
            if event_ids is not None and delivery.event_id not in event_ids:
                continue
            copy = event_message(
                body=delivery.body,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                headers=replay_headers(delivery.headers),
            )
            # Acked from the dead-letter queue only once RabbitMQ confirmed the copy.
            channel.basic_publish_confirm(copy, exchange="", routing_key=queues.main, confirm_timeout=10)
            channel.basic_ack(message.delivery_info["delivery_tag"])
            replayed += 1
        channel.close()  # the ones not replayed go back to the dead-letter queue
        return replayed

    # Tools --------------------------------------------------------------------------------

    def tail(self, *, exchange: str, binding: str, stop: threading.Event | None) -> Iterator[bytes]:
        received: list[amqp.Message] = []
        channel = self.connection.channel()
        exchange_declare(channel, exchange=exchange)
        queue, _, _ = channel.queue_declare("", exclusive=True, auto_delete=True)
        channel.queue_bind(queue, exchange, binding)
        channel.basic_consume(queue, callback=received.append, no_ack=True)
        while stop is None or not stop.is_set():
            try:
                self.connection.drain_events(timeout=0.5)
            except TimeoutError:
                continue
            while received:
                body = received.pop(0).body
                yield body if isinstance(body, bytes) else str(body).encode()

    def consumer_ready(self, queues: ConsumerQueues, *, exchange: str) -> bool:
        try:
            self.connection.channel().queue_declare(queues.main, passive=True)
            return True
        except amqp.exceptions.NotFound:
            return False

    def queues_delete(self, queues: ConsumerQueues, *, exchange: str) -> None:
        channel = self.connection.channel()
        for name in (queues.main, *(name for _, name in queues.retries), queues.dead):
            channel.queue_delete(name)

    def exchange_delete(self, exchange: str) -> None:
        self.connection.channel().exchange_delete(exchange)

    def close(self) -> None:
        self._buffer.clear()  # unacked: RabbitMQ redelivers them when the connection goes
        connection_close(self.connection)
