"""Which tenant a host belongs to: `<slug>.<BASE_DOMAIN>`, resolved through tenancy.

Lookups are cached twice: in Redis (shared by every gateway process, TTL
`tenant_cache_ttl`, shorter for tenants that are about to change) and in-process for a
few seconds so a burst of requests costs no round trip at all. `invalidate_tenant(slug)`
drops both; the tenant-event subscriber calls it.
"""

import asyncio
import json
import logging
import re
import time
import weakref
from dataclasses import asdict, dataclass
from functools import lru_cache

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.config import GatewaySettings
from gateway.errors import GatewayError

logger = logging.getLogger(__name__)

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_NOT_FOUND = "__not_found__"
_LOCAL_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    slug: str
    name: str
    status: str
    isolation: str | None = None
    failure_reason: str | None = None


def tenant_slug_valid(slug: str) -> bool:
    return bool(_SLUG.fullmatch(slug))


def host_tenant_slug(host: str, *, base_domain: str) -> str | None:
    """The subdomain of a tenant host, or None on the apex (or any host outside BASE_DOMAIN).

    Raises tenant_not_found for a host under BASE_DOMAIN that cannot be a tenant slug.
    """
    slug, hostname = _host_slug(host, base_domain)
    if slug is _INVALID:
        raise GatewayError(404, "tenant_not_found", f"No organization lives at {hostname}")
    return slug


_INVALID = "\x00invalid"


@lru_cache(maxsize=4096)  # on every request; hosts repeat
def _host_slug(host: str, base_domain: str) -> tuple[str | None, str]:
    hostname = host.strip().lower().rstrip(".")
    if hostname.startswith("["):  # an IPv6 literal is never a tenant
        return None, hostname
    hostname = hostname.rsplit(":", 1)[0] if ":" in hostname else hostname
    base = base_domain.lower().rstrip(".")
    if hostname == base or not hostname.endswith("." + base):
        return None, hostname
    slug = hostname.removesuffix("." + base)
    return (slug if tenant_slug_valid(slug) else _INVALID), hostname


_directories: "weakref.WeakSet[TenantDirectory]" = weakref.WeakSet()


class TenantDirectory:
    def __init__(self, *, settings: GatewaySettings, client: aiohttp.ClientSession, redis: Redis) -> None:
        self._settings = settings
        self._client = client
        self._redis = redis
        self._local: dict[str, tuple[float, Tenant | None]] = {}
        self._inflight: dict[tuple[str, int], asyncio.Future[Tenant | None]] = {}
        # Bumped by every invalidation: a lookup that was in flight across one must not write
        # what it read (possibly the old state) back into the caches the invalidation just emptied.
        self._generation = 0
        # Its Redis and HTTP clients belong to the loop that created it.
        self.loop = asyncio.get_running_loop()
        _directories.add(self)

    def _redis_key(self, slug: str) -> str:
        return f"{self._settings.redis_key_prefix}:tenant:{slug}"

    async def tenant_get(self, *, slug: str) -> Tenant:
        """The tenant named by `slug`, whatever its status; GatewayError if there is none."""
        tenant = await self._lookup(slug)
        if tenant is None:
            raise GatewayError(404, "tenant_not_found", f"No organization named {slug!r}")
        return tenant

    async def _lookup(self, slug: str) -> Tenant | None:
        now = time.monotonic()
        cached = self._local.get(slug)
        if cached and cached[0] > now:
            return cached[1]
        # One lookup per slug at a time: when the in-process entry expires under load, the
        # concurrent requests for that tenant wait for one Redis (or tenancy) round trip instead
        # of each making its own. Keyed by generation, so a request that comes after an
        # invalidation never joins a lookup that started before it.
        key = (slug, self._generation)
        shared = self._inflight.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self._lookup_once(slug, now))
            self._inflight[key] = shared
            shared.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(shared)

    async def _lookup_once(self, slug: str, now: float) -> Tenant | None:
        generation = self._generation
        found, tenant = await self._from_redis(slug)
        if not found:
            tenant = await self._from_tenancy(slug)
            if generation == self._generation:
                await self._to_redis(slug, tenant)
        if self._settings.tenant_local_ttl and generation == self._generation:
            if len(self._local) >= _LOCAL_MAX_ENTRIES:  # random slugs must not grow it without bound
                self._local.clear()
            self._local[slug] = (now + self._local_ttl(tenant), tenant)
        return tenant

    def _local_ttl(self, tenant: Tenant | None) -> float:
        return min(self._settings.tenant_local_ttl, self._redis_ttl(tenant))

    def _redis_ttl(self, tenant: Tenant | None) -> int:
        if tenant is not None and tenant.status == "active":
            return self._settings.tenant_cache_ttl
        return self._settings.tenant_transient_ttl

    async def _from_redis(self, slug: str) -> tuple[bool, Tenant | None]:
        try:
            raw = await self._redis.get(self._redis_key(slug))
        except (RedisError, OSError):
            logger.warning("tenant cache unavailable, asking tenancy directly", exc_info=True)
            return False, None
        if raw is None:
            return False, None
        if raw in (_NOT_FOUND, _NOT_FOUND.encode()):
            return True, None
        return True, Tenant(**json.loads(raw))

    async def _to_redis(self, slug: str, tenant: Tenant | None) -> None:
        value = _NOT_FOUND if tenant is None else json.dumps(asdict(tenant))
        try:
            await self._redis.set(self._redis_key(slug), value, ex=self._redis_ttl(tenant))
        except (RedisError, OSError):
            logger.warning("tenant cache unavailable, not caching %s", slug, exc_info=True)

    async def _from_tenancy(self, slug: str) -> Tenant | None:
        url = f"{self._settings.service_url('tenancy')}/api/tenants/{slug}"
        try:
            async with self._client.get(
                url,
                headers={"Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self._settings.upstream_timeout),
            ) as response:
                if response.status == 404:
                    return None
                if response.status != 200:
                    raise GatewayError(
                        503, "service_unavailable", f"tenancy answered {response.status}", service="tenancy"
                    )
                body = await response.json(content_type=None)
        except TimeoutError:
            raise GatewayError(504, "gateway_timeout", "tenancy did not answer in time", service="tenancy") from None
        except (aiohttp.ClientError, ValueError):
            raise GatewayError(503, "service_unavailable", "tenancy is unavailable", service="tenancy") from None
        return Tenant(
            id=str(body["id"]),
            slug=body["slug"],
            name=body.get("name", ""),
            status=body["status"],
            isolation=body.get("isolation"),
            failure_reason=body.get("failure_reason"),
        )

    async def invalidate(self, slug: str) -> None:
        self._generation += 1
        self._local.pop(slug, None)
        try:
            await self._redis.delete(self._redis_key(slug))
        except (RedisError, OSError):
            logger.error("could not drop tenant %s from the Redis cache", slug, exc_info=True)

    def local_cache_clear(self) -> None:
        """Forget every in-process entry (events may have been missed while the broker was away)."""
        self._generation += 1
        self._local.clear()


async def invalidate_tenant(slug: str) -> None:
    """Forget what this process (and the shared Redis cache) knows about `slug`."""
    loop = asyncio.get_running_loop()
    for directory in list(_directories):
        if directory.loop is loop:
            await directory.invalidate(slug)


def tenant_require_active(tenant: Tenant, *, retry_after: int) -> None:
    if tenant.status == "active":
        return
    if tenant.status in ("pending", "provisioning"):
        raise GatewayError(
            503,
            "tenant_provisioning",
            f"{tenant.slug} is still being set up; try again shortly",
            headers={"Retry-After": str(retry_after)},
            tenant_status=tenant.status,
        )
    raise GatewayError(503, "tenant_unavailable", f"{tenant.slug} is not available", tenant_status=tenant.status)
