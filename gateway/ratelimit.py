"""Rate limits (moving window, `limits` on Redis), per client IP and per user.

When Redis is down, general traffic fails open (logged as an error, at most every few
seconds) so an outage of the limiter is not an outage of the platform; login and signup
fall back to an in-process memory window, so they are never unlimited.
"""

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from gateway.config import GatewaySettings
from gateway.errors import GatewayError

logger = logging.getLogger(__name__)

_LOUD_LOG_INTERVAL = 10.0


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    item: RateLimitItem
    # Never unlimited: falls back to the in-process window when Redis is unavailable.
    strict: bool = False


class RateLimiter:
    def __init__(self, *, settings: GatewaySettings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.per_ip = Policy("ip", parse(settings.rate_limit_ip))
        self.per_user = Policy("user", parse(settings.rate_limit_user))
        self.login = Policy("login", parse(settings.rate_limit_login), strict=True)
        self.signup = Policy("signup", parse(settings.rate_limit_signup), strict=True)
        self._storage = RedisStorage(
            f"async+{settings.redis_url}",
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=f"{settings.redis_key_prefix}:rl",
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
        )
        self._shared = MovingWindowRateLimiter(self._storage)
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._last_outage_log = float("-inf")

    def policies_for(self, *, method: str, path: str) -> list[Policy]:
        policies = [self.per_ip]
        normalized = path.rstrip("/")
        if method == "POST" and normalized == "/api/auth/token":
            policies.insert(0, self.login)
        elif method == "POST" and normalized == "/api/tenants":
            policies.insert(0, self.signup)
        return policies

    async def hit(self, policy: Policy, *, identifier: str) -> None:
        """Count one request against `policy` for `identifier`; GatewayError 429 once over."""
        if not self.enabled:
            return
        limiter = self._shared
        try:
            allowed = await limiter.hit(policy.item, policy.name, identifier)
        except (StorageError, RedisError, OSError):
            self._log_outage(policy)
            if not policy.strict:
                return
            limiter = self._local
            allowed = await limiter.hit(policy.item, policy.name, identifier)
        if allowed:
            return
        try:
            stats = await limiter.get_window_stats(policy.item, policy.name, identifier)
            reset_in = max(1, math.ceil(stats.reset_time - time.time()))
        except (StorageError, RedisError, OSError):
            reset_in = policy.item.get_expiry()
        raise GatewayError(
            429,
            "rate_limited",
            f"Too many requests; try again in {reset_in} s",
            headers={
                "Retry-After": str(reset_in),
                "RateLimit-Limit": str(policy.item.amount),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(reset_in),
            },
            limit=policy.name,
        )

    def _log_outage(self, policy: Policy) -> None:
        now = time.monotonic()
        if now - self._last_outage_log < _LOUD_LOG_INTERVAL:
            return
        self._last_outage_log = now
        if policy.strict:
            logger.error("RATE LIMITER DOWN: Redis unreachable; %s limited in-process only", policy.name)
        else:
            logger.error("RATE LIMITER DOWN: Redis unreachable; general traffic is NOT rate limited (fail open)")

    async def aclose(self) -> None:
        # limits' storages own their connection pools; nothing needs closing for correctness.
        return None
