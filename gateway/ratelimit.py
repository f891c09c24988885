"""Rate limits per client IP and per user, and the revoked-token check, in one Redis round trip.

Every request through the gateway needs its per-IP window (plus the login, signup or slug
availability one),
an authenticated request also its per-user window and the `revoked-jti:<jti>` key that
identity writes on logout. They are decided by one Lua script (one EVALSHA), so the hot path
costs one round trip to Redis (on gateway/redis_pipe.py's pipelined connection), not three,
and the decision is atomic: a request is counted in every window or in none (a refused
request spends nothing, so a client that backs off is served again as soon as its windows
allow).

Algorithm: the moving window (a log of the last `limit` request times per identity, as the
`limits` library keeps it): exact, so never more than the limit in any window-long span, and
`Retry-After` is when the oldest of them leaves the window.

When Redis is down: general traffic fails open (an error `RATE LIMITER DOWN` is logged at most
every 10 s, `/readyz` reports 503), because refusing every request would turn a cache outage
into a platform outage; login, signup and availability fall back to the same algorithm in process memory,
so they are never unlimited. The revocation check also fails open (documented in
docs/gateway.md): access tokens live minutes, and the services check the key again.
After a Redis error the gateway stops asking it for `OUTAGE_BACKOFF` seconds, so an outage
does not add a connect attempt to every request.
"""

import hashlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass

from limits import RateLimitItem, parse

from gateway.config import GatewaySettings
from gateway.errors import GatewayError
from gateway.redis_pipe import RedisPipe, RedisReplyError
from gateway.visitors import VisitorSalts

logger = logging.getLogger(__name__)

_LOUD_LOG_INTERVAL = 10.0
OUTAGE_BACKOFF = 1.0

# KEYS: one list per limit (request times, newest first), then optionally the revoked-jti key.
# ARGV: n, now, then per limit its amount and its window in seconds.
# Returns {index of the first limit that refuses (0: none), the time of the oldest request in its
# window (a string: Lua numbers come back as integers), whether the revoked-jti key exists}.
_ADMIT_LUA = """
local n = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
for i = 1, n do
  local amount = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  local oldest = redis.call('LINDEX', KEYS[i], amount - 1)
  if oldest and tonumber(oldest) > now - window then
    local revoked = 0
    if #KEYS > n then revoked = redis.call('EXISTS', KEYS[n + 1]) end
    return {i, oldest, revoked}
  end
end
for i = 1, n do
  local amount = tonumber(ARGV[1 + 2 * i])
  redis.call('LPUSH', KEYS[i], ARGV[2])
  redis.call('LTRIM', KEYS[i], 0, amount - 1)
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2 + 2 * i]))
end
local revoked = 0
if #KEYS > n then revoked = redis.call('EXISTS', KEYS[n + 1]) end
return {0, '0', revoked}
"""

# The API sign-in and the form sign-in spend the same budget (issue 8, item 6).
_LOGIN_PATHS = frozenset({"/api/auth/token", "/login"})
# So do the API signup and the apex's signup form.
_SIGNUP_PATHS = frozenset({"/api/tenants", "/signup"})
# The signup form asks as the person types; one limit of its own, so probing every name is slow.
_AVAILABILITY_PATH = "/api/tenants/availability"

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


def _pseudonym(address: str, salt: str | None) -> str:
    """A client address as a Redis key may hold it: keyed BLAKE2b with the day's salt (a window's
    keys change at midnight UTC, which resets it once a day)."""
    if salt is None:
        return address
    return hashlib.blake2b(address.encode(), key=salt.encode()[:64], digest_size=16).hexdigest()


def _reset_in(policy: Policy, *, now: float, oldest: float) -> int:
    """Seconds until the oldest request in the full window leaves it."""
    return max(1, math.ceil(oldest + policy.window - now))


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
    """The same moving window in process memory, for strict policies during an outage."""

    def __init__(self) -> None:
        self._logs: dict[tuple[str, str], deque[float]] = {}

    def admit(self, checks: list[tuple[Policy, str]], now: float) -> tuple[Policy, float] | None:
        for policy, identifier in checks:
            log = self._logs.get((policy.name, identifier))
            if log is not None and len(log) >= policy.item.amount and log[-1] > now - policy.window:
                return policy, log[-1]
        for policy, identifier in checks:
            log = self._logs.setdefault((policy.name, identifier), deque(maxlen=policy.item.amount))
            log.appendleft(now)
        if len(self._logs) > 10_000:  # forget identities whose windows are empty
            self._logs = {
                key: log for key, log in self._logs.items() if log and log[0] > now - max(p.window for p, _ in checks)
            }
        return None


class RateLimiter:
    def __init__(self, *, settings: GatewaySettings, redis: RedisPipe, salts: VisitorSalts | None = None) -> None:
        self.enabled = settings.rate_limit_enabled
        # Per-IP windows are keyed by a pseudonym of the address (the day's visitor salt), so no
        # Redis key holds a raw IP (issue 11); without salts (a test), by the address itself.
        self._salts = salts
        self.per_ip = Policy("ip", parse(settings.rate_limit_ip))
        self.per_user = Policy("user", parse(settings.rate_limit_user))
        self.login = Policy("login", parse(settings.rate_limit_login), strict=True)
        self.signup = Policy("signup", parse(settings.rate_limit_signup), strict=True)
        self.availability = Policy("availability", parse(settings.rate_limit_availability), strict=True)
        self._prefix = f"{settings.redis_key_prefix}:rl"
        self._redis = redis
        self._script = redis.script(_ADMIT_LUA)
        self._memory = _MemoryWindows()
        self._last_outage_log = float("-inf")
        self._redis_down_until = float("-inf")

    def policies_for(self, *, method: str, path: str) -> list[Policy]:
        """The per-IP policies of a request, on its normalized path (gateway/paths.py)."""
        policies = [self.per_ip]
        bare = path.rstrip("/")
        if method == "POST" and bare in _LOGIN_PATHS:
            policies.insert(0, self.login)
        elif method == "POST" and bare in _SIGNUP_PATHS:
            policies.insert(0, self.signup)
        elif bare == _AVAILABILITY_PATH:
            policies.insert(0, self.availability)
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
                keys = self._keys(checks, jti, salt=await self._salts.salt() if self._salts and checks else None)
                refused, oldest, revoked = await self._script(keys=keys, args=self._args(checks, now))
            except (RedisReplyError, OSError):  # RedisPipeError is an OSError
                self._redis_down_until = time.monotonic() + OUTAGE_BACKOFF
            else:
                if refused:
                    policy = checks[refused - 1][0]
                    raise _limited(policy, _reset_in(policy, now=now, oldest=float(oldest)))
                return Decision(revoked=bool(revoked))
        return self._admit_without_redis(checks, now)

    def _keys(self, checks: list[tuple[Policy, str]], jti: str | None, *, salt: str | None = None) -> list[str]:
        keys = [
            f"{self._prefix}:{policy.name}:{identifier if policy is self.per_user else _pseudonym(identifier, salt)}"
            for policy, identifier in checks
        ]
        if jti is not None:
            keys.append(REVOKED_KEY_PREFIX + jti)
        return keys

    @staticmethod
    def _args(checks: list[tuple[Policy, str]], now: float) -> list[object]:
        args: list[object] = [len(checks), f"{now:.6f}"]
        for policy, _ in checks:
            args += [policy.item.amount, policy.window]
        return args

    def _admit_without_redis(self, checks: list[tuple[Policy, str]], now: float) -> Decision:
        strict = [(policy, identifier) for policy, identifier in checks if policy.strict]
        self._log_outage(strict=bool(strict))
        refused = self._memory.admit(strict, now) if strict else None
        if refused is not None:
            policy, oldest = refused
            raise _limited(policy, _reset_in(policy, now=now, oldest=oldest))
        return Decision(revoked=None)

    def _log_outage(self, *, strict: bool) -> None:
        now = time.monotonic()
        if now - self._last_outage_log < _LOUD_LOG_INTERVAL:
            return
        self._last_outage_log = now
        logger.error(
            "RATE LIMITER DOWN: Redis unreachable; general traffic is NOT rate limited (fail open), "
            "login, signup and slug availability are limited in-process only%s, revoked tokens are not detected",
            "" if not strict else " (this request was one)",
        )
