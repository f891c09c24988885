"""Fixtures for the event backbone's suite: real PostgreSQL, real RabbitMQ and Redis, real commits.

Run: TEST_DB_SUFFIX=_events .venv/bin/pytest --ds=config.settings.shortener tests/events
A test that touches the broker runs once per transport (`rabbitmq`, `redis`: the fallback
`make up` uses when no RabbitMQ runs). Every test gets its own exchange and queue names
(deleted after it), and commits for real (transactional_db), so the relay's own
connections see the rows.
"""

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.conf import settings as django_settings
from django.db import transaction

from apps.events.catalog import Envelope
from apps.events.consumer import ConsumerRunner, Handlers, PostgresStore, handlers_for_service
from apps.events.outbox import publish
from apps.events.relay import OutboxRelay
from apps.events.transports import transport_connect
from apps.events.transports.base import ConsumerQueues, Outgoing

RETRY_DELAYS_MS = [50, 150]
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


@dataclass
class BrokerNames:
    tag: str
    transport: str
    url: str
    services: set[str] = field(default_factory=set)

    def env(self) -> dict[str, str]:
        """What a consumer or relay in a child process needs to share this test's broker and names."""
        return {
            "EVENTS_BROKER_URL": self.url,
            "EVENTS_EXCHANGE": self.tag,
            "EVENTS_QUEUE_PREFIX": self.tag,
            "EVENTS_RETRY_DELAYS_MS": ",".join(str(delay) for delay in RETRY_DELAYS_MS),
        }


def broker_url_for(transport: str) -> str:
    return RABBITMQ_URL if transport == "rabbitmq" else django_settings.REDIS_URL


@pytest.fixture(params=["rabbitmq", "redis"])
def broker_names(request, settings) -> Iterator[BrokerNames]:
    names = BrokerNames(
        tag=f"test-events-{uuid.uuid4().hex[:10]}", transport=request.param, url=broker_url_for(request.param)
    )
    settings.EVENTS_BROKER_URL = names.url
    settings.EVENTS_EXCHANGE = names.tag
    settings.EVENTS_QUEUE_PREFIX = names.tag
    settings.EVENTS_RETRY_DELAYS_MS = RETRY_DELAYS_MS
    yield names
    transport = transport_connect(url=names.url, name="test-cleanup")
    try:
        for service in names.services:
            queues = ConsumerQueues.for_service(service, prefix=names.tag, retry_delays_ms=RETRY_DELAYS_MS)
            transport.queues_delete(queues, exchange=names.tag)
        transport.exchange_delete(names.tag)
    finally:
        transport.close()


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


RawPublish = Callable[..., None]


@pytest.fixture
def raw_publish(broker_names) -> Iterator[RawPublish]:
    """Puts arbitrary (also malformed) messages on the exchange, as any publisher could."""
    transport = transport_connect(name="test-raw")

    def send(body: bytes, *, routing_key: str = "url.expired", message_id: str = "", event_type: str = "") -> None:
        message = Outgoing(body=body, event_id=message_id, event_type=event_type, routing_key=routing_key)
        transport.publish([message], exchange=broker_names.tag)

    yield send
    transport.close()


def queue_ready(service: str) -> bool:
    """Whether a consumer's queue exists yet (a consumer started in another process declares it when up)."""
    transport = transport_connect(name="test-queue-ready")
    try:
        return transport.consumer_ready(ConsumerQueues.for_service(service), exchange=django_settings.EVENTS_EXCHANGE)
    finally:
        transport.close()
