"""The gateway's hot-path Redis connection (gateway/redis_pipe.py): replies matched in order under
concurrency, and a silent server failing the waiting commands within a timeout and a half."""

import asyncio
import time

import pytest

from gateway.redis_pipe import RedisPipe, RedisPipeError
from tests.helpers import REDIS_URL


async def test_concurrent_commands_get_their_own_replies() -> None:
    pipe = RedisPipe(REDIS_URL)
    try:
        await pipe.execute("SET", "redis-pipe-test", "x")
        replies = await asyncio.gather(*(pipe.execute("ECHO", f"reply-{n}") for n in range(500)))
        assert replies == [f"reply-{n}".encode() for n in range(500)]
        assert await pipe.execute("GET", "redis-pipe-test") == b"x"
    finally:
        await pipe.execute("DEL", "redis-pipe-test")
        await pipe.aclose()


async def test_a_silent_server_fails_the_waiting_commands_and_the_next_call_reconnects() -> None:
    connections = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(4096):
            pass  # reads every command, answers none

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pipe = RedisPipe(f"redis://127.0.0.1:{port}/0", timeout=0.2, connect_timeout=0.5)
    try:
        started = time.monotonic()
        results = await asyncio.gather(*(pipe.execute("GET", f"k{n}") for n in range(3)), return_exceptions=True)
        waited = time.monotonic() - started
        assert all(isinstance(result, RedisPipeError) for result in results), results
        assert "did not answer within 0.2 s" in str(results[0])
        assert 0.2 <= waited < 0.45, waited
        with pytest.raises(RedisPipeError):
            await pipe.execute("GET", "again")
        assert len(connections) == 2  # the timed-out connection was closed; the next call made a new one
    finally:
        await pipe.aclose()
        server.close()
        await server.wait_closed()


async def test_a_connection_never_idle_for_longer_than_the_timeout_never_times_out() -> None:
    """The watchdog times the oldest waiting command from the reply before it, not from the first
    command of a busy stretch: commands always waiting, each answered at once, for 3 timeouts."""
    pipe = RedisPipe(REDIS_URL, timeout=0.3)

    async def keep_busy() -> int:
        answered = 0
        deadline = time.monotonic() + 0.9
        while time.monotonic() < deadline:
            assert await pipe.execute("PING") == "PONG"
            answered += 1
        return answered

    try:
        assert sum(await asyncio.gather(*(keep_busy() for _ in range(20)))) > 100
    finally:
        await pipe.aclose()
