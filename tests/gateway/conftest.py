"""The gateway under test runs for real (uvicorn, real sockets) in front of real upstream
servers from `upstreams.py`, with the machine's Redis (the tests' DB, tests/helpers.py, a per-run key prefix) and
RabbitMQ (a per-run events exchange, so no test sees the platform's real events)."""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
import redis

from apps.events.transports.amqp_client import broker_connect, connection_close
from gateway.config import SERVICES, GatewaySettings
from gateway.main import create_app
from gateway.server import header_timeout_protocol
from tests.gateway.upstreams import UpstreamState, upstream_app
from tests.helpers import BROKER_URL, REDIS_URL, TestSigningKey, access_claims, serve

RUN_PREFIX = f"gwtest-{uuid.uuid4().hex[:8]}"
RUN_EXCHANGE = f"{RUN_PREFIX}.events"

ACME_ID = "6f1c3a52-8d0e-4b7a-9a51-0c2d3e4f5a61"
GLOBEX_ID = str(uuid.uuid4())
TENANTS = {
    "acme": {"id": ACME_ID, "slug": "acme", "name": "Acme", "status": "active", "isolation": "schema"},
    "globex": {"id": GLOBEX_ID, "slug": "globex", "name": "Globex", "status": "active", "isolation": "database"},
    "newco": {
        "id": str(uuid.uuid4()),
        "slug": "newco",
        "name": "Newco",
        "status": "provisioning",
        "isolation": "schema",
    },
    "broken": {
        "id": str(uuid.uuid4()),
        "slug": "broken",
        "name": "Broken",
        "status": "failed",
        "isolation": "schema",
        "failure_reason": "disk full",
    },
}


class Stack:
    """The upstreams and their state; `gateway(...)` starts a gateway in front of them."""

    def __init__(self, urls: dict[str, str], states: dict[str, UpstreamState], key: TestSigningKey) -> None:
        self.urls = urls
        self.states = states
        self.key = key

    def settings(self, **overrides: object) -> GatewaySettings:
        values: dict[str, object] = {f"{service}_url": url for service, url in self.urls.items()}
        values["projects_ws_url"] = self.urls["projects"]  # one upstream answers the projects service's WebSockets too
        values.update(
            redis_url=REDIS_URL,
            redis_key_prefix=f"{RUN_PREFIX}-{uuid.uuid4().hex[:6]}",
            events_broker_url=BROKER_URL,
            events_exchange=RUN_EXCHANGE,
            upstream_timeout=5.0,
            connect_timeout=1.0,
            health_timeout=1.0,
            jwks_refetch_interval=0.0,
            tenant_local_ttl=0.0,
        )
        values.update(overrides)
        return GatewaySettings(**values)

    @contextmanager
    def gateway(self, **overrides: object) -> Iterator["Gateway"]:
        settings = self.settings(**overrides)
        # As platform/processes.toml runs it: uvicorn believes no forwarding header (the gateway
        # decides the client IP itself), and the gateway's HTTP protocol bounds header reads.
        with serve(
            create_app(settings), proxy_headers=False, http=header_timeout_protocol(settings.header_timeout)
        ) as base_url:
            yield Gateway(base_url, settings, self)

    def token(self, tenant: str | None = "acme", **overrides: object) -> str:
        tenant_id = TENANTS[tenant]["id"] if tenant else None
        return self.key.sign(access_claims(tenant_id, **overrides))


# Sentinel: sign a valid token for the tenant the host names.
HOST_TENANT_TOKEN = "<host tenant token>"


class Gateway:
    def __init__(self, base_url: str, settings: GatewaySettings, stack: Stack) -> None:
        self.base_url = base_url
        self.ws_url = base_url.replace("http://", "ws://")
        self.settings = settings
        self.stack = stack
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def request(
        self,
        method: str,
        path: str,
        *,
        host: str = "acme.localhost:8000",
        token: str | None = HOST_TENANT_TOKEN,
        **kwargs,
    ) -> httpx.Response:
        headers = {"Host": host, **kwargs.pop("headers", {})}
        if token == HOST_TENANT_TOKEN:
            slug = host.split(".")[0] if host.count(".") else None
            token = self.stack.token(slug if slug in TENANTS else None)
        if token:
            headers.setdefault("Authorization", f"Bearer {token}")
        return self.http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.request("GET", path, **kwargs)


@pytest.fixture(scope="session")
def signing_key() -> TestSigningKey:
    return TestSigningKey("key-1")


@pytest.fixture(scope="session")
def stack(signing_key: TestSigningKey) -> Iterator[Stack]:
    states = {service: UpstreamState() for service in SERVICES}
    states["tenancy"].tenants = {slug: dict(body) for slug, body in TENANTS.items()}
    states["identity"].jwks = {"keys": [signing_key.public_jwk]}
    urls: dict[str, str] = {}
    contexts = [serve(upstream_app(service, states[service])) for service in SERVICES]
    try:
        for service, context in zip(SERVICES, contexts, strict=True):
            urls[service] = context.__enter__()
        yield Stack(urls, states, signing_key)
    finally:
        for context in contexts:
            context.__exit__(None, None, None)
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{RUN_PREFIX}*"):
            client.delete(key)
        client.close()
        exchanges_delete(RUN_EXCHANGE)


def exchanges_delete(*names: str) -> None:
    """Drops the exchanges a run declared (gateways declare theirs on start, durable)."""
    connection = broker_connect(url=BROKER_URL, name="gateway-tests")
    try:
        channel = connection.channel()
        for name in names:
            channel.exchange_delete(name)
    finally:
        connection_close(connection)


@pytest.fixture(autouse=True)
def _reset_upstreams(stack: Stack) -> Iterator[None]:
    yield
    for state in stack.states.values():
        state.ready = True
        state.openapi = None
        state.tenant_lookups.clear()
        state.first_chunk_seen.clear()
        state.websocket_close_codes.clear()
    stack.states["tenancy"].tenants = {slug: dict(body) for slug, body in TENANTS.items()}
    stack.states["identity"].jwks = {"keys": [stack.key.public_jwk]}


@pytest.fixture
def gateway(stack: Stack) -> Iterator[Gateway]:
    with stack.gateway() as running:
        yield running


@pytest.fixture
def make_gateway(stack: Stack) -> Iterator[Callable[..., Gateway]]:
    """Start a gateway with other settings (a service down, a short timeout, ...)."""
    opened = []

    def start(**overrides: object) -> Gateway:
        context = stack.gateway(**overrides)
        opened.append(context)
        return context.__enter__()

    yield start
    for context in reversed(opened):
        context.__exit__(None, None, None)
