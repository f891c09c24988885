"""Tenant events on the real RabbitMQ drop the gateway's tenant cache (gateway/tenant_events.py).

Events are built and published with the platform's own code (apps.events.catalog and
broker), on an exchange of each test's own. Caches are set to live for minutes, so a test
can only pass if the event, not a TTL, made the gateway ask tenancy again.
"""

import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis

from apps.events.catalog import envelope_create
from apps.events.transports.base import Outgoing, Transport
from apps.events.transports.rabbitmq import RabbitTransport
from apps.events.transports.redis_streams import RedisStreamsTransport
from gateway.tenant_events import tenant_event_slug
from tests.gateway.conftest import RUN_PREFIX, TENANTS, Gateway, exchanges_delete
from tests.helpers import BROKER_URL, REDIS_URL, closed_port_url, host_port, wait_until
from tests.tcp_relay import TcpRelay

LONG_CACHE = {"tenant_cache_ttl": 300, "tenant_transient_ttl": 300, "tenant_local_ttl": 300.0}
NEWCO_ID = TENANTS["newco"]["id"]


def tenant_events_state(gateway: Gateway) -> str:
    return gateway.get("/readyz", host="localhost:8000", token=None).json()["tenant_events"]


def wait_subscribed(gateway: Gateway) -> None:
    assert wait_until(lambda: tenant_events_state(gateway) == "ok", timeout=10), tenant_events_state(gateway)


class Publisher:
    """Publishes with the platform's own transport, so the gateway must read what the relay writes."""

    def __init__(self, *, url: str, exchange: str) -> None:
        self.url = url
        self.exchange = exchange
        if url.startswith("redis"):
            self.transport: Transport = RedisStreamsTransport(
                url=url, name="gateway-tests", maxlen=10_000, claim_idle_ms=60_000
            )
        else:
            self.transport = RabbitTransport(url=url, name="gateway-tests-publisher")

    def event(self, event_type: str, data: dict) -> None:
        envelope = envelope_create(event_type, data, tenant_id=data.get("tenant_id"), actor_id=None)
        self.raw(envelope.to_json(), routing_key=envelope.routing_key, event_id=envelope.id, event_type=envelope.type)

    def raw(self, body: bytes, *, routing_key: str, event_id: str = "", event_type: str = "") -> None:
        message = Outgoing(body=body, event_id=event_id, event_type=event_type, routing_key=routing_key)
        self.transport.publish([message], exchange=self.exchange)


@pytest.fixture
def exchange() -> Iterator[str]:
    name = f"{RUN_PREFIX}.{uuid.uuid4().hex[:6]}.events"
    yield name
    exchanges_delete(name)
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(name)
    client.close()


@pytest.fixture(params=["rabbitmq", "redis"])
def publisher(request, exchange: str) -> Iterator[Publisher]:
    publisher = Publisher(url=BROKER_URL if request.param == "rabbitmq" else REDIS_URL, exchange=exchange)
    yield publisher
    publisher.transport.close()


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
    gateway = make_gateway(events_broker_url=publisher.url, events_exchange=exchange, **LONG_CACHE)
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
    shared = {
        "events_broker_url": publisher.url,
        "events_exchange": exchange,
        "redis_key_prefix": f"{RUN_PREFIX}-shared-{uuid.uuid4().hex[:6]}",
    }
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
    broker = urlsplit(publisher.url)
    with TcpRelay(target=(broker.hostname or "127.0.0.1", broker.port or 5672)) as relay:
        gateway = make_gateway(
            events_broker_url=relay.url_through(publisher.url),
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
    gateway = make_gateway(events_broker_url=publisher.url, events_exchange=exchange, **LONG_CACHE)
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


def test_on_redis_events_published_during_an_outage_still_drop_the_cache(make_gateway, stack, exchange) -> None:
    publisher = Publisher(url=REDIS_URL, exchange=exchange)
    try:
        with TcpRelay(target=host_port(REDIS_URL, 6379)) as relay:
            relay.up()
            gateway = make_gateway(
                events_broker_url=relay.url_through(REDIS_URL),
                events_exchange=exchange,
                tenant_events_max_backoff=0.5,
                **LONG_CACHE,
            )
            wait_subscribed(gateway)
            assert gateway.get("/api/projects", host="newco.localhost:8000").status_code == 503
            relay.down()
            assert wait_until(lambda: tenant_events_state(gateway).startswith("disconnected"))
            stack.states["tenancy"].tenants["newco"]["status"] = "active"
            publisher.event("TenantProvisioned", {"tenant_id": NEWCO_ID, "slug": "newco"})
            relay.up()

            # It resumes from the last entry it read, so the event of the outage still arrives.
            assert wait_until(lambda: gateway.get("/api/projects", host="newco.localhost:8000").status_code == 200)
    finally:
        publisher.transport.close()


def test_an_unknown_broker_scheme_leaves_the_subscriber_off(make_gateway) -> None:
    gateway = make_gateway(events_broker_url="kafka://127.0.0.1:9092")

    assert gateway.get("/api/projects").status_code == 200
    assert tenant_events_state(gateway) == "disabled: broker scheme 'kafka' is neither AMQP nor Redis"


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
