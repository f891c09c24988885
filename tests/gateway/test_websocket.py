import json
import socket
import time
from urllib.parse import urlsplit

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.gateway.conftest import ACME_ID, Gateway
from tests.helpers import closed_port_url


def ws_connect(
    gateway: Gateway, path: str, *, host: str = "acme.localhost:8000", token: str | None = None, **kwargs
) -> ClientConnection:
    """Dial the gateway's port while the handshake names `host`, as a browser on a subdomain would."""
    address = urlsplit(gateway.base_url)
    sock = socket.create_connection((address.hostname, address.port))
    if token:
        kwargs.setdefault("additional_headers", {})["Authorization"] = f"Bearer {token}"
    return connect(f"ws://{host}{path}", sock=sock, open_timeout=5, **kwargs)


def test_messages_flow_both_ways_through_the_proxy(gateway: Gateway) -> None:
    with ws_connect(gateway, "/ws/boards/7/?since=3", token=gateway.stack.token()) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "echo:hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=5) == b"\x00\x01binary"
        ws.send("whoami")
        seen = json.loads(ws.recv(timeout=5))

    assert seen["service"] == "projects"
    assert seen["path"] == "/ws/boards/7/"
    assert seen["query"] == "since=3"
    assert seen["headers"]["host"] == "acme.localhost:8000"
    assert seen["headers"]["x-tenant-id"] == ACME_ID
    assert seen["headers"]["x-tenant-slug"] == "acme"
    assert seen["headers"]["x-request-id"]


def test_the_token_may_ride_in_the_subprotocol(gateway: Gateway) -> None:
    token = gateway.stack.token()

    with ws_connect(gateway, "/ws/boards/7/", subprotocols=["bearer", token]) as ws:
        assert ws.subprotocol == "bearer"
        ws.send("whoami")
        seen = json.loads(ws.recv(timeout=5))

    assert seen["subprotocols"] == ["bearer", token]


def test_the_service_close_code_reaches_the_client(gateway: Gateway) -> None:
    with ws_connect(gateway, "/ws/boards/7/", token=gateway.stack.token()) as ws:
        ws.send("close:4003")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)

    assert closed.value.rcvd.code == 4003
    assert closed.value.rcvd.reason == "bye"


def test_the_client_close_code_reaches_the_service(gateway: Gateway, stack) -> None:
    with ws_connect(gateway, "/ws/boards/7/", token=gateway.stack.token()) as ws:
        ws.send("ping")
        assert ws.recv(timeout=5) == "echo:ping"
        ws.close(code=4000, reason="leaving")

    deadline = time.monotonic() + 5
    while not stack.states["projects"].websocket_close_codes and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stack.states["projects"].websocket_close_codes == [4000]


def test_no_token_is_refused_before_the_service_is_dialled(gateway: Gateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(gateway, "/ws/boards/7/")

    response = refused.value.response
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "invalid_token"


def test_a_forged_subprotocol_token_is_refused(gateway: Gateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(gateway, "/ws/boards/7/", subprotocols=["bearer", "not-a-jwt"])

    assert refused.value.response.status_code == 401


def test_a_service_that_refuses_the_handshake_is_relayed(gateway: Gateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(gateway, "/ws/refuse/", token=gateway.stack.token())

    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body)["error"]["code"] == "upstream_refused"


def test_a_down_service_refuses_the_websocket_with_503(make_gateway) -> None:
    gateway = make_gateway(projects_ws_url=closed_port_url())

    with pytest.raises(InvalidStatus) as refused:
        ws_connect(gateway, "/ws/boards/7/", token=gateway.stack.token())

    assert refused.value.response.status_code == 503
    error = json.loads(refused.value.response.body)["error"]
    assert error["code"] == "service_unavailable"
    assert error["service"] == "projects_ws"
