"""Sign-in throttling per account and per client IP, counted in Redis.

Fixed windows: the first attempt starts a window of LOGIN_THROTTLE_WINDOW seconds. Every
attempt takes a slot on the account and on the IP *before* the password is looked at, in one
Lua script, so the check and the count cannot interleave: however many wrong passwords arrive
at once, at most LOGIN_FAILURES_PER_ACCOUNT (or _PER_IP) of them are ever evaluated in a window.
A success gives its slots back (the account's count is cleared; the IP's slot is returned, so
one success never resets a spray). Once the slots are gone, every attempt is refused until the
window ends, whether or not the password is right, so a guesser learns nothing from the answer.

The API token endpoint, the sign-in form, the invitation page (an existing account signs in
there) and the admin's sign-in all go through `login_attempt_begin`, so they share one limit.
"""

import functools
import hashlib
import logging
from dataclasses import dataclass

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# KEYS: account key, ip key. ARGV: account limit, ip limit, window seconds.
# Returns {1, 0} when a slot was taken on both, else {0, seconds until the blocking window ends}.
_BEGIN = """
local account = tonumber(redis.call('GET', KEYS[1]) or '0')
local ip = tonumber(redis.call('GET', KEYS[2]) or '0')
local wait = 0
if account >= tonumber(ARGV[1]) then wait = math.max(wait, redis.call('TTL', KEYS[1])) end
if ip >= tonumber(ARGV[2]) then wait = math.max(wait, redis.call('TTL', KEYS[2])) end
if account >= tonumber(ARGV[1]) or ip >= tonumber(ARGV[2]) then
  return {0, math.max(wait, 1)}
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[3]) end
end
return {1, 0}
"""

# KEYS: account key, ip key. A success clears the account and gives the IP its slot back.
_SUCCEED = """
redis.call('DEL', KEYS[1])
local ip = tonumber(redis.call('GET', KEYS[2]) or '0')
if ip > 0 then redis.call('DECR', KEYS[2]) end
return 1
"""


@dataclass(frozen=True)
class ThrottleState:
    retry_after: int  # seconds; 0 means allowed


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _keys(*, email: str, ip: str) -> list[str]:
    prefix = settings.LOGIN_THROTTLE_PREFIX
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return [f"{prefix}:account:{account}", f"{prefix}:ip:{ip}"]


def login_attempt_begin(*, email: str, ip: str) -> ThrottleState:
    """Takes one attempt's slot on the account and the IP, or says how long to wait. Call before checking."""
    client = _client(settings.LOGIN_THROTTLE_REDIS_URL)
    limits = (settings.LOGIN_FAILURES_PER_ACCOUNT, settings.LOGIN_FAILURES_PER_IP, settings.LOGIN_THROTTLE_WINDOW)
    try:
        allowed, wait = client.eval(_BEGIN, 2, *_keys(email=email, ip=ip), *limits)
    except redis.RedisError:
        # Fail open: with Redis down, sign-in still works (Argon2 and the gateway's limits still slow guessing).
        logger.warning("login throttle unavailable; allowing the attempt", exc_info=True)
        return ThrottleState(retry_after=0)
    return ThrottleState(retry_after=0 if int(allowed) else int(wait))


def login_attempt_succeeded(*, email: str, ip: str) -> None:
    """The attempt begun with `login_attempt_begin` had the right password: it does not count as a failure."""
    try:
        _client(settings.LOGIN_THROTTLE_REDIS_URL).eval(_SUCCEED, 2, *_keys(email=email, ip=ip))
    except redis.RedisError:
        logger.warning("login throttle unavailable; count not cleared", exc_info=True)


def verification_mail_slot_take(*, user_id: object) -> bool:
    """At most one verification mail per account every VERIFICATION_MAIL_INTERVAL seconds, however often
    someone asks (resend, or an invitation page opened by anyone holding the link)."""
    key = f"{settings.LOGIN_THROTTLE_PREFIX}:verification-mail:{user_id}"
    try:
        return bool(
            _client(settings.LOGIN_THROTTLE_REDIS_URL).set(key, 1, nx=True, ex=settings.VERIFICATION_MAIL_INTERVAL)
        )
    except redis.RedisError:
        logger.warning("verification mail limit unavailable; sending", exc_info=True)
        return True
