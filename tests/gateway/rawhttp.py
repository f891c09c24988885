"""HTTP/1.1 over a bare socket: requests exactly as written (dot segments, raw NUL, two Host
headers...), which every HTTP client would refuse or "fix" before sending."""

import json
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after answering

    def json(self) -> dict:
        return json.loads(self.body)


def connect(base_url: str, *, timeout: float = 10) -> socket.socket:
    address = urlsplit(base_url)
    sock = socket.create_connection((address.hostname, address.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def response_read(sock: socket.socket) -> RawResponse:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    body, extra = rest[:length], rest[length:]
    closed = False
    if not extra:
        sock.settimeout(0.3)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        except OSError:
            closed = True
    return RawResponse(status=status, headers=headers, body=body, closed=closed)


def raw_request(base_url: str, request: bytes, *, timeout: float = 10) -> RawResponse:
    with connect(base_url, timeout=timeout) as sock:
        sock.sendall(request)
        return response_read(sock)


def get(
    base_url: str, target: str | bytes, *, host: str = "acme.localhost:8000", token: str | None = None, extra: str = ""
) -> RawResponse:
    """GET `target` sent byte for byte as the request target."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = f"Host: {host}\r\n{auth}{extra}Connection: close\r\n\r\n".encode("latin-1")
    return raw_request(base_url, b"GET " + target + b" HTTP/1.1\r\n" + head)


def wait_closed(sock: socket.socket, *, within: float) -> bytes:
    """Everything the server sends until it closes, or raise if it keeps the socket open."""
    deadline = time.monotonic() + within
    received = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server kept the connection open for {within} s; received {received!r}")
