"""Readiness of the services behind the gateway, and of the gateway's own Redis."""

import asyncio
import time

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.config import SERVICES, GatewaySettings


async def service_readiness(*, client: aiohttp.ClientSession, settings: GatewaySettings, service: str) -> str:
    """ "ok", or why the service is not ready."""
    try:
        async with client.get(
            f"{settings.service_url(service)}/readyz",
            headers={"Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(
                total=settings.health_timeout, connect=min(settings.connect_timeout, settings.health_timeout)
            ),
        ) as response:
            if response.status == 200:
                return "ok"
            reason = f"not ready: status {response.status}"
            try:
                checks = (await response.json(content_type=None)).get("checks", {})
            except (ValueError, AttributeError, aiohttp.ClientError):
                checks = {}
    except aiohttp.ClientConnectorError:
        return "unreachable: connection refused"
    except TimeoutError:
        return f"timeout after {settings.health_timeout:g} s"
    except aiohttp.ClientError as error:
        return f"unreachable: {type(error).__name__}"
    failing = [name for name, state in checks.items() if state != "ok"] if isinstance(checks, dict) else []
    return f"{reason} ({', '.join(failing)} failing)" if failing else reason


async def services_readiness(*, client: aiohttp.ClientSession, settings: GatewaySettings) -> dict[str, str]:
    states = await asyncio.gather(
        *(service_readiness(client=client, settings=settings, service=service) for service in SERVICES)
    )
    return dict(zip(SERVICES, states, strict=True))


async def redis_readiness(*, redis: Redis, timeout: float) -> str:
    try:
        async with asyncio.timeout(timeout):
            await redis.ping()
    except TimeoutError:
        return "timeout"
    except (RedisError, OSError) as error:
        return f"unreachable: {type(error).__name__}"
    return "ok"


class ServicesReadiness:
    """The services' readiness for `/healthz`, asked at most once per `health_cache_seconds`.

    `/healthz` is public; asked afresh each time, every request would cost five requests to the
    services (an amplifier for anyone flooding it), and 200 concurrent ones timed out waiting on
    each other and answered 503 while every service was fine. Concurrent callers share the one
    check in flight, and its answer is reused for a moment.
    """

    def __init__(self, *, client: aiohttp.ClientSession, settings: GatewaySettings) -> None:
        self._client = client
        self._settings = settings
        self._states: dict[str, str] | None = None
        self._checked_at = 0.0
        self._in_flight: asyncio.Task[dict[str, str]] | None = None

    async def states(self) -> dict[str, str]:
        if self._states is not None and time.monotonic() - self._checked_at < self._settings.health_cache_seconds:
            return self._states
        if self._in_flight is None:
            self._in_flight = asyncio.create_task(self._check())
        return await asyncio.shield(self._in_flight)

    async def _check(self) -> dict[str, str]:
        try:
            states = await services_readiness(client=self._client, settings=self._settings)
            self._states, self._checked_at = states, time.monotonic()
            return states
        finally:
            self._in_flight = None
