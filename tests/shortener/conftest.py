"""Fixtures for the shortener's suite: its real PostgreSQL database, Redis (the redirect cache and
the password throttle) and real RS256 tokens. Requests go through Django's whole middleware stack
with the headers the gateway sets (X-Tenant-ID, X-Tenant-Slug, x-visitor-*)."""

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from django.test import Client

from tests.helpers import REDIS_URL, TestSigningKey, access_claims

KEY = TestSigningKey("shortener-test-key")
TENANT_A = str(uuid.UUID(int=0xA))
TENANT_B = str(uuid.UUID(int=0xB))
SHARE = frozenset({"share_task", "edit_task"})


def public_key_for_kid(kid: str) -> object | None:
    return KEY.public_key() if kid == KEY.kid else None


@pytest.fixture(scope="session", autouse=True)
def _verify_with_test_key() -> None:
    from django.conf import settings

    from tests.helpers import AUDIENCE, ISSUER

    settings.JWT_PUBLIC_KEY_RESOLVER = "tests.shortener.conftest.public_key_for_kid"
    settings.JWT_ISSUER = ISSUER
    settings.JWT_AUDIENCE = AUDIENCE


@pytest.fixture(autouse=True)
def test_redis(settings) -> Iterator[redis.Redis]:
    """The suite's own Redis database, emptied around each test; the service's clients reset."""
    from apps.shortener import cache, throttle

    settings.REDIS_URL = REDIS_URL
    cache._redis.cache_clear()
    cache._write_script.cache_clear()
    throttle._limiter.cache_clear()
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    cache._redis.cache_clear()
    cache._write_script.cache_clear()
    throttle._limiter.cache_clear()


@dataclass
class Api:
    """Django's test client as one person of one organization, through the gateway's headers."""

    client: Client
    token: str
    tenant_id: str
    slug: str

    def _headers(self, extra: dict | None = None) -> dict:
        return {
            "HTTP_AUTHORIZATION": f"Bearer {self.token}",
            "HTTP_X_TENANT_ID": self.tenant_id,
            "HTTP_X_TENANT_SLUG": self.slug,
            **(extra or {}),
        }

    def post(self, path: str, body: dict) -> object:
        return self.client.post(path, json.dumps(body), content_type="application/json", **self._headers())

    def patch(self, path: str, body: dict) -> object:
        return self.client.patch(path, json.dumps(body), content_type="application/json", **self._headers())

    def get(self, path: str, **params: object) -> object:
        return self.client.get(path, params, **self._headers())

    def delete(self, path: str) -> object:
        return self.client.delete(path, **self._headers())


def api_for(
    user_id: str, *, tenant_id: str = TENANT_A, slug: str = "acme", roles=("member",), permissions=SHARE
) -> Api:
    token = KEY.sign(access_claims(tenant_id, user_id=user_id, roles=roles, permissions=permissions))
    return Api(Client(), token, tenant_id, slug)


@pytest.fixture
def alice() -> Api:
    return api_for("alice")


@pytest.fixture
def bob() -> Api:
    return api_for("bob")


@pytest.fixture
def admin() -> Api:
    return api_for("root", roles=("admin",))


@pytest.fixture
def outsider() -> Api:
    return api_for("eve", tenant_id=TENANT_B, slug="other")


def visit(code: str, *, method: str = "get", bot: bool = False, ip: str = "198.51.100.7", html: bool = False, **kw):
    """A visitor of /s/<code>, with the headers the gateway adds."""
    headers = {
        "HTTP_X_VISITOR_ID": "v" * 64,
        "HTTP_X_VISITOR_COUNTRY": "DE",
        "HTTP_X_VISITOR_BOT": "1" if bot else "0",
        "HTTP_X_FORWARDED_FOR": ip,
        "HTTP_USER_AGENT": "Slackbot-LinkExpanding 1.0" if bot else "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        "HTTP_ACCEPT": "text/html,application/xhtml+xml" if html else "application/json",
    }
    client = kw.pop("client", None) or Client()
    return getattr(client, method)(f"/s/{code}", **kw, **headers)
