"""Request id and access log for every request, HTTP and WebSocket, whatever answers it."""

import os
import re
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.logging import access_log

# An incoming id is kept only if it cannot smuggle anything into headers or logs.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

# What every answer carries when whoever made it (the gateway itself: its errors, health, the
# merged OpenAPI) did not say: the services set their own (apps/common/middleware.py), which win.
# Nothing the gateway answers runs script, so its default policy allows nothing at all.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


def security_headers_add(
    headers: Iterable[tuple[bytes, bytes]], request_id: bytes | None = None
) -> list[tuple[bytes, bytes]]:
    """`headers`, then the security headers they lack, then `X-Request-ID` (any other dropped):
    one pass over the answer's headers."""
    kept = []
    present = set()
    for name, value in headers:
        lower = name.lower()
        if request_id is not None and lower == b"x-request-id":
            continue
        present.add(lower)
        kept.append((name, value))
    kept += [(name, value) for name, value in SECURITY_HEADERS if name not in present]
    if request_id is not None:
        kept.append((b"x-request-id", request_id))
    return kept


def new_request_id() -> str:
    return os.urandom(16).hex()  # the shape of uuid4().hex, at a third of its cost


def request_id_from(raw_headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is safe to repeat, else a new one."""
    for name, value in raw_headers:
        if name == b"x-request-id":  # ASGI servers give header names in lower case
            incoming = value.decode("latin-1")
            return incoming if _VALID_REQUEST_ID.fullmatch(incoming) else new_request_id()
    return new_request_id()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        request_id_bytes = request_id.encode()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status: int | None = None

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
                state["response_started"] = True
                message["headers"] = security_headers_add(message.get("headers") or (), request_id_bytes)
            elif message["type"] == "websocket.accept":
                status = 101
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id_bytes)]
            elif message["type"] == "websocket.close" and status is None:
                status = 403
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            access_log(
                method=scope.get("method", "WS"),
                path=scope["path"],
                status=status if status is not None else 500,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                service=state.get("service"),
                request_id=request_id,
                tenant=state.get("tenant_slug"),
                user=state.get("user_id"),
            )
