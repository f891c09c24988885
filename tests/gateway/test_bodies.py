"""Issue 8, items 3 and 10: request bodies are read whole, within a size and a time, before any
service sees them; header reads are bounded; malformed framing and headers get JSON 4xx."""

import socket
import time

import pytest

from tests.gateway import rawhttp
from tests.gateway.conftest import Gateway

TENANT = "acme.localhost:8000"


def _post_head(path: str, *, length: int | None, token: str, extra: str = "") -> bytes:
    framing = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (
        f"POST {path} HTTP/1.1\r\nHost: {TENANT}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/octet-stream\r\n{framing}{extra}\r\n"
    ).encode()


def test_a_declared_length_over_the_limit_is_refused_before_reading(gateway: Gateway, stack) -> None:
    with rawhttp.connect(gateway.base_url) as sock:
        sock.sendall(_post_head("/api/tasks/upload", length=50 * 2**20, token=stack.token()))
        response = rawhttp.response_read(sock)  # without sending a byte of the body

    assert response.status == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.json()["error"]["limit"] == gateway.settings.body_limit_default
    assert response.closed
    assert not stack.states["projects"].first_chunk_seen.is_set()


def test_a_chunked_body_over_the_limit_is_refused(make_gateway, stack) -> None:
    gateway = make_gateway(body_limit_default=100_000)

    def body():
        for _ in range(4):
            yield b"z" * 40_000

    response = gateway.request("POST", "/api/tasks/upload", content=body())

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not stack.states["projects"].first_chunk_seen.is_set()


@pytest.mark.parametrize(
    ("path", "setting"),
    [
        ("/api/auth/token", "body_limit_auth"),
        ("/api/tenants", "body_limit_auth"),
        ("/login", "body_limit_auth"),
        ("/api/tasks/9/comments", "body_limit_default"),
        ("/api/tasks/9/attachments", "body_limit_upload"),
    ],
)
def test_each_route_has_its_body_limit(gateway: Gateway, path: str, setting: str) -> None:
    limit = getattr(gateway.settings, setting)
    host = "localhost:8000" if path == "/api/tenants" else TENANT

    fits = gateway.request("POST", path, host=host, content=b"a" * limit)
    too_big = gateway.request("POST", path, host=host, content=b"a" * (limit + 1))

    assert fits.status_code == 200, fits.text
    assert fits.json()["body_len"] == limit
    assert too_big.status_code == 413
    assert too_big.json()["error"]["limit"] == limit


def test_limits_are_small_for_sign_in_and_large_for_attachments(gateway: Gateway) -> None:
    settings = gateway.settings
    assert settings.body_limit_auth <= 64 * 1024
    # projects accepts 10 MiB files (PROJECTS_ATTACHMENT_MAX_BYTES), inside a multipart envelope.
    assert settings.body_limit_upload > 10 * 2**20
    assert settings.body_limit_default < settings.body_limit_upload


def test_a_trickled_body_gets_a_408_and_the_service_never_sees_it(make_gateway, stack) -> None:
    gateway = make_gateway(body_timeout=0.5, body_min_rate=1_000_000)

    with rawhttp.connect(gateway.base_url) as sock:
        sock.sendall(_post_head("/api/tasks/upload", length=100, token=stack.token()))
        started = time.monotonic()
        sock.sendall(b"x")
        response = rawhttp.response_read(sock)
        elapsed = time.monotonic() - started

    assert response.status == 408
    assert response.json()["error"]["code"] == "request_timeout"
    assert response.closed
    assert 0.4 < elapsed < 3
    assert not stack.states["projects"].first_chunk_seen.is_set()


def test_a_large_body_may_take_longer_at_the_minimum_rate(make_gateway, stack) -> None:
    # 200 kB at >= 100 kB/s after 0.3 s: a client sending 50 kB every 0.2 s (250 kB/s) is in time.
    gateway = make_gateway(body_timeout=0.3, body_min_rate=100_000)

    def body():
        for _ in range(4):
            time.sleep(0.2)
            yield b"k" * 50_000

    response = gateway.request("POST", "/api/tasks/upload", content=body(), headers={"Content-Length": "200000"})

    assert response.status_code == 200, response.text
    assert response.json()["body_len"] == 200_000


def test_headers_that_never_end_get_a_408(make_gateway) -> None:
    gateway = make_gateway(header_timeout=0.5)

    with rawhttp.connect(gateway.base_url) as sock:
        sock.sendall(b"GET /api/projects HTTP/1.1\r\nHost: acme.localhost:8000\r\n")
        started = time.monotonic()
        received = rawhttp.wait_closed(sock, within=3)
    elapsed = time.monotonic() - started

    assert received.startswith(b"HTTP/1.1 408 ")
    assert b'"code": "request_timeout"' in received
    assert 0.3 < elapsed < 2


def test_a_header_line_every_so_often_does_not_extend_the_deadline(make_gateway) -> None:
    gateway = make_gateway(header_timeout=0.6)

    with rawhttp.connect(gateway.base_url) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /api/projects HTTP/1.1\r\n")
        for index in range(6):
            time.sleep(0.2)
            try:
                sock.sendall(f"X-Drip-{index}: 1\r\n".encode())
            except OSError:
                break
        received = rawhttp.wait_closed(sock, within=3)

    assert received.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 1.6


def test_a_silent_connection_is_closed(make_gateway) -> None:
    gateway = make_gateway(header_timeout=0.5)

    with rawhttp.connect(gateway.base_url) as sock:
        received = rawhttp.wait_closed(sock, within=3)

    assert received.startswith(b"HTTP/1.1 408 ")


def test_a_keep_alive_connection_still_serves_requests(gateway: Gateway, stack) -> None:
    request = f"GET /api/projects HTTP/1.1\r\nHost: {TENANT}\r\nAuthorization: Bearer {stack.token()}\r\n\r\n".encode()
    with rawhttp.connect(gateway.base_url) as sock:
        for _ in range(3):
            sock.sendall(request)
            response = rawhttp.response_read(sock)
            assert response.status == 200
            assert not response.closed


def test_oversized_headers_get_a_431(gateway: Gateway) -> None:
    with rawhttp.connect(gateway.base_url) as sock:
        sock.sendall(b"GET /api/projects HTTP/1.1\r\nHost: acme.localhost:8000\r\n")
        try:
            for _ in range(100):
                sock.sendall(b"X-Filler: " + b"f" * 2000 + b"\r\n")
        except OSError:
            pass
        received = rawhttp.wait_closed(sock, within=5)

    assert received.startswith(b"HTTP/1.1 431 ")
    assert b'"code": "headers_too_large"' in received


def test_a_malformed_request_gets_a_json_400(gateway: Gateway) -> None:
    with rawhttp.connect(gateway.base_url) as sock:
        sock.sendall(b"GET /api/projects HTTP/1.1\r\nHost acme\r\nBroken header line\r\n\r\n")
        received = rawhttp.wait_closed(sock, within=3)

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"application/json" in head
    assert b'"code": "invalid_request"' in body


@pytest.mark.parametrize(
    "framing",
    [
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: abc\r\n",
        "Transfer-Encoding: gzip, chunked, identity\r\n",
    ],
)
def test_conflicting_body_framing_is_refused(gateway: Gateway, stack, framing: str) -> None:
    request = (
        f"POST /api/tasks/upload HTTP/1.1\r\nHost: {TENANT}\r\nAuthorization: Bearer {stack.token()}\r\n"
        f"{framing}\r\nhello"
    ).encode()
    with rawhttp.connect(gateway.base_url) as sock:
        sock.sendall(request)
        try:
            received = rawhttp.wait_closed(sock, within=3)
        except ConnectionResetError:
            received = b"HTTP/1.1 400 reset"

    assert received.split(b" ")[1] == b"400", received
    assert not stack.states["projects"].first_chunk_seen.is_set()


def test_two_host_headers_are_a_400(gateway: Gateway, stack) -> None:
    response = rawhttp.raw_request(
        gateway.base_url,
        f"GET /api/projects HTTP/1.1\r\nHost: acme.localhost:8000\r\nHost: globex.localhost:8000\r\n"
        f"Authorization: Bearer {stack.token()}\r\nConnection: close\r\n\r\n".encode(),
    )

    assert response.status == 400
    assert response.json()["error"]["code"] == "invalid_host"
    assert "x-served-by" not in response.headers


def test_expect_100_continue_gets_the_body_and_is_not_forwarded(gateway: Gateway, stack) -> None:
    with rawhttp.connect(gateway.base_url) as sock:
        sock.sendall(
            _post_head("/api/tasks/9/comments", length=5, token=stack.token(), extra="Expect: 100-continue\r\n")
        )
        interim = sock.recv(100)
        sock.sendall(b"hello")
        response = rawhttp.response_read(sock)

    assert interim.startswith(b"HTTP/1.1 100 ")
    assert response.status == 200
    assert response.json()["body_len"] == 5
    assert "expect" not in response.json()["headers"]


def test_many_slow_clients_leave_the_gateway_answering(make_gateway, stack) -> None:
    gateway = make_gateway(body_timeout=5)
    slow = []
    try:
        for _ in range(50):
            sock = rawhttp.connect(gateway.base_url)
            sock.sendall(_post_head("/api/tasks/upload", length=1024, token=stack.token()) + b"x")
            slow.append(sock)

        # Each slow client holds a coroutine in the gateway, not a connection to a service.
        responses = [gateway.get("/api/projects") for _ in range(10)]
    finally:
        for sock in slow:
            sock.close()

    assert [response.status_code for response in responses] == [200] * 10
    assert not stack.states["projects"].first_chunk_seen.is_set()


def test_a_socket_error_mid_body_reaches_no_service(gateway: Gateway, stack) -> None:
    sock = rawhttp.connect(gateway.base_url)
    sock.sendall(_post_head("/api/tasks/upload", length=1000, token=stack.token()) + b"partial")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # a reset, mid-body
    time.sleep(0.3)

    assert gateway.get("/api/projects").status_code == 200
    assert not stack.states["projects"].first_chunk_seen.is_set()


@pytest.mark.parametrize("target", [b"/api/projects\x00", b"/api/projects/\x01x", b"/api\x7f"])
def test_raw_control_bytes_in_the_path_are_an_invalid_path(gateway: Gateway, target: bytes) -> None:
    with rawhttp.connect(gateway.base_url) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: acme.localhost:8000\r\n\r\n")
        received = rawhttp.wait_closed(sock, within=3)

    assert received.startswith(b"HTTP/1.1 400 ")
    assert b'"code": "invalid_path"' in received
