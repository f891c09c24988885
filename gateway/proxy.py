"""Forwarding to a service: HTTP with streamed bodies both ways, and WebSockets.

Requests are built by hand (not `client.build_request`) so the pooled client adds no
default headers of its own (an `Accept-Encoding` the browser never sent would come back
compressed) and keeps no cookies between callers.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urlsplit

import httpx
import websockets
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from gateway.config import GatewaySettings
from gateway.errors import GatewayError, error_body

logger = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# The gateway's own server writes these on every response; the service's copies would double them.
RESPONSE_SERVER_OWNED = frozenset({"server", "date"})
# Only the gateway may say who the tenant is or vouch for an internal caller.
CLIENT_FORBIDDEN = frozenset({"x-tenant-id", "x-tenant-slug", "x-internal-token", "x-request-id", "x-forwarded-host"})
# The websockets client writes these itself, for its own handshake with the service.
_WEBSOCKET_HANDSHAKE = frozenset({"host", "origin", "user-agent", "content-length"})


def http_client_create(*, settings: GatewaySettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.upstream_timeout, connect=settings.connect_timeout),
        limits=httpx.Limits(
            max_connections=settings.max_connections, max_keepalive_connections=settings.max_connections // 2
        ),
        follow_redirects=False,
        trust_env=False,
        cookies=httpx.Cookies(CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))),
    )


def forwarded_headers(
    raw_headers: Iterable[tuple[bytes, bytes]],
    *,
    client_ip: str | None,
    scheme: str,
    request_id: str,
    tenant: tuple[str, str] | None,
    drop: frozenset[str] = frozenset(),
) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop and spoofable ones, plus what the services rely on."""
    pairs = [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in raw_headers]
    named_by_connection = {
        token.strip().lower() for name, value in pairs if name == "connection" for token in value.split(",")
    }
    skip = HOP_BY_HOP | CLIENT_FORBIDDEN | named_by_connection | drop
    headers = [(name, value) for name, value in pairs if name not in skip and name != "x-forwarded-for"]
    host = next((value for name, value in pairs if name == "host"), "")
    previous_for = ", ".join(value for name, value in pairs if name == "x-forwarded-for")
    forwarded_for = ", ".join(part for part in (previous_for, client_ip or "") if part)
    headers += [
        ("x-forwarded-host", host),
        ("x-forwarded-proto", scheme),
        ("x-request-id", request_id),
    ]
    if forwarded_for:
        headers.append(("x-forwarded-for", forwarded_for))
    if tenant is not None:
        headers += [("x-tenant-id", tenant[0]), ("x-tenant-slug", tenant[1])]
    return headers


def _upstream_url(base_url: str, raw_path: bytes, query_string: bytes) -> str:
    url = base_url + raw_path.decode("latin-1")
    if query_string:
        url += "?" + query_string.decode("latin-1")
    return url


async def _relay_body(upstream: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    finally:
        await upstream.aclose()


async def http_forward(
    request: Request,
    *,
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    service: str,
    headers: list[tuple[str, str]],
) -> Response:
    has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
    upstream_request = httpx.Request(
        request.method,
        _upstream_url(
            settings.service_url(service), request.scope.get("raw_path") or b"/", request.scope["query_string"]
        ),
        headers=headers,
        content=request.stream() if has_body else None,
        extensions={"timeout": client.timeout.as_dict()},
    )
    try:
        async with asyncio.timeout(settings.upstream_timeout):
            upstream = await client.send(upstream_request, stream=True)
    except (httpx.ConnectError, httpx.ConnectTimeout):
        raise GatewayError(503, "service_unavailable", f"{service} is unavailable", service=service) from None
    except (TimeoutError, httpx.TimeoutException):
        raise GatewayError(
            504, "gateway_timeout", f"{service} did not answer within {settings.upstream_timeout:g} s", service=service
        ) from None
    except httpx.TransportError as error:
        logger.warning("bad upstream answer from %s: %r", service, error)
        raise GatewayError(502, "bad_gateway", f"{service} sent a broken answer", service=service) from None

    response = StreamingResponse(_relay_body(upstream), status_code=upstream.status_code)
    response.raw_headers = [
        (name.lower(), value)
        for name, value in upstream.headers.raw
        if name.lower().decode("latin-1") not in HOP_BY_HOP | RESPONSE_SERVER_OWNED
    ]
    return response


# WebSocket close codes that exist only locally and may not be sent on the wire.
_UNSENDABLE_CLOSE = {1005: 1000, 1006: 1011, 1015: 1011}


async def websocket_deny(websocket: WebSocket, error: GatewayError, *, request_id: str) -> None:
    """Refuse a handshake with the error as an HTTP answer when the server can, else a close code."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        body = error_body(error.code, error.message, request_id=request_id, **error.extra)
        await websocket.send_denial_response(JSONResponse(body, status_code=error.status, headers=error.headers))
        return
    code = {401: 4401, 403: 4403, 404: 4404, 429: 4429}.get(error.status, 1011)
    await websocket.close(code=code, reason=error.code)


async def websocket_forward(
    websocket: WebSocket,
    *,
    settings: GatewaySettings,
    service: str,
    headers: list[tuple[str, str]],
    request_id: str,
) -> None:
    base = urlsplit(settings.service_url(service))
    secure = base.scheme == "https"
    target_host = base.hostname or "127.0.0.1"
    target_port = base.port or (443 if secure else 80)
    path_and_query = _upstream_url("", websocket.scope.get("raw_path") or b"/", websocket.scope["query_string"])
    # Keep the client's Host (services route on it); only the TCP destination changes.
    original_host = websocket.headers.get("host") or f"{target_host}:{target_port}"
    uri = f"{'wss' if secure else 'ws'}://{original_host}{path_and_query}"
    subprotocols = list(websocket.scope.get("subprotocols") or [])
    additional = [
        (name, value)
        for name, value in headers
        if name not in _WEBSOCKET_HANDSHAKE and not name.startswith("sec-websocket-")
    ]

    try:
        upstream = await websockets.connect(
            uri,
            host=target_host,
            port=target_port,
            subprotocols=subprotocols or None,
            additional_headers=additional,
            origin=websocket.headers.get("origin"),
            user_agent_header=websocket.headers.get("user-agent"),
            open_timeout=settings.upstream_timeout,
            max_size=settings.websocket_max_message,
            compression=None,
            proxy=None,
        )
    except InvalidStatus as refused:
        status = refused.response.status_code
        await websocket_deny(
            websocket,
            GatewayError(status, "upstream_refused", f"{service} refused the connection ({status})", service=service),
            request_id=request_id,
        )
        return
    except (OSError, InvalidURI):
        await websocket_deny(
            websocket,
            GatewayError(503, "service_unavailable", f"{service} is unavailable", service=service),
            request_id=request_id,
        )
        return
    except (TimeoutError, InvalidHandshake):
        await websocket_deny(
            websocket,
            GatewayError(504, "gateway_timeout", f"{service} did not accept in time", service=service),
            request_id=request_id,
        )
        return

    async with upstream:
        await websocket.accept(subprotocol=upstream.subprotocol)
        await _websocket_pump(websocket, upstream)


async def _websocket_pump(websocket: WebSocket, upstream: ClientConnection) -> None:
    async def client_to_upstream() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                code = message.get("code", 1000)
                await upstream.close(code=_UNSENDABLE_CLOSE.get(code, code), reason=message.get("reason") or "")
                return
            if message.get("text") is not None:
                await upstream.send(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send(message["bytes"])

    async def upstream_to_client() -> None:
        try:
            async for message in upstream:
                if isinstance(message, str):
                    await websocket.send_text(message)
                else:
                    await websocket.send_bytes(message)
        except ConnectionClosed:
            pass
        received = upstream.protocol.close_rcvd
        code = received.code if received else 1011
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=_UNSENDABLE_CLOSE.get(code, code), reason=received.reason if received else "")

    tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, WebSocketDisconnect, RuntimeError):
                await task
