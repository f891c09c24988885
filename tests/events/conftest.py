"""Fixtures for the event backbone's suite: real PostgreSQL, real RabbitMQ, real commits.

Run: TEST_DB_SUFFIX=_events .venv/bin/pytest --ds=config.settings.shortener tests/events
Every test gets its own exchange and queue names on the shared RabbitMQ (deleted after it),
and commits for real (transactional_db), so the relay's own connections see the rows.
"""

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import amqp
import pytest
from django.db import transaction

from apps.events.broker import ConsumerQueues, broker_connect, connection_close
from apps.events.catalog import Envelope
from apps.events.consumer import ConsumerRunner, Handlers, PostgresStore, handlers_for_service
from apps.events.outbox import publish
from apps.events.relay import OutboxRelay

RETRY_DELAYS_MS = [50, 150]


@dataclass
class BrokerNames:
    tag: str
    services: set[str] = field(default_factory=set)


@pytest.fixture
def broker_names(settings) -> Iterator[BrokerNames]:
    names = BrokerNames(tag=f"test-events-{uuid.uuid4().hex[:10]}")
    settings.EVENTS_EXCHANGE = names.tag
    settings.EVENTS_QUEUE_PREFIX = names.tag
    settings.EVENTS_RETRY_DELAYS_MS = RETRY_DELAYS_MS
    yield names
    connection = broker_connect(name="test-cleanup")
    try:
        channel = connection.channel()
        for service in names.services:
            ConsumerQueues.for_service(service, prefix=names.tag, retry_delays_ms=RETRY_DELAYS_MS).delete(channel)
        channel.exchange_delete(names.tag)
    finally:
        connection_close(connection)


@pytest.fixture
def events_db(transactional_db, broker_names) -> None:
    """Real commits, so the relay (its own connections) sees them; tables are emptied afterwards."""


class Threads:
    """Runs relays and consumers in threads; stops and joins them at teardown."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, target: Callable[..., None], **kwargs: object) -> None:
        thread = threading.Thread(target=target, kwargs={"stop": self.stop, **kwargs}, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)
        assert not any(thread.is_alive() for thread in self.threads), "a relay or consumer did not stop"


@pytest.fixture
def running(events_db) -> Iterator[Threads]:
    threads = Threads()
    yield threads
    threads.join()


@pytest.fixture
def start_relay(running: Threads) -> Callable[..., OutboxRelay]:
    def start(**options: object) -> OutboxRelay:
        relay = OutboxRelay(**options)
        running.start(relay.run)
        return relay

    return start


@pytest.fixture
def start_consumer(running: Threads, broker_names: BrokerNames) -> Callable[..., ConsumerRunner]:
    def start(service: str = "probe", handlers: Handlers | None = None, **options: object) -> ConsumerRunner:
        broker_names.services.add(service)
        runner = ConsumerRunner(
            service=service,
            handlers=handlers if handlers is not None else handlers_for_service("probe"),
            store=PostgresStore(),
            **options,
        )
        # Declares its queues before returning, so nothing published afterwards is missed.
        runner._connect()
        running.start(runner.run, idle_wait=0.1)
        return runner

    return start


@pytest.fixture
def publish_committed() -> Callable[..., Envelope]:
    def send(event_type: str, data: dict, **options: object) -> Envelope:
        options.setdefault("tenant_id", None)
        options.setdefault("actor_id", None)
        with transaction.atomic():
            return publish(event_type, data, **options)

    return send


@pytest.fixture
def raw_channel(broker_names) -> Iterator[amqp.Channel]:
    """A plain AMQP channel, for putting arbitrary (also malformed) messages on the exchange."""
    connection = broker_connect(name="test-raw")
    channel = connection.channel()
    yield channel
    connection_close(connection)


def queue_ready(name: str) -> bool:
    """Whether a queue exists yet (a consumer started in another process declares it when up)."""
    connection = broker_connect(name="test-queue-ready")
    try:
        connection.channel().queue_declare(name, passive=True)
        return True
    except amqp.exceptions.NotFound:
        return False
    finally:
        connection_close(connection)
