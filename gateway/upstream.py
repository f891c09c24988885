"""The HTTP/1.1 client of the proxy path: pooled keep-alive connections to the services, one
write per request, responses parsed by httptools (llhttp, the parser uvicorn uses), bodies
streamed back with flow control.

Why not aiohttp here: at 64 connections aiohttp's request machinery (request and response
objects, header multidicts, timers, tracing hooks) was a third of the gateway's CPU per
request (docs/benchmarks.md). The proxy needs none of it: the request is already complete
(body buffered, headers decided), and the answer is relayed as it comes. aiohttp stays for
everything else the gateway fetches (JWKS, tenant lookups, health, OpenAPI documents) and for
HEAD requests, whose answers carry a length but no body (llhttp cannot be told so).

Errors: `UpstreamConnectError` (nothing listens: 503), `UpstreamTimeout` (504),
`UpstreamBroken` (a malformed or cut answer: 502). A pooled connection that the service had
closed is retried once for idempotent methods, before any byte of an answer arrived.
"""

import asyncio
import time
from collections import deque

import httptools

_IDLE_MAX = 128
_BUFFER_HIGH = 1 << 20  # pause reading from the service above this much unread body


class UpstreamError(Exception):
    pass


class UpstreamConnectError(UpstreamError):
    pass


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamBroken(UpstreamError):
    pass


class _StaleConnection(UpstreamBroken):
    """A reused connection closed before any answer: the service never read the request."""


class _Connection(asyncio.Protocol):
    def __init__(self, pool_key: tuple[str, int]) -> None:
        self.key = pool_key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.lost = False
        self.reused = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.framed = False
        self.keep_alive = False
        self.headers_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.error: UpstreamError | None = None
        self.readable = asyncio.Event()
        self.received_any = False
        self.paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(UpstreamBroken(f"malformed answer: {error}"))
            self._close()
        if self.buffered > _BUFFER_HIGH and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.complete:
            return
        if self.headers_done.done() and not self.framed:
            self.complete = True  # a body delimited by the end of the connection
            self.readable.set()
            return
        if not self.received_any and self.reused:
            self._fail(_StaleConnection("the pooled connection was closed by the service"))
        else:
            self._fail(UpstreamBroken(f"the service closed the connection: {exc or 'EOF'}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        # Asked now: once the message is complete, llhttp has reset what it knew.
        self.keep_alive = self.parser.should_keep_alive()
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
                self.framed = True
        if not self.headers_done.done():
            self.headers_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        self.readable.set()

    def on_message_complete(self) -> None:
        self.complete = True
        if not self.headers_done.done():
            self.headers_done.set_result(None)
        self.readable.set()

    # helpers
    def _fail(self, error: UpstreamError) -> None:
        self.error = error
        if not self.headers_done.done():
            self.headers_done.set_exception(error)
            self.headers_done.exception()  # retrieved: a waiter may be gone already
        self.readable.set()

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None and not self.lost:
            self.paused = False
            self.transport.resume_reading()
        return data


class UpstreamResponse:
    def __init__(self, pool: "UpstreamPool", connection: _Connection, read_timeout: float) -> None:
        self._pool = pool
        self._connection = connection
        self._read_timeout = read_timeout
        self.status = connection.status
        self.headers = connection.headers
        self._released = False

    @property
    def complete(self) -> bool:
        return self._connection.complete and not self._connection.chunks

    def body_if_complete(self) -> bytes | None:
        """The whole body when it has all arrived already (most API answers), else None."""
        connection = self._connection
        if connection.complete and connection.error is None:
            return connection.take()
        return None

    async def chunk(self) -> bytes:
        """The next piece of the body; b"" at its end. UpstreamError if the service fails."""
        connection = self._connection
        while True:
            if connection.chunks:
                return connection.take()
            if connection.error is not None:
                raise connection.error
            if connection.complete:
                return b""
            connection.readable.clear()
            try:
                async with asyncio.timeout(self._read_timeout):
                    await connection.readable.wait()
            except TimeoutError:
                raise UpstreamTimeout("the service stopped sending its answer") from None

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self._pool.slot_release()
        connection = self._connection
        reusable = connection.complete and connection.error is None and not connection.lost and not connection.chunks
        if reusable and connection.keep_alive:
            self._pool.give_back(connection)
            return
        connection._close()


class UpstreamPool:
    def __init__(
        self, *, connect_timeout: float, read_timeout: float, max_connections: int = 200, idle_timeout: float = 1.5
    ) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle_timeout = idle_timeout
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}
        # Requests in flight at once, over all services (GATEWAY_MAX_CONNECTIONS): beyond it a
        # request waits for a slot, within its read timeout, rather than opening yet another
        # connection to a service that is already slow.
        self._slots = asyncio.Semaphore(max_connections)

    async def request(
        self, *, host: str, port: int, method: str, head: bytes, body: bytes | None, retry: bool
    ) -> UpstreamResponse:
        """Send `head` (request line and headers, ending in a blank line) and `body`; the answer's head.

        The caller must `release()` the answer; until then it holds one of the pool's slots."""
        try:
            async with asyncio.timeout(self._read_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise UpstreamTimeout(f"no free connection within {self._read_timeout:g} s") from None
        try:
            return await self._request(host=host, port=port, head=head, body=body, retry=retry)
        except BaseException:
            self._slots.release()
            raise

    async def _request(self, *, host: str, port: int, head: bytes, body: bytes | None, retry: bool) -> UpstreamResponse:
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            connection = self._idle_get((host, port)) or await self._connect(host, port)
            connection._reset()
            assert connection.transport is not None
            connection.transport.write(head + body if body else head)
            try:
                async with asyncio.timeout(self._read_timeout):
                    await connection.headers_done
            except TimeoutError:
                connection._close()
                raise UpstreamTimeout(f"no answer within {self._read_timeout:g} s") from None
            except _StaleConnection:
                if attempt + 1 < attempts:
                    continue
                raise
            except BaseException:
                connection._close()  # cancelled mid-request: its answer belongs to no one
                raise
            return UpstreamResponse(self, connection, self._read_timeout)
        raise AssertionError("unreachable")

    def slot_release(self) -> None:
        self._slots.release()

    def _idle_get(self, key: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be closing
            if connection.lost or connection.transport is None or connection.transport.is_closing():
                continue
            if now - connection.idle_since > self._idle_timeout:
                connection._close()
                continue
            connection.reused = True
            return connection
        return None

    async def _connect(self, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(lambda: _Connection((host, port)), host, port)
        except TimeoutError:
            raise UpstreamConnectError(f"no connection within {self._connect_timeout:g} s") from None
        except OSError as error:
            raise UpstreamConnectError(str(error)) from None
        return connection

    def give_back(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.key, deque())
        if len(idle) >= _IDLE_MAX:
            connection._close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    def close(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop()._close()
