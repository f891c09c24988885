"""Reading a request body whole, before any service is contacted (issue 8, item 3).

A service thread is never held by a slow client: the gateway (one coroutine per client,
no thread) waits for the body, within a per-route size limit and a deadline that grows with
the body's size at a minimum rate. Too big: 413 `payload_too_large` (before reading, when the
declared Content-Length already says so). Too slow: 408 `request_timeout`. The service then
gets the complete body with a Content-Length, whatever framing the client used (a chunked
body arrives intact).
"""

import asyncio
import re

from starlette.types import Receive

from gateway.config import GatewaySettings
from gateway.errors import GatewayError

_UPLOAD = re.compile(r"/api/tasks/[^/]+/attachments/?")
_AUTH_PREFIXES = ("/api/auth", "/api/tenants", "/login", "/logout", "/signup")


class ClientDisconnected(Exception):
    """The client went away before its body was complete: there is no one to answer."""


def body_limit(path: str, settings: GatewaySettings) -> int:
    """The largest body a route accepts, in bytes."""
    if _UPLOAD.fullmatch(path):
        return settings.body_limit_upload
    if any(path == prefix or path.startswith(prefix + "/") for prefix in _AUTH_PREFIXES):
        return settings.body_limit_auth
    return settings.body_limit_default


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        "payload_too_large",
        f"The request body is larger than this route accepts ({limit} bytes)",
        # The rest of the body is not wanted: closing beats reading it to keep the connection.
        headers={"Connection": "close"},
        limit=limit,
    )


def declared_length(headers: list[tuple[bytes, bytes]]) -> tuple[bool, int | None]:
    """(whether a body follows, its Content-Length if declared). The HTTP server already refused
    conflicting or malformed framing (duplicate lengths, a length beside chunked encoding)."""
    has_body, length = False, None
    for name, value in headers:
        if name == b"content-length":
            has_body = True
            try:
                length = int(value)
            except ValueError:
                raise GatewayError(400, "invalid_request", "Content-Length is not a number") from None
        elif name == b"transfer-encoding":
            has_body = True
    return has_body and length != 0, length


async def body_read(receive: Receive, *, limit: int, declared: int | None, settings: GatewaySettings) -> bytes:
    if declared is not None and declared > limit:
        raise _too_large(limit)
    loop = asyncio.get_running_loop()
    started = loop.time()
    chunks: list[bytes] = []
    size = 0
    while True:
        # The deadline moves with the body's size: a large upload may take longer, at the minimum rate.
        deadline = started + settings.body_timeout + max(declared or 0, size) / settings.body_min_rate
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                message = await receive()
        except TimeoutError:
            raise GatewayError(
                408,
                "request_timeout",
                f"The request body did not arrive in time (at least {settings.body_min_rate} bytes/s after "
                f"{settings.body_timeout:g} s)",
                headers={"Connection": "close"},
            ) from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
