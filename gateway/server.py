"""The gateway's HTTP protocol for uvicorn: httptools, plus a bound on reading request headers.

uvicorn bounds the idle time between keep-alive requests (`--timeout-keep-alive`) but not the
time a client may take to send a request's headers: a client that connects and trickles a
header line now and then holds its connection for ever (slowloris). This protocol starts a
timer when a connection opens and when each new request begins, and stops it when the headers
are complete; if it fires first, the client gets a JSON `408 request_timeout` and the
connection is closed. Malformed requests get the JSON error contract instead of uvicorn's
plain-text 400.

Use: `uvicorn gateway.main:app --http gateway.server:HttpProtocol` (platform/processes.toml);
the timeout is `GATEWAY_HEADER_TIMEOUT`. Bodies are bounded by the app (gateway/body.py).
"""

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.config import get_settings
from gateway.errors import error_body
from gateway.middleware import new_request_id


def _json_error(status: int, reason: str, code: str, message: str) -> bytes:
    request_id = new_request_id()
    body = json.dumps(error_body(code, message, request_id=request_id)).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        f"x-request-id: {request_id}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


# Request line plus headers; counted per read from the socket, so exact to within one read.
MAX_HEADER_BYTES = 64 * 1024
LINGER_SECONDS = 1.0


def _request_target_has_control_bytes(data: bytes) -> bool:
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    parts = line.split(b" ")
    if len(parts) < 2:
        return False
    target = b" ".join(parts[1:-1]) if len(parts) > 2 else parts[1]
    return any(byte < 0x20 or byte == 0x7F for byte in target)


class HeaderTimeoutHttpToolsProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._header_bytes = 0
        self._discarding = False
        self._last_data = b""

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        self._last_data = data
        was_in_headers = self._in_headers
        if was_in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._in_headers and not was_in_headers:
            self._header_bytes += len(data)
        if self._in_headers and self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
            self._header_timer_stop()
            self.transport.write(
                _json_error(
                    431,
                    "Request Header Fields Too Large",
                    "headers_too_large",
                    f"The request line and headers exceed {MAX_HEADER_BYTES} bytes",
                )
            )
            # A lingering close: closing while the client still sends would reset the connection
            # and lose the answer in its receive buffer. Read and drop for a moment, then close.
            self._discarding = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _header_timer_start(self) -> None:
        self._header_timer_stop()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timeout_expired)

    def _header_timer_stop(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout_expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; its body has its own deadline
        self.transport.write(
            _json_error(408, "Request Timeout", "request_timeout", "The request headers did not arrive in time")
        )
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer_start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_timer_stop()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0
        if self._header_timer is None:  # a fresh connection's clock runs since it opened
            self._header_timer_start()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_timer_stop()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Between requests the keep-alive timeout applies; the header clock restarts with the next
        # request's first byte (on_message_begin). A client idling mid-headers is caught there.

    def handle_websocket_upgrade(self) -> None:
        self._header_timer_stop()
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        if _request_target_has_control_bytes(self._last_data):
            # A raw NUL or control byte in the path: the parser refuses it before the app could.
            error = _json_error(400, "Bad Request", "invalid_path", "The request path holds a control character")
        else:
            error = _json_error(400, "Bad Request", "invalid_request", msg)
        self.transport.write(error)
        self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutHttpToolsProtocol]:
    """The protocol class with its own header timeout (tests start gateways with other settings)."""
    return type("HeaderTimeoutHttpToolsProtocol", (HeaderTimeoutHttpToolsProtocol,), {"header_timeout": seconds})


class HttpProtocol(HeaderTimeoutHttpToolsProtocol):
    """What `--http gateway.server:HttpProtocol` loads: the timeout from the environment."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.header_timeout = get_settings().header_timeout
        super().__init__(*args, **kwargs)
