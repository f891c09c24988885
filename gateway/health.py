"""Readiness of the services behind the gateway, and of the gateway's own Redis."""

import asyncio

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
