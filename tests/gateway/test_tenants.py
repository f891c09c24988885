import aiohttp
import pytest
import redis
from redis.asyncio import Redis

from gateway.errors import GatewayError
from gateway.tenants import TenantDirectory, host_tenant_slug, invalidate_tenant
from tests.gateway.conftest import GLOBEX_ID, Gateway
from tests.helpers import REDIS_URL, closed_port_url


@pytest.mark.parametrize(
    ("host", "slug"),
    [
        ("acme.localhost:8000", "acme"),
        ("ACME.localhost", "acme"),
        ("localhost:8000", None),
        ("127.0.0.1:8000", None),
        ("[::1]:8000", None),
        ("example.org", None),
    ],
)
def test_the_subdomain_names_the_tenant(host: str, slug: str | None) -> None:
    assert host_tenant_slug(host, base_domain="localhost") == slug


@pytest.mark.parametrize("host", ["a.b.localhost", "-x.localhost", "under_score.localhost"])
def test_a_host_that_cannot_be_a_tenant_is_not_found(host: str) -> None:
    with pytest.raises(GatewayError) as refused:
        host_tenant_slug(host, base_domain="localhost")
    assert refused.value.code == "tenant_not_found"


def test_the_tenant_is_forwarded_to_the_service(gateway: Gateway) -> None:
    response = gateway.get("/api/projects", host="globex.localhost:8000")

    assert response.json()["headers"]["x-tenant-id"] == GLOBEX_ID
    assert response.json()["headers"]["x-tenant-slug"] == "globex"


def test_the_apex_forwards_no_tenant(gateway: Gateway) -> None:
    response = gateway.request("POST", "/api/tenants", host="localhost:8000", token=None, json={"slug": "new"})

    assert response.status_code == 200
    assert "x-tenant-id" not in response.json()["headers"]


def test_an_unknown_subdomain_is_a_404(gateway: Gateway) -> None:
    response = gateway.get("/api/projects", host="nobody.localhost:8000", token=None)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "tenant_not_found"


def test_a_provisioning_tenant_answers_503_with_retry_after(gateway: Gateway) -> None:
    response = gateway.get("/api/auth/token", host="newco.localhost:8000", token=None)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == "tenant_provisioning"


def test_a_failed_tenant_is_unavailable(gateway: Gateway) -> None:
    response = gateway.get("/login", host="broken.localhost:8000", token=None)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "tenant_unavailable"


def test_lookups_are_cached_in_redis(gateway: Gateway, stack) -> None:
    for _ in range(5):
        assert gateway.get("/api/projects").status_code == 200

    assert stack.states["tenancy"].tenant_lookups == {"acme": 1}
    cached = redis.Redis.from_url(REDIS_URL).get(f"{gateway.settings.redis_key_prefix}:tenant:acme")
    assert b'"status": "active"' in cached


async def test_invalidate_tenant_makes_the_next_lookup_ask_tenancy(stack) -> None:
    settings = stack.settings()
    async with aiohttp.ClientSession() as client:
        redis_client = Redis.from_url(REDIS_URL)
        directory = TenantDirectory(settings=settings, client=client, redis=redis_client)
        try:
            assert (await directory.tenant_get(slug="acme")).status == "active"
            stack.states["tenancy"].tenants["acme"]["status"] = "provisioning"
            assert (await directory.tenant_get(slug="acme")).status == "active"  # cached

            await invalidate_tenant("acme")

            assert (await directory.tenant_get(slug="acme")).status == "provisioning"
            assert stack.states["tenancy"].tenant_lookups["acme"] == 2
        finally:
            await redis_client.aclose()


def test_tenancy_down_is_a_503_naming_tenancy(make_gateway) -> None:
    gateway = make_gateway(tenancy_url=closed_port_url())

    response = gateway.get("/api/projects")

    assert response.status_code == 503
    assert response.json()["error"]["service"] == "tenancy"
