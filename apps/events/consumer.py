"""Consuming events: handler registry, idempotency stores, and the runner behind `manage.py consume`.

A service declares handlers in `apps/<service>/handlers.py` with `@handles("Type")`. The
runner owns one durable queue per service (`<prefix>.<service>`, bound to the handled
routing keys), one retry queue per backoff delay and a dead-letter queue. Each event is
applied by a store: the handlers' effects and the processed-event record commit together
(PostgreSQL) or are written idempotently keyed by the event id (MongoDB). The message is
acked only after that. A failing message goes to a retry queue and, after the last delay,
to the dead-letter queue with its reason; it never holds up the messages behind it.
"""

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol

import amqp
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from django.utils.module_loading import autodiscover_modules

from apps.events.broker import (
    BROKER_ERRORS,
    ConsumerQueues,
    broker_connect,
    connection_close,
    event_message,
    exchange_declare,
)
from apps.events.catalog import EVENT_TYPES, Envelope, InvalidEvent, envelope_parse, routing_key_for

logger = logging.getLogger(__name__)

Handler = Callable[[Envelope], None]
Handlers = dict[str, list[Handler]]

_registry: Handlers = defaultdict(list)

# The store's server is down: not the message's fault, so it must not be retried or dead-lettered.
DATABASE_DOWN: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
try:
    from pymongo.errors import ConnectionFailure

    DATABASE_DOWN = (*DATABASE_DOWN, ConnectionFailure)
except ImportError:  # pragma: no cover - pymongo is a base requirement
    pass

# The built-in consumer that records every event it sees (tests, benchmark, smoke checks).
PROBE_SERVICE = "probe"


def handles(event_type: str) -> Callable[[Handler], Handler]:
    """Registers a handler for one event type (several handlers of a type run in one transaction)."""
    if event_type not in EVENT_TYPES:
        raise InvalidEvent(f"Unknown event type {event_type!r}; known types: {', '.join(EVENT_TYPES)}")

    def register(handler: Handler) -> Handler:
        if handler not in _registry[event_type]:
            _registry[event_type].append(handler)
        return handler

    return register


def handlers_discover() -> Handlers:
    """Imports every installed app's `handlers` module; returns what they registered."""
    autodiscover_modules("handlers")
    return {event_type: list(found) for event_type, found in _registry.items() if found}


def probe_record(event: Envelope) -> None:
    # Plain SQL: the benchmark measures the backbone, so the probe's own write stays as cheap as a write gets.
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_proberecord (consumer, event_id, event_type, tenant_id, occurred_at, applied_at)"
            " VALUES (%s, %s, %s, %s, %s, statement_timestamp())",
            [PROBE_SERVICE, event.id, event.type, event.tenant_id, event.occurred_at],
        )


def handlers_for_service(service: str) -> Handlers:
    if service == PROBE_SERVICE:
        return {event_type: [probe_record] for event_type in EVENT_TYPES}
    return handlers_discover()


# Stores: "apply the handlers and remember the event", once per event id ----------------------


class ProcessedStore(Protocol):
    def apply(self, *, consumer: str, events: list[Envelope], handlers: Handlers) -> list[bool]:
        """Applies all `events` or none (raises); returns, per event, False if it was already applied."""

    def close(self) -> None: ...


class PostgresStore:
    """Handlers' effects and the processed-event rows commit in one transaction."""

    def __init__(self, *, using: str = "default") -> None:
        self.using = using

    def _claim(self, consumer: str, events: list[Envelope]) -> set[str]:
        rows = ", ".join(["(%s, %s, %s)"] * len(events))
        params = [value for event in events for value in (consumer, event.id, event.type)]
        with connections[self.using].cursor() as cursor:
            cursor.execute(
                f"INSERT INTO events_processedevent (consumer, event_id, event_type) VALUES {rows}"  # noqa: S608
                " ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id::text",
                params,
            )
            return {row[0] for row in cursor.fetchall()}

    def apply(self, *, consumer: str, events: list[Envelope], handlers: Handlers) -> list[bool]:
        applied = []
        with transaction.atomic(using=self.using):
            fresh = self._claim(consumer, events)
            for event in events:
                if event.id not in fresh:
                    applied.append(False)
                    continue
                fresh.discard(event.id)  # the same event twice in one batch runs once
                for handler in handlers.get(event.type, ()):
                    handler(event)
                applied.append(True)
        return applied

    def close(self) -> None:
        connections.close_all()


class MongoStore:
    """For a service without PostgreSQL (analytics): no multi-document transaction, so
    handlers must write idempotently (upserts keyed by the event id), and the processed
    record (`_id` = consumer:event id, unique by construction) is written after them."""

    def __init__(self, *, url: str | None = None, database: str | None = None) -> None:
        import pymongo

        self.client = pymongo.MongoClient(url or settings.MONGO_URL, serverSelectionTimeoutMS=5000)
        self.processed = self.client[database or settings.MONGO_DB_NAME]["processed_events"]

    def apply(self, *, consumer: str, events: list[Envelope], handlers: Handlers) -> list[bool]:
        from pymongo.errors import DuplicateKeyError

        applied = []
        for event in events:
            key = f"{consumer}:{event.id}"
            if self.processed.find_one({"_id": key}, projection={"_id": 1}) is not None:
                applied.append(False)
                continue
            for handler in handlers.get(event.type, ()):
                handler(event)
            try:
                self.processed.insert_one(
                    {"_id": key, "consumer": consumer, "event_id": event.id, "type": event.type,
                     "processed_at": datetime.now(UTC)}
                )  # fmt: skip
            except DuplicateKeyError:
                applied.append(False)
                continue
            applied.append(True)
        return applied

    def close(self) -> None:
        self.client.close()


def store_for_settings() -> ProcessedStore:
    if settings.EVENTS_PROCESSED_STORE == "mongo" or not settings.DATABASES:
        return MongoStore()
    return PostgresStore()


# The runner ------------------------------------------------------------------------------


def _header(message: amqp.Message, name: str, default: object = None) -> object:
    value = (message.properties.get("application_headers") or {}).get(name, default)
    return value.decode() if isinstance(value, bytes) else value


class ConsumerRunner:
    def __init__(
        self,
        *,
        service: str,
        handlers: Handlers,
        store: ProcessedStore,
        broker_url: str | None = None,
        exchange: str | None = None,
        queue_prefix: str | None = None,
        retry_delays_ms: Iterable[int] | None = None,
        prefetch: int | None = None,
        batch_size: int | None = None,
        bindings: Iterable[str] | None = None,
    ) -> None:
        self.service = service
        self.handlers = handlers
        self.store = store
        self.broker_url = broker_url or settings.EVENTS_BROKER_URL
        self.exchange = exchange or settings.EVENTS_EXCHANGE
        self.queues = ConsumerQueues.for_service(service, prefix=queue_prefix, retry_delays_ms=retry_delays_ms)
        self.prefetch = prefetch or settings.EVENTS_CONSUMER_PREFETCH
        self.batch_size = batch_size or settings.EVENTS_CONSUMER_BATCH_SIZE
        if bindings is None:
            bindings = ["#"] if service == PROBE_SERVICE else [routing_key_for(t) for t in handlers]
        self.bindings = list(bindings)
        self.counts: dict[str, int] = defaultdict(int)
        self._connection: amqp.Connection | None = None
        self._channel: amqp.Channel | None = None
        self._buffer: list[amqp.Message] = []

    # Connection ---------------------------------------------------------------------------

    def _connect(self) -> None:
        self._connection = broker_connect(url=self.broker_url, name=f"consumer-{self.service}")
        channel = self._connection.channel()
        exchange_declare(channel, exchange=self.exchange)
        self.queues.declare(channel, exchange=self.exchange, routing_keys=self.bindings)
        channel.basic_qos(0, self.prefetch, False)
        channel.basic_consume(self.queues.main, callback=self._buffer.append, no_ack=False)
        self._channel = channel
        logger.info("consumer %s listening on %s (%s)", self.service, self.queues.main, ", ".join(self.bindings))

    def _disconnect(self) -> None:
        self._buffer.clear()  # unacked: RabbitMQ redelivers them when the connection goes
        connection_close(self._connection)
        self._connection = self._channel = None

    # Processing ---------------------------------------------------------------------------

    def _collect(self, wait: float) -> list[amqp.Message]:
        """Waits up to `wait` for a message, then takes whatever else is already arriving."""
        assert self._connection is not None
        if not self._buffer:
            try:
                self._connection.drain_events(timeout=wait)
            except TimeoutError:
                return []
        while len(self._buffer) < self.batch_size:
            try:
                self._connection.drain_events(timeout=0.001)
            except TimeoutError:
                break
        batch = self._buffer[: self.batch_size]
        del self._buffer[: self.batch_size]
        return batch

    def _publish_confirmed(self, message: amqp.Message, *, routing_key: str) -> None:
        assert self._channel is not None
        self._channel.basic_publish_confirm(message, exchange="", routing_key=routing_key, confirm_timeout=10)

    def _ack(self, message: amqp.Message) -> None:
        assert self._channel is not None
        self._channel.basic_ack(message.delivery_info["delivery_tag"])

    def _dead_letter(self, message: amqp.Message, *, kind: str, reason: str, attempts: int) -> None:
        headers = dict(message.properties.get("application_headers") or {})
        headers.update(
            {
                "x-dead-kind": kind,
                "x-dead-reason": reason[:2000],
                "x-attempts": attempts,
                "x-consumer": self.service,
                "x-dead-at": datetime.now(UTC).isoformat(),
                "x-original-routing-key": message.delivery_info.get("routing_key", ""),
            }
        )
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        dead = event_message(
            body=body,
            event_id=str(message.properties.get("message_id") or ""),
            event_type=str(message.properties.get("type") or ""),
            headers=headers,
        )
        self._publish_confirmed(dead, routing_key=self.queues.dead)
        self.counts["dead_lettered"] += 1
        logger.error("consumer %s dead-lettered %s (%s): %s", self.service, dead.message_id, kind, reason)

    def _retry_or_dead_letter(self, message: amqp.Message, exc: BaseException) -> None:
        attempt = int(_header(message, "x-attempt", 1) or 1)
        reason = f"{type(exc).__name__}: {exc}"
        if attempt > len(self.queues.retries):
            self._dead_letter(message, kind="handler_failed", reason=reason, attempts=attempt)
            return
        delay, queue = self.queues.retries[attempt - 1]
        headers = dict(message.properties.get("application_headers") or {})
        headers.update({"x-attempt": attempt + 1, "x-last-error": reason[:2000]})
        retry = event_message(
            body=message.body,
            event_id=str(message.properties.get("message_id") or ""),
            event_type=str(message.properties.get("type") or ""),
            headers=headers,
        )
        self._publish_confirmed(retry, routing_key=queue)
        self.counts["retried"] += 1
        logger.warning("consumer %s: attempt %s failed (%s); retrying in %sms", self.service, attempt, reason, delay)

    def process(self, messages: list[amqp.Message]) -> None:
        valid: list[tuple[amqp.Message, Envelope]] = []
        for message in messages:
            try:
                valid.append((message, envelope_parse(message.body)))
            except InvalidEvent as exc:
                self._dead_letter(message, kind="invalid", reason=str(exc), attempts=1)
                self._ack(message)
        if not valid:
            return
        try:
            # Fast path: the whole batch in one transaction.
            outcomes = self.store.apply(consumer=self.service, events=[e for _, e in valid], handlers=self.handlers)
        except DATABASE_DOWN:
            raise
        except Exception:  # noqa: BLE001 - any handler failure: find the culprit one by one, below
            outcomes = None
        if outcomes is None:
            logger.info("consumer %s: a batch of %s failed; applying one by one", self.service, len(valid))
            for message, event in valid:
                self._process_one(message, event)
            return
        self._count(outcomes)
        assert self._channel is not None
        self._channel.basic_ack(valid[-1][0].delivery_info["delivery_tag"], multiple=True)

    def _process_one(self, message: amqp.Message, event: Envelope) -> None:
        try:
            outcomes = self.store.apply(consumer=self.service, events=[event], handlers=self.handlers)
        except DATABASE_DOWN:
            raise
        except Exception as exc:
            logger.exception("consumer %s: handling %s %s failed", self.service, event.type, event.id)
            self._retry_or_dead_letter(message, exc)
        else:
            self._count(outcomes)
        self._ack(message)

    def _count(self, outcomes: list[bool]) -> None:
        self.counts["applied"] += sum(outcomes)
        self.counts["duplicates"] += len(outcomes) - sum(outcomes)

    def run(self, *, stop: threading.Event, idle_wait: float = 0.5) -> None:
        """Consumes until `stop` is set; finishes the batch in hand first (graceful shutdown)."""
        backoff = 0.2
        try:
            while not stop.is_set():
                try:
                    if self._connection is None:
                        self._connect()
                        backoff = 0.2
                    batch = self._collect(idle_wait)
                    if batch:
                        self.process(batch)
                except (*BROKER_ERRORS, *DATABASE_DOWN) as exc:
                    # Nothing in hand was acked: RabbitMQ redelivers it once we are back.
                    logger.warning(
                        "consumer %s lost a server (%s: %s); reconnecting", self.service, type(exc).__name__, exc
                    )
                    self.counts["reconnects"] += 1
                    self._disconnect()
                    connections.close_all()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            self._disconnect()
            self.store.close()


def runner_for_service(service: str, **options: object) -> ConsumerRunner:
    handlers = handlers_for_service(service)
    if not handlers:
        raise LookupError(f"No event handlers are registered for {service!r} (apps/<app>/handlers.py, @handles)")
    return ConsumerRunner(service=service, handlers=handlers, store=store_for_settings(), **options)


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.02) -> bool:
    """Polls `predicate` until it is true or `timeout` passes (tests and developer tools)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
