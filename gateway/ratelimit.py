"""Rate limits per client IP and per user, and the revoked-token check, in one Redis round trip.

Every request through the gateway needs its per-IP window (plus the login or signup one),
an authenticated request also its per-user window and the `revoked-jti:<jti>` key that
identity writes on logout. They are decided by one Lua script (one EVALSHA), so the hot path
costs one round trip to Redis, not three, and the decision is atomic: a request is counted
in every window or in none (a refused request spends nothing, so a client that backs off is
served again as soon as its windows allow).

Algorithm: the sliding-window counter (two fixed windows, the previous one weighted by how
much of it still overlaps the sliding window), as Cloudflare and nginx-style limiters use;
it never lets more than the limit through in any window-long span, up to rounding, and costs
two small keys per identity.

When Redis is down: general traffic fails open (an error `RATE LIMITER DOWN` is logged at most
every 10 s, `/readyz` reports 503), because refusing every request would turn a cache outage
into a platform outage; login and signup fall back to the same algorithm in process memory,
so they are never unlimited. The revocation check also fails open (documented in
docs/gateway.md): access tokens live minutes, and the services check the key again.
After a Redis error the gateway stops asking it for `OUTAGE_BACKOFF` seconds, so an outage
does not add a connect attempt to every request.
"""

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.config import GatewaySettings
from gateway.errors import GatewayError

logger = logging.getLogger(__name__)

_LOUD_LOG_INTERVAL = 10.0
OUTAGE_BACKOFF = 1.0

# KEYS: per limit i, its current and previous window keys; then optionally the revoked-jti key.
# ARGV: n, then per limit its amount and its window in seconds, then per limit the weight of
# the previous window (1 - the elapsed share of the current one).
# Returns {index of the first limit that refuses (0: none), its current count, its previous
# count, whether the revoked-jti key exists}.
_ADMIT_LUA = """
local n = tonumber(ARGV[1])
local refused, refused_current, refused_previous = 0, 0, 0
for i = 1, n do
  local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local amount = tonumber(ARGV[2 * i])
  local weight = tonumber(ARGV[1 + 2 * n + i])
  if previous * weight + current + 1 > amount then
    refused, refused_current, refused_previous = i, current, previous
    break
  end
end
if refused == 0 then
  for i = 1, n do
    if redis.call('INCR', KEYS[2 * i - 1]) == 1 then
      redis.call('EXPIRE', KEYS[2 * i - 1], 2 * tonumber(ARGV[2 * i + 1]))
    end
  end
end
local revoked = 0
if #KEYS > 2 * n then
  revoked = redis.call('EXISTS', KEYS[2 * n + 1])
end
return {refused, refused_current, refused_previous, revoked}
"""

REVOKED_KEY_PREFIX = "revoked-jti:"  # written by identity on logout (the shared contract)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    item: RateLimitItem
    # Never unlimited: falls back to the in-process window when Redis is unavailable.
    strict: bool = False

    @property
    def window(self) -> int:
        return self.item.get_expiry()


@dataclass(frozen=True, slots=True)
class Decision:
    # True: the token's jti is revoked; None: unknown (Redis unavailable, failing open).
    revoked: bool | None


def _reset_in(policy: Policy, *, now: float, current: int, previous: int) -> int:
    """Seconds until one more request fits: the weighted previous window decays, or the next window opens."""
    amount, window = policy.item.amount, policy.window
    position = now % window
    if current + 1 <= amount and previous > 0:
        wait = window * (1 - (amount - 1 - current) / previous) - position
    else:
        wait = (window - position) + (window * (1 - (amount - 1) / current) if current else 0)
    return max(1, math.ceil(wait))


def _limited(policy: Policy, reset_in: int) -> GatewayError:
    return GatewayError(
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


class _MemoryWindows:
    """The same sliding-window counter in process memory, for strict policies during an outage."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}

    def admit(self, checks: list[tuple[Policy, str]], now: float) -> tuple[Policy, int, int] | None:
        keys = []
        for policy, identifier in checks:
            index = int(now // policy.window)
            current = self._counts.get((policy.name, identifier, index), 0)
            previous = self._counts.get((policy.name, identifier, index - 1), 0)
            weight = 1 - (now % policy.window) / policy.window
            if previous * weight + current + 1 > policy.item.amount:
                return policy, current, previous
            keys.append((policy.name, identifier, index))
        for key in keys:
            self._counts[key] = self._counts.get(key, 0) + 1
        self._forget_old(now, checks)
        return None

    def _forget_old(self, now: float, checks: list[tuple[Policy, str]]) -> None:
        if len(self._counts) < 10_000:
            return
        horizon = {policy.name: int(now // policy.window) - 1 for policy, _ in checks}
        self._counts = {key: count for key, count in self._counts.items() if key[2] >= horizon.get(key[0], key[2])}


class RateLimiter:
    def __init__(self, *, settings: GatewaySettings, redis: Redis) -> None:
        self.enabled = settings.rate_limit_enabled
        self.per_ip = Policy("ip", parse(settings.rate_limit_ip))
        self.per_user = Policy("user", parse(settings.rate_limit_user))
        self.login = Policy("login", parse(settings.rate_limit_login), strict=True)
        self.signup = Policy("signup", parse(settings.rate_limit_signup), strict=True)
        self._prefix = f"{settings.redis_key_prefix}:rl"
        self._redis = redis
        self._script = redis.register_script(_ADMIT_LUA)
        self._memory = _MemoryWindows()
        self._last_outage_log = float("-inf")
        self._redis_down_until = float("-inf")

    def policies_for(self, *, method: str, path: str) -> list[Policy]:
        """The per-IP policies of a request, on its normalized path (gateway/paths.py)."""
        policies = [self.per_ip]
        bare = path.rstrip("/")
        if method == "POST" and bare == "/api/auth/token":
            policies.insert(0, self.login)
        elif method == "POST" and bare == "/api/tenants":
            policies.insert(0, self.signup)
        return policies

    async def admit(self, checks: list[tuple[Policy, str]], *, jti: str | None = None) -> Decision:
        """Count the request in each (policy, identifier) window, or refuse it with 429 if one is full.

        With `jti`, also says whether that token was revoked, in the same round trip.
        """
        if not self.enabled:
            checks = []
        if not checks and jti is None:
            return Decision(revoked=False)
        now = time.time()
        if time.monotonic() >= self._redis_down_until:
            try:
                refused, current, previous, revoked = await self._script(
                    keys=self._keys(checks, now, jti), args=self._args(checks, now)
                )
            except (RedisError, OSError):
                self._redis_down_until = time.monotonic() + OUTAGE_BACKOFF
            else:
                if refused:
                    policy = checks[refused - 1][0]
                    raise _limited(policy, _reset_in(policy, now=now, current=current, previous=previous))
                return Decision(revoked=bool(revoked))
        return self._admit_without_redis(checks, now)

    def _keys(self, checks: list[tuple[Policy, str]], now: float, jti: str | None) -> list[str]:
        keys = []
        for policy, identifier in checks:
            index = int(now // policy.window)
            keys += [
                f"{self._prefix}:{policy.name}:{identifier}:{index}",
                f"{self._prefix}:{policy.name}:{identifier}:{index - 1}",
            ]
        if jti is not None:
            keys.append(REVOKED_KEY_PREFIX + jti)
        return keys

    @staticmethod
    def _args(checks: list[tuple[Policy, str]], now: float) -> list[object]:
        args: list[object] = [len(checks)]
        for policy, _ in checks:
            args += [policy.item.amount, policy.window]
        args += [f"{1 - (now % policy.window) / policy.window:.6f}" for policy, _ in checks]
        return args

    def _admit_without_redis(self, checks: list[tuple[Policy, str]], now: float) -> Decision:
        strict = [(policy, identifier) for policy, identifier in checks if policy.strict]
        self._log_outage(strict=bool(strict))
        refused = self._memory.admit(strict, now) if strict else None
        if refused is not None:
            policy, current, previous = refused
            raise _limited(policy, _reset_in(policy, now=now, current=current, previous=previous))
        return Decision(revoked=None)

    def _log_outage(self, *, strict: bool) -> None:
        now = time.monotonic()
        if now - self._last_outage_log < _LOUD_LOG_INTERVAL:
            return
        self._last_outage_log = now
        logger.error(
            "RATE LIMITER DOWN: Redis unreachable; general traffic is NOT rate limited (fail open), "
            "login and signup are limited in-process only%s, revoked tokens are not detected",
            "" if not strict else " (this request was one)",
        )
