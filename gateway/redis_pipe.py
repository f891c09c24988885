"""A Redis connection for the gateway's hot path: one socket, commands written as they come,
replies matched in order (Redis answers a connection's commands in order, RESP2).

Why not redis-py here: measured on this machine (2 cores), redis-py 8's asyncio client costs
about 300 us of CPU per command at 64 concurrent callers (its pool takes an asyncio lock and
records metrics on every checkout, and checks the socket before each use); coredis 5, about
140 us. The gateway makes exactly one Redis call per request (gateway/ratelimit.py), so that
was most of its budget per request. Many concurrent callers share this one connection, so
their commands travel together (pipelined) without anyone waiting for a lock.

Everything else in the gateway (tenant cache, readiness, tenant events) keeps using redis-py.
Only what the admission script needs is parsed: simple strings, errors, integers, bulk strings
and arrays. A timeout closes the connection (a late reply would be matched to the wrong
caller); the next call reconnects. Replies come in order, so the oldest command waiting is the
only one whose wait needs watching: one watchdog per connection, every half timeout, instead of
a timer per command (a timer's scheduling and cancelling was ~5% of a redirect's CPU), so a
command without its reply fails after between one and one and a half timeouts.
"""

import asyncio
import hashlib
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit


class RedisPipeError(ConnectionError):
    """The connection failed, timed out or was lost; the command's fate is unknown."""


class RedisReplyError(Exception):
    """Redis answered with an error (`-ERR ...`, `-NOSCRIPT ...`)."""


class _Incomplete(Exception):
    pass


def _pack(args: tuple[object, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _parse(buffer: bytearray, start: int) -> tuple[object, int]:
    end = buffer.find(b"\r\n", start)
    if end < 0:
        raise _Incomplete
    kind, line = buffer[start], bytes(buffer[start + 1 : end])
    after = end + 2
    if kind == 0x2B:  # +
        return line.decode(), after
    if kind == 0x2D:  # -
        return RedisReplyError(line.decode(errors="replace")), after
    if kind == 0x3A:  # :
        return int(line), after
    if kind == 0x24:  # $
        length = int(line)
        if length < 0:
            return None, after
        if len(buffer) < after + length + 2:
            raise _Incomplete
        return bytes(buffer[after : after + length]), after + length + 2
    if kind == 0x2A:  # *
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            item, after = _parse(buffer, after)
            items.append(item)
        return items, after
    raise RedisPipeError(f"unexpected reply type {chr(kind)!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.pending: deque[asyncio.Future] = deque()
        # The monotonic time by which the oldest waiting command must have its reply; reset as
        # each reply arrives (the next oldest was sent later, so it gets at least as long).
        self.oldest_deadline = 0.0
        self.watchdog: asyncio.TimerHandle | None = None
        self.buffer = bytearray()
        self.outgoing: list[bytes] = []
        self.flush_scheduled = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes

    def send(self, payload: bytes) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if self.lost or self.transport is None:
            future.set_exception(RedisPipeError("not connected to Redis"))
            return future
        loop = asyncio.get_running_loop()
        if not self.pending:
            self.oldest_deadline = loop.time() + self.timeout
        self.pending.append(future)
        if self.watchdog is None:
            self.watchdog = loop.call_later(self.timeout / 2, self._watch)
        # Commands issued in the same turn of the event loop leave in one write (one syscall).
        self.outgoing.append(payload)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _watch(self) -> None:
        self.watchdog = None
        if self.lost or not self.pending:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self.oldest_deadline:
            self.close(RedisPipeError(f"Redis did not answer within {self.timeout:g} s"))
            return
        self.watchdog = loop.call_later(self.timeout / 2, self._watch)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.outgoing and self.transport is not None and not self.lost:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        position = 0
        while self.pending and position < len(self.buffer):
            try:
                reply, position_after = _parse(self.buffer, position)
            except _Incomplete:
                break
            except (RedisPipeError, ValueError) as error:
                self.close(RedisPipeError(f"unreadable reply from Redis: {error}"))
                return
            position = position_after
            future = self.pending.popleft()
            self.oldest_deadline = asyncio.get_running_loop().time() + self.timeout
            if not future.done():
                if isinstance(reply, RedisReplyError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        del self.buffer[:position]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(RedisPipeError(f"lost the connection to Redis: {exc or 'closed'}"))

    def close(self, error: RedisPipeError) -> None:
        if self.transport is not None:
            self.transport.close()
        self._fail_all(error)

    def _fail_all(self, error: RedisPipeError) -> None:
        self.lost = True
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(error)


class RedisPipe:
    def __init__(self, url: str, *, timeout: float = 0.5, connect_timeout: float = 0.5) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", ""):
            raise ValueError(f"the gateway's hot-path Redis client speaks redis:// only, not {parts.scheme}://")
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._db = int(parts.path.lstrip("/") or 0)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None

    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.lost:
            return protocol
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connect())
        return await asyncio.shield(self._connecting)

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(lambda: _Protocol(self._timeout), self._host, self._port)
                setup: list[tuple[object, ...]] = []
                if self._password is not None:
                    auth = ("AUTH", self._username, self._password) if self._username else ("AUTH", self._password)
                    setup.append(auth)
                if self._db:
                    setup.append(("SELECT", self._db))
                for command in setup:
                    await protocol.send(_pack(command))
        except TimeoutError:
            raise RedisPipeError(f"no connection to Redis within {self._connect_timeout:g} s") from None
        except OSError as error:
            raise RedisPipeError(f"cannot connect to Redis: {error}") from None
        self._protocol = protocol
        return protocol

    async def execute(self, *args: object) -> Any:
        protocol = await self._connected()
        return await protocol.send(_pack(args))

    def script(self, source: str) -> "PipeScript":
        return PipeScript(self, source)

    async def aclose(self) -> None:
        if self._protocol is not None:
            self._protocol.close(RedisPipeError("closed"))
            self._protocol = None


class PipeScript:
    """A Lua script run by EVALSHA, loaded with EVAL when Redis does not know it yet."""

    def __init__(self, pipe: RedisPipe, source: str) -> None:
        self._pipe = pipe
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1

    async def __call__(self, *, keys: list[str], args: list[object]) -> Any:
        try:
            return await self._pipe.execute("EVALSHA", self._sha, len(keys), *keys, *args)
        except RedisReplyError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
            return await self._pipe.execute("EVAL", self._source, len(keys), *keys, *args)
