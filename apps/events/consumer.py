"""Consuming events: handler registry, idempotency stores, and the runner behind `manage.py consume`.

A service declares handlers in `apps/<service>/handlers.py` with `@handles("Type")`. The
runner owns one durable queue per service (`<prefix>.<service>`, bound to the handled
routing keys), one retry queue per backoff delay and a dead-letter queue, on whichever
transport EVENTS_BROKER_URL names (apps/events/transports). Each event is
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
from typing import Any, Protocol

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from django.utils.module_loading import autodiscover_modules

from apps.events.catalog import EVENT_TYPES, Envelope, InvalidEvent, envelope_parse, routing_key_for
from apps.events.transports import Transport, transport_connect, transport_errors, transport_kind
from apps.events.transports.base import ConsumerQueues, Delivery

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

        self.client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            url or settings.MONGO_URL, serverSelectionTimeoutMS=5000
        )
        # MONGO_DB_NAME is in the settings of the services that use MongoDB (analytics).
        self.processed = self.client[database or settings.MONGO_DB_NAME]["processed_events"]  # type: ignore[misc]

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
        self.broker_kind = transport_kind(self.broker_url)
        self.exchange = exchange or settings.EVENTS_EXCHANGE
        self.queues = ConsumerQueues.for_service(service, prefix=queue_prefix, retry_delays_ms=retry_delays_ms)
        self.prefetch = prefetch or settings.EVENTS_CONSUMER_PREFETCH
        self.batch_size = batch_size or settings.EVENTS_CONSUMER_BATCH_SIZE
        if bindings is None:
            bindings = ["#"] if service == PROBE_SERVICE else [routing_key_for(t) for t in handlers]
        self.bindings = sorted(set(bindings))
        self.counts: dict[str, int] = defaultdict(int)
        self._transport: Transport | None = None

    # Connection ---------------------------------------------------------------------------

    def _connect(self) -> None:
        transport = transport_connect(url=self.broker_url, name=f"consumer-{self.service}")
        try:
            transport.subscribe(self.queues, exchange=self.exchange, bindings=self.bindings, prefetch=self.prefetch)
        except BaseException:
            transport.close()
            raise
        self._transport = transport
        logger.info(
            "consumer %s listening on %s (%s) over %s",
            self.service,
            self.queues.main,
            ", ".join(self.bindings),
            self.broker_kind,
        )

    def _disconnect(self) -> None:
        # Whatever was in hand and unsettled, the broker delivers again once we are back.
        if self._transport is not None:
            self._transport.close()
        self._transport = None

    # Processing ---------------------------------------------------------------------------

    def _dead_letter(self, delivery: Delivery, *, kind: str, reason: str, attempts: int) -> None:
        assert self._transport is not None
        headers = dict(delivery.headers)
        headers.update(
            {
                "x-dead-kind": kind,
                "x-dead-reason": reason[:2000],
                "x-attempts": attempts,
                "x-consumer": self.service,
                "x-dead-at": datetime.now(UTC).isoformat(),
                "x-original-routing-key": delivery.routing_key,
            }
        )
        self._transport.dead_letter(delivery, headers=headers)
        self.counts["dead_lettered"] += 1
        logger.error("consumer %s dead-lettered %s (%s): %s", self.service, delivery.event_id, kind, reason)

    def _retry_or_dead_letter(self, delivery: Delivery, exc: BaseException) -> None:
        assert self._transport is not None
        attempt = int(delivery.header("x-attempt", 1) or 1)  # type: ignore[call-overload]
        reason = f"{type(exc).__name__}: {exc}"
        if attempt > len(self.queues.retries):
            self._dead_letter(delivery, kind="handler_failed", reason=reason, attempts=attempt)
            return
        headers = {**delivery.headers, "x-attempt": attempt + 1, "x-last-error": reason[:2000]}
        delay = self._transport.retry(delivery, attempt=attempt, headers=headers)
        self.counts["retried"] += 1
        logger.warning("consumer %s: attempt %s failed (%s); retrying in %sms", self.service, attempt, reason, delay)

    def process(self, deliveries: list[Delivery]) -> None:
        assert self._transport is not None
        valid: list[tuple[Delivery, Envelope]] = []
        for delivery in deliveries:
            try:
                valid.append((delivery, envelope_parse(delivery.body)))
            except InvalidEvent as exc:
                self._dead_letter(delivery, kind="invalid", reason=str(exc), attempts=1)
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
            for delivery, event in valid:
                self._process_one(delivery, event)
            return
        self._count(outcomes)
        self._transport.ack([delivery for delivery, _ in valid])

    def _process_one(self, delivery: Delivery, event: Envelope) -> None:
        assert self._transport is not None
        try:
            outcomes = self.store.apply(consumer=self.service, events=[event], handlers=self.handlers)
        except DATABASE_DOWN:
            raise
        except Exception as exc:
            logger.exception("consumer %s: handling %s %s failed", self.service, event.type, event.id)
            self._retry_or_dead_letter(delivery, exc)
            return
        self._count(outcomes)
        self._transport.ack([delivery])

    def _count(self, outcomes: list[bool]) -> None:
        self.counts["applied"] += sum(outcomes)
        self.counts["duplicates"] += len(outcomes) - sum(outcomes)

    def run(self, *, stop: threading.Event, idle_wait: float = 0.5) -> None:
        """Consumes until `stop` is set; finishes the batch in hand first (graceful shutdown)."""
        backoff = 0.2
        lost = (*transport_errors(), *DATABASE_DOWN)
        try:
            while not stop.is_set():
                try:
                    if self._transport is None:
                        self._connect()
                        backoff = 0.2
                    assert self._transport is not None
                    batch = self._transport.receive(wait=idle_wait, max_count=self.batch_size)
                    if batch:
                        self.process(batch)
                except lost as exc:
                    # Nothing in hand was settled: the broker delivers it again once we are back.
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


def runner_for_service(service: str, **options: Any) -> ConsumerRunner:
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
