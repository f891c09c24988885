"""Tenant events on the real RabbitMQ drop the gateway's tenant cache (gateway/tenant_events.py).

Events are built and published with the platform's own code (apps.events.catalog and
broker), on an exchange of each test's own. Caches are set to live for minutes, so a test
can only pass if the event, not a TTL, made the gateway ask tenancy again.
"""

import time
import uuid
from collections.abc import Callable, Iterator

import amqp
import pytest
import redis

from apps.events.broker import broker_connect, connection_close, event_message, exchange_declare
from apps.events.catalog import envelope_create
from gateway.tenant_events import tenant_event_slug
from tests.gateway.conftest import BROKER_URL, REDIS_URL, RUN_PREFIX, TENANTS, Gateway, exchanges_delete
from tests.gateway.upstreams import closed_port_url
from tests.tcp_relay import TcpRelay

LONG_CACHE = {"tenant_cache_ttl": 300, "tenant_transient_ttl": 300, "tenant_local_ttl": 300.0}
NEWCO_ID = TENANTS["newco"]["id"]


def wait_until(predicate: Callable[[], bool], *, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def tenant_events_state(gateway: Gateway) -> str:
    return gateway.get("/readyz", host="localhost:8000", token=None).json()["tenant_events"]


def wait_subscribed(gateway: Gateway) -> None:
    assert wait_until(lambda: tenant_events_state(gateway) == "ok", timeout=10), tenant_events_state(gateway)


class Publisher:
    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.connection = broker_connect(url=BROKER_URL, name="gateway-tests-publisher")
        self.channel = self.connection.channel()
        exchange_declare(self.channel, exchange=exchange)

    def event(self, event_type: str, data: dict) -> None:
        envelope = envelope_create(event_type, data, tenant_id=data.get("tenant_id"), actor_id=None)
        message = event_message(body=envelope.to_json(), event_id=envelope.id, event_type=envelope.type)
        self.channel.basic_publish_confirm(message, exchange=self.exchange, routing_key=envelope.routing_key)

    def raw(self, body: bytes, *, routing_key: str) -> None:
        self.channel.basic_publish_confirm(amqp.Message(body), exchange=self.exchange, routing_key=routing_key)


@pytest.fixture
def exchange() -> Iterator[str]:
    name = f"{RUN_PREFIX}.{uuid.uuid4().hex[:6]}.events"
    yield name
    exchanges_delete(name)


@pytest.fixture
def publisher(exchange: str) -> Iterator[Publisher]:
    publisher = Publisher(exchange)
    yield publisher
    connection_close(publisher.connection)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def cached(client: redis.Redis, gateway: Gateway, slug: str) -> bool:
    return bool(client.exists(f"{gateway.settings.redis_key_prefix}:tenant:{slug}"))


@pytest.mark.parametrize(
    ("event_type", "slug", "before", "after", "data"),
    [
        ("TenantProvisioned", "newco", 503, 200, {"tenant_id": NEWCO_ID, "slug": "newco", "isolation": "schema"}),
        ("TenantProvisioningFailed", "newco", 503, 503, {"tenant_id": NEWCO_ID, "slug": "newco", "reason": "disk"}),
        (
            "TenantCreated",
            "freshco",
            404,
            503,
            {"tenant_id": str(uuid.uuid4()), "slug": "freshco", "name": "Freshco", "isolation": "schema"},
        ),
    ],
)
def test_a_tenant_event_makes_the_next_request_see_the_new_state(
    make_gateway, stack, exchange, publisher, redis_client, event_type, slug, before, after, data
) -> None:
    gateway = make_gateway(events_exchange=exchange, **LONG_CACHE)
    wait_subscribed(gateway)
    tenancy = stack.states["tenancy"]
    assert gateway.get("/api/projects", host=f"{slug}.localhost:8000").status_code == before
    new_status = {"TenantProvisioned": "active", "TenantProvisioningFailed": "failed"}.get(event_type, "provisioning")
    tenancy.tenants[slug] = {"id": data["tenant_id"], "slug": slug, "name": slug, "status": new_status}
    assert gateway.get("/api/projects", host=f"{slug}.localhost:8000").status_code == before  # still cached
    assert tenancy.tenant_lookups[slug] == 1

    publisher.event(event_type, data)
    assert wait_until(lambda: not cached(redis_client, gateway, slug), timeout=2)
    response = gateway.get("/api/projects", host=f"{slug}.localhost:8000")

    assert response.status_code == after
    if event_type == "TenantProvisioningFailed":
        assert response.json()["error"]["code"] == "tenant_unavailable"
    if event_type == "TenantCreated":
        assert response.json()["error"]["code"] == "tenant_provisioning"
    assert tenancy.tenant_lookups[slug] == 2


def test_every_gateway_process_drops_its_own_in_process_cache(make_gateway, stack, exchange, publisher) -> None:
    shared = {"events_exchange": exchange, "redis_key_prefix": f"{RUN_PREFIX}-shared-{uuid.uuid4().hex[:6]}"}
    replicas = [make_gateway(**shared, **LONG_CACHE) for _ in range(2)]
    for replica in replicas:
        wait_subscribed(replica)
        assert replica.get("/api/projects", host="newco.localhost:8000").status_code == 503
    stack.states["tenancy"].tenants["newco"]["status"] = "active"

    publisher.event("TenantProvisioned", {"tenant_id": NEWCO_ID, "slug": "newco"})

    for replica in replicas:
        assert wait_until(lambda r=replica: r.get("/api/projects", host="newco.localhost:8000").status_code == 200)


def test_the_gateway_serves_while_the_broker_is_unreachable_at_start(make_gateway) -> None:
    started = time.monotonic()
    gateway = make_gateway(events_broker_url=closed_port_url().replace("http://", "amqp://guest:guest@") + "//")

    assert gateway.get("/api/projects").status_code == 200
    assert time.monotonic() - started < 3
    readyz = gateway.get("/readyz", host="localhost:8000", token=None)
    assert readyz.status_code == 200  # the TTLs still bound staleness: no reason to take the gateway out
    assert wait_until(lambda: tenant_events_state(gateway).startswith("disconnected"))


def test_the_subscriber_reconnects_when_the_broker_comes_back(make_gateway, stack, exchange, publisher) -> None:
    with TcpRelay(target=("127.0.0.1", 5672)) as relay:
        gateway = make_gateway(
            events_broker_url=relay.amqp_url,
            events_exchange=exchange,
            tenant_events_max_backoff=0.5,
            **LONG_CACHE,
        )
        assert gateway.get("/api/projects", host="newco.localhost:8000").status_code == 503
        assert wait_until(lambda: tenant_events_state(gateway).startswith("disconnected"))

        relay.up()
        wait_subscribed(gateway)
        relay.down()  # an outage after the subscription
        assert wait_until(lambda: tenant_events_state(gateway).startswith("disconnected"))
        relay.up()
        wait_subscribed(gateway)
        stack.states["tenancy"].tenants["newco"]["status"] = "active"
        publisher.event("TenantProvisioned", {"tenant_id": NEWCO_ID, "slug": "newco"})

        assert wait_until(lambda: gateway.get("/api/projects", host="newco.localhost:8000").status_code == 200)
        assert relay.accepted == 2


def test_messages_that_name_no_tenant_change_nothing(make_gateway, stack, exchange, publisher, redis_client) -> None:
    gateway = make_gateway(events_exchange=exchange, **LONG_CACHE)
    wait_subscribed(gateway)
    assert gateway.get("/api/projects").status_code == 200  # acme, now cached
    assert gateway.get("/api/projects", host="newco.localhost:8000").status_code == 503
    stack.states["tenancy"].tenants["newco"]["status"] = "active"

    publisher.raw(b"not json", routing_key="tenant.created")
    publisher.raw(b'{"type": "TenantProvisioned", "data": {"slug": "ACME!"}}', routing_key="tenant.provisioned")
    publisher.raw(b'{"type": "TaskCreated", "data": {"slug": "acme"}}', routing_key="tenant.updated")
    publisher.event("TenantProvisioned", {"tenant_id": NEWCO_ID, "slug": "newco"})  # queued behind the rest

    assert wait_until(lambda: not cached(redis_client, gateway, "newco"))
    assert cached(redis_client, gateway, "acme")
    assert gateway.get("/api/projects").status_code == 200
    assert stack.states["tenancy"].tenant_lookups["acme"] == 1
    assert gateway.get("/api/projects", host="newco.localhost:8000").status_code == 200


def test_without_a_rabbitmq_url_the_subscriber_stays_off(make_gateway) -> None:
    gateway = make_gateway(events_broker_url="redis://127.0.0.1:6379/11")

    assert gateway.get("/api/projects").status_code == 200
    assert tenant_events_state(gateway) == "disabled: broker scheme 'redis' is not AMQP"


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        (b'{"type": "TenantProvisioned", "data": {"slug": "acme", "tenant_id": "x"}}', "acme"),
        (b'{"type": "TenantDeleted", "data": {"slug": "acme"}}', "acme"),
        (b'{"type": "TenantProvisioned", "data": {"tenant_id": "x"}}', None),
        (b'{"type": "TenantProvisioned", "data": {"slug": "a.b"}}', None),
        (b'{"type": "TenantProvisioned", "data": ["acme"]}', None),
        (b'{"type": "UserCreated", "data": {"slug": "acme"}}', None),
        (b'["TenantProvisioned"]', None),
        (b"\xff\xfe", None),
    ],
)
def test_only_a_tenant_event_with_a_valid_slug_names_a_tenant(body: bytes, slug: str | None) -> None:
    assert tenant_event_slug(body) == slug
