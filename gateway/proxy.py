"""Forwarding to a service: HTTP over one pooled aiohttp session, and WebSockets.

The request body was read whole by the gateway first (gateway/body.py), so a service gets
a complete body with a Content-Length and never waits on a slow client; the response streams
back as the service writes it. The path forwarded is exactly the one the gateway normalized
and routed (gateway/paths.py): the URL is built `encoded=True`, so the client re-normalizes
nothing. The session adds no headers of its own (no `Accept-Encoding` the browser never sent,
no `User-Agent`, no `Content-Type`), decompresses nothing and keeps no cookies.
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import urlsplit

import aiohttp
import websockets
from multidict import CIMultiDict
from starlette.responses import JSONResponse
from starlette.types import Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from yarl import URL

from gateway.config import GatewaySettings
from gateway.errors import GatewayError, error_body
from gateway.upstream import UpstreamBroken, UpstreamConnectError, UpstreamError, UpstreamPool, UpstreamTimeout

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
_HOP_BY_HOP_BYTES = frozenset(name.encode() for name in HOP_BY_HOP)
# The gateway's own server writes these on every response; the service's copies would double them.
_RESPONSE_SERVER_OWNED = frozenset({b"server", b"date"})
# Only the gateway may say who the tenant is, who the client is, or vouch for an internal caller.
CLIENT_FORBIDDEN = frozenset(
    {
        "x-tenant-id",
        "x-tenant-slug",
        "x-internal-token",
        "x-request-id",
        # Forwarding headers: the gateway writes its own; a client's copy would sit beside it.
        "x-forwarded-host",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "forwarded",
        "x-real-ip",
        # A short link's visitor facts (gateway/visitors.py): the shortener records them as told.
        "x-visitor-id",
        "x-visitor-country",
        "x-visitor-bot",
    }
)
# The body is forwarded whole, framed by the gateway: the client's framing does not apply to it.
_BODY_FRAMING = frozenset({"content-length", "expect"})
# The websockets client writes these itself, for its own handshake with the service.
_WEBSOCKET_HANDSHAKE = frozenset({"host", "origin", "user-agent", "content-length"})
# Idempotent requests are retried once when a pooled connection turned out to be closed by the
# service (its keep-alive ended as we reused it): the service never saw that attempt.
_RETRYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_CHUNK = 64 * 1024


def http_session_create(*, settings: GatewaySettings) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections,
        limit_per_host=0,
        # Below the services' own keep-alive (gunicorn: 2 s), so the gateway drops an idle
        # connection before the service does and rarely reuses one that is closing.
        keepalive_timeout=1.5,
        ttl_dns_cache=300,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=None, connect=settings.connect_timeout, sock_read=settings.upstream_timeout
        ),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        trust_env=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
    )


def forwarded_headers(
    raw_headers: Iterable[tuple[bytes, bytes]],
    *,
    client_ip: str,
    scheme: str,
    request_id: str,
    tenant: tuple[str, str] | None,
    drop: frozenset[str] = frozenset(),
) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop and spoofable ones, plus what the services rely on."""
    pairs = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw_headers]
    named_by_connection = {
        token.strip().lower() for name, value in pairs if name == "connection" for token in value.split(",")
    }
    skip = HOP_BY_HOP | CLIENT_FORBIDDEN | named_by_connection | drop
    headers = [(name, value) for name, value in pairs if name not in skip]
    host = next((value for name, value in pairs if name == "host"), "")
    headers += [
        ("x-forwarded-host", host),
        ("x-forwarded-proto", scheme),
        ("x-request-id", request_id),
        # Exactly one value, the client as the gateway decided it (gateway/clientip.py).
        ("x-forwarded-for", client_ip),
    ]
    if tenant is not None:
        headers += [("x-tenant-id", tenant[0]), ("x-tenant-slug", tenant[1])]
    return headers


def _query_encoded(query_string: bytes) -> str:
    """The query as the client sent it, with any byte a URL cannot carry raw percent-encoded."""
    if all(0x21 <= byte <= 0x7E for byte in query_string):
        return query_string.decode("ascii")
    return "".join(chr(byte) if 0x21 <= byte <= 0x7E else f"%{byte:02X}" for byte in query_string)


def upstream_url(base_url: str, path: str, query_string: bytes) -> str:
    return base_url + path + (f"?{_query_encoded(query_string)}" if query_string else "")


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@lru_cache(maxsize=64)
def _plain_http_address(base_url: str) -> tuple[str, int] | None:
    parts = urlsplit(base_url)
    if parts.scheme != "http" or parts.path not in ("", "/"):
        return None
    return parts.hostname or "127.0.0.1", parts.port or 80


async def http_forward(
    send: Send,
    *,
    pool: UpstreamPool,
    session: aiohttp.ClientSession,
    settings: GatewaySettings,
    method: str,
    service: str,
    path: str,
    query_string: bytes,
    headers: list[tuple[str, str]],
    body: bytes | None,
) -> None:
    """Send the request to `service` and relay its answer; GatewayError if none could be had."""
    address = _plain_http_address(settings.service_url(service))
    if address is None or method == "HEAD":
        await _forward_with_aiohttp(
            send,
            session=session,
            settings=settings,
            method=method,
            service=service,
            path=path,
            query_string=query_string,
            headers=headers,
            body=body,
        )
        return
    host, port = address
    lines = [f"{method} {upstream_url('', path, query_string)} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    if not any(name == "host" for name, _ in headers):
        lines.append(f"host: {host}:{port}")
    if body is not None or method in _BODY_METHODS:
        lines.append(f"content-length: {len(body) if body else 0}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    try:
        upstream = await pool.request(
            host=host, port=port, method=method, head=head, body=body, retry=method in _RETRYABLE_METHODS
        )
    except UpstreamConnectError:
        raise _unavailable(service) from None
    except UpstreamTimeout:
        raise _timed_out(service, settings) from None
    except UpstreamBroken as error:
        logger.warning("bad upstream answer from %s: %s", service, error)
        raise _broken(service) from None

    try:
        await send(_response_start(upstream.status, upstream.headers))
        whole = upstream.body_if_complete()
        if whole is not None:  # most API answers arrive in one piece: one message
            await send({"type": "http.response.body", "body": whole, "more_body": False})
            return
        while chunk := await upstream.chunk():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except UpstreamError as error:
        logger.warning("%s broke off its answer: %s", service, error)
        raise UpstreamBrokeOff(service) from None
    finally:
        upstream.release()


async def _forward_with_aiohttp(
    send: Send,
    *,
    session: aiohttp.ClientSession,
    settings: GatewaySettings,
    method: str,
    service: str,
    path: str,
    query_string: bytes,
    headers: list[tuple[str, str]],
    body: bytes | None,
) -> None:
    """HEAD requests and https services (the pool speaks plain HTTP and expects bodies)."""
    url = URL(upstream_url(settings.service_url(service), path, query_string), encoded=True)
    request_headers = CIMultiDict(headers)
    attempts = 2 if method in _RETRYABLE_METHODS else 1
    for attempt in range(attempts):
        try:
            upstream = await session.request(
                method, url, headers=request_headers, data=body, allow_redirects=False, compress=None
            )
            break
        except aiohttp.ClientConnectorError:
            raise _unavailable(service) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise _timed_out(service, settings) from None
        except aiohttp.ServerDisconnectedError:
            if attempt + 1 < attempts:
                continue
            raise GatewayError(502, "bad_gateway", f"{service} closed the connection", service=service) from None
        except aiohttp.ClientError as error:
            logger.warning("bad upstream answer from %s: %r", service, error)
            raise _broken(service) from None

    try:
        await send(_response_start(upstream.status, upstream.raw_headers))
        if method == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if upstream.content_length is not None and upstream.content_length <= _CHUNK:
            # Most API answers: small and sized, one message instead of a stream of them.
            await send({"type": "http.response.body", "body": await upstream.read(), "more_body": False})
            return
        content = upstream.content
        while True:
            chunk = await content.read(_CHUNK)
            if not chunk:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except (aiohttp.ClientError, TimeoutError) as error:
        # Headers are gone already: the only honest signal left is to cut the connection.
        logger.warning("%s broke off its answer: %r", service, error)
        raise UpstreamBrokeOff(service) from None
    finally:
        upstream.release()


def _response_start(status: int, headers: Iterable[tuple[bytes, bytes]]) -> dict:
    """The ASGI start of the service's answer, minus what only one hop or the gateway's own server may say."""
    kept = [
        (name.lower(), value)
        for name, value in headers
        if name.lower() not in _HOP_BY_HOP_BYTES and name.lower() not in _RESPONSE_SERVER_OWNED
    ]
    return {"type": "http.response.start", "status": status, "headers": kept}


def _unavailable(service: str) -> GatewayError:
    return GatewayError(503, "service_unavailable", f"{service} is unavailable", service=service)


def _timed_out(service: str, settings: GatewaySettings) -> GatewayError:
    message = f"{service} did not answer within {settings.upstream_timeout:g} s"
    return GatewayError(504, "gateway_timeout", message, service=service)


def _broken(service: str) -> GatewayError:
    return GatewayError(502, "bad_gateway", f"{service} sent a broken answer", service=service)


class UpstreamBrokeOff(Exception):
    """A service stopped mid-answer; the client's connection is closed to say so."""


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
    path: str,
    headers: list[tuple[str, str]],
    request_id: str,
) -> None:
    base = urlsplit(settings.service_url(service))
    secure = base.scheme == "https"
    target_host = base.hostname or "127.0.0.1"
    target_port = base.port or (443 if secure else 80)
    path_and_query = upstream_url("", path, websocket.scope["query_string"])
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
            origin=websocket.headers.get("origin"),  # type: ignore[arg-type]  # websockets' Origin is a str
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
            _unavailable(service),
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
                await upstream.close(code=_UNSENDABLE_CLOSE.get(code, code), reason=message.get("reason") or "")  # type: ignore[arg-type]
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
