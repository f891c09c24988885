"""Issue 12 (gateway side): a token whose jti identity revoked at logout (`revoked-jti:<jti>` in
the shared Redis DB) is refused on every authenticated request and websocket."""

import uuid
from collections.abc import Iterator

import pytest
import redis
from websockets.exceptions import InvalidStatus

from tests.gateway.conftest import ACME_ID, Gateway
from tests.gateway.test_websocket import ws_connect
from tests.helpers import REDIS_URL, access_claims, closed_port_url


@pytest.fixture
def revoke() -> Iterator:
    client = redis.Redis.from_url(REDIS_URL)
    written: list[str] = []

    def write(jti: str) -> None:
        key = f"revoked-jti:{jti}"  # exactly as identity writes it (docs/gateway.md)
        client.set(key, "1", ex=900)
        written.append(key)

    yield write
    for key in written:
        client.delete(key)
    client.close()


def test_a_revoked_token_is_refused(gateway: Gateway, stack, revoke) -> None:
    jti = uuid.uuid4().hex
    token = stack.token(jti=jti)
    assert gateway.get("/api/projects", token=token).status_code == 200

    revoke(jti)
    refused = gateway.get("/api/projects", token=token)
    cookie = gateway.get("/api/projects", token=None, headers={"Cookie": f"access_token={token}"})
    other = gateway.get("/api/projects", token=stack.token())

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "token_revoked"
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert cookie.status_code == 401
    assert other.status_code == 200


def test_a_revoked_token_opens_no_websocket(gateway: Gateway, stack, revoke) -> None:
    jti = uuid.uuid4().hex
    revoke(jti)

    with pytest.raises(InvalidStatus) as refused:
        ws_connect(gateway, "/ws/boards/7/", token=stack.token(jti=jti))

    assert refused.value.response.status_code == 401
    assert b"token_revoked" in refused.value.response.body


def test_a_token_without_a_jti_is_refused(gateway: Gateway, stack) -> None:
    claims = access_claims(ACME_ID)
    del claims["jti"]  # it could never be revoked
    token = stack.key.sign(claims)

    response = gateway.get("/api/projects", token=token)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


def test_public_paths_do_not_look_for_revocation(gateway: Gateway, stack, revoke) -> None:
    jti = uuid.uuid4().hex
    revoke(jti)

    # Logging out again with a revoked access token still reaches identity.
    response = gateway.request("POST", "/api/auth/logout", token=stack.token(jti=jti), json={})

    assert response.status_code == 200


def test_without_redis_revocation_fails_open(make_gateway, stack) -> None:
    # Deliberate (docs/gateway.md): Redis down must not become a platform outage; the token
    # still lives at most its remaining minutes, and the services check the key themselves.
    gateway = make_gateway(redis_url=closed_port_url().replace("http://", "redis://"))

    assert gateway.get("/api/projects", token=stack.token()).status_code == 200
