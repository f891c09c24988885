import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.auth import path_is_public
from tests.gateway.conftest import ACME_ID, Gateway
from tests.helpers import TestSigningKey, access_claims, wait_until


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_valid_bearer_token_passes_and_is_forwarded(gateway: Gateway) -> None:
    token = gateway.stack.token()

    response = gateway.get("/api/projects", token=token)

    assert response.status_code == 200
    assert response.json()["headers"]["authorization"] == f"Bearer {token}"


def test_the_access_token_cookie_is_accepted(gateway: Gateway) -> None:
    response = gateway.get("/api/projects", token=None, headers={"Cookie": f"access_token={gateway.stack.token()}"})

    assert response.status_code == 200
    assert "access_token=" in response.json()["headers"]["cookie"]


def test_no_token_is_a_401(gateway: Gateway) -> None:
    response = gateway.get("/api/projects", token=None)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_anonymous_browser_is_sent_to_login(gateway: Gateway) -> None:
    response = gateway.get("/boards/3/?view=compact", token=None, headers={"Accept": "text/html"})

    assert response.status_code == 302
    assert response.headers["location"] == "/api/auth/resume?next=%2Fboards%2F3%2F%3Fview%3Dcompact"


def _forged_tokens(key: TestSigningKey) -> dict[str, str]:
    header_none = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": key.kid}).encode())
    payload = _b64(json.dumps(access_claims(ACME_ID)).encode())
    public_pem = key.private.public_key().public_bytes(
        encoding=serialization.Encoding.PEM, format=serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid}).encode())}.{payload}"
    hs256 = _b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    stranger = TestSigningKey(key.kid)  # same kid, another private key
    return {
        "alg_none": f"{header_none}.{payload}.",
        "hs256_with_public_key": f"{signing_input}.{hs256}",
        "unknown_kid": TestSigningKey("rogue").sign(access_claims(ACME_ID)),
        "wrong_private_key": stranger.sign(access_claims(ACME_ID)),
        "expired": key.sign(access_claims(ACME_ID, exp=int(time.time()) - 3600)),
        "wrong_audience": key.sign(access_claims(ACME_ID, aud="someone-else")),
        "wrong_issuer": key.sign(access_claims(ACME_ID, iss="evil-identity")),
        "no_exp": key.sign({k: v for k, v in access_claims(ACME_ID).items() if k != "exp"}),
        "garbage": "not.a.jwt",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "alg_none",
        "hs256_with_public_key",
        "unknown_kid",
        "wrong_private_key",
        "expired",
        "wrong_audience",
        "wrong_issuer",
        "no_exp",
        "garbage",
    ],
)
def test_forged_and_stale_tokens_are_refused(gateway: Gateway, signing_key: TestSigningKey, kind: str) -> None:
    token = _forged_tokens(signing_key)[kind]

    response = gateway.get("/api/projects", token=token)

    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_token"


def test_another_tenants_token_is_refused_on_this_host(gateway: Gateway) -> None:
    response = gateway.get("/api/projects", host="globex.localhost:8000", token=gateway.stack.token("acme"))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "wrong_tenant"


def test_a_tenant_token_is_refused_on_the_apex(gateway: Gateway) -> None:
    response = gateway.get("/api/analytics/platform", host="localhost:8000", token=gateway.stack.token("acme"))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "wrong_tenant"


def test_a_rotated_key_is_fetched_on_its_first_use(gateway: Gateway, stack) -> None:
    rotated = TestSigningKey("key-2", kind="OKP")
    stack.states["identity"].jwks = {"keys": [stack.key.public_jwk, rotated.public_jwk]}

    response = gateway.get("/api/projects", token=rotated.sign(access_claims(ACME_ID)))

    assert response.status_code == 200


def test_unknown_kids_do_not_hammer_identity(make_gateway, stack) -> None:
    gateway = make_gateway(jwks_refetch_interval=60)
    rogue = TestSigningKey("rogue-2")
    fetches_before = stack.states["identity"].jwks_fetches

    for _ in range(5):
        assert gateway.get("/api/projects", token=rogue.sign(access_claims(ACME_ID))).status_code == 401

    assert stack.states["identity"].jwks_fetches - fetches_before <= 1


def test_a_failed_jwks_fetch_is_retried_soon_not_after_the_refetch_interval(make_gateway, stack) -> None:
    """A gateway that started before identity could answer (a fresh stack) must not refuse the
    first tokens for the whole refetch interval: only a fetch that succeeded holds off the next."""
    fresh = TestSigningKey("fresh-key")
    stack.states["identity"].jwks = {"keys": [stack.key.public_jwk, fresh.public_jwk]}
    stack.states["identity"].jwks_failures = 1  # the gateway's warm-up fetch at start: identity is not up yet
    fetches_before = stack.states["identity"].jwks_fetches
    gateway = make_gateway(jwks_refetch_interval=60)
    token = fresh.sign(access_claims(ACME_ID))

    assert wait_until(lambda: gateway.get("/api/projects", token=token).status_code == 200, timeout=5, interval=0.2)
    assert stack.states["identity"].jwks_fetches - fetches_before == 2  # the failed one, then one that worked


def test_public_paths_need_no_token(gateway: Gateway) -> None:
    assert gateway.request("POST", "/api/auth/token", token=None, json={}).status_code == 200
    assert gateway.get("/s/abc", token=None).status_code == 200
    assert gateway.get("/static/app.js", token=None).status_code == 200
    assert gateway.get("/admin/login/", token=None).status_code == 200
    assert gateway.request("POST", "/api/tenants", host="localhost:8000", token=None, json={}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "public"),
    [
        ("GET", "/api/tenants/acme", True),
        ("POST", "/api/tenants", True),
        ("GET", "/api/tenants", False),
        ("DELETE", "/api/tenants/acme", False),
        ("GET", "/api/auth/me", False),
        ("POST", "/api/auth/refresh", True),
        ("GET", "/api/tasks/1", False),
        ("GET", "/s/x", True),
    ],
)
def test_which_paths_are_public(method: str, path: str, public: bool) -> None:
    assert path_is_public(method, path) is public


def test_cookie_authenticated_writes_need_the_csrf_header(gateway: Gateway) -> None:
    cookie = f"access_token={gateway.stack.token()}; csrftoken=abc123"

    refused = gateway.request("POST", "/api/tasks", token=None, headers={"Cookie": cookie}, json={})
    wrong = gateway.request(
        "POST", "/api/tasks", token=None, headers={"Cookie": cookie, "X-CSRFToken": "nope"}, json={}
    )
    allowed = gateway.request(
        "POST", "/api/tasks", token=None, headers={"Cookie": cookie, "X-CSRFToken": "abc123"}, json={}
    )
    reading = gateway.get("/api/tasks/1", token=None, headers={"Cookie": cookie})
    bearer = gateway.request("POST", "/api/tasks", json={})

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    assert wrong.status_code == 403
    assert allowed.status_code == 200
    assert reading.status_code == 200
    assert bearer.status_code == 200
