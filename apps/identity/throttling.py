"""Failed-login throttling per account and per client IP, counted in Redis.

Fixed windows: the first failure starts a window of LOGIN_THROTTLE_WINDOW seconds; once an
account (or an IP) has failed LOGIN_FAILURES_PER_ACCOUNT (or _PER_IP) times in it, every
attempt is refused until the window ends, whether or not the password is right, so a
guesser learns nothing from the answer.
"""

import functools
import hashlib
import logging
from dataclasses import dataclass

import redis
from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThrottleState:
    retry_after: int  # seconds; 0 means allowed


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _keys(*, email: str, ip: str) -> tuple[str, str]:
    prefix = settings.LOGIN_THROTTLE_PREFIX
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"{prefix}:account:{account}", f"{prefix}:ip:{ip}"


def login_throttle_check(*, email: str, ip: str) -> ThrottleState:
    client = _client(settings.LOGIN_THROTTLE_REDIS_URL)
    account_key, ip_key = _keys(email=email, ip=ip)
    try:
        with client.pipeline(transaction=False) as pipe:
            pipe.get(account_key).ttl(account_key).get(ip_key).ttl(ip_key)
            account_count, account_ttl, ip_count, ip_ttl = pipe.execute()
    except redis.RedisError:
        # Fail open: with Redis down, sign-in still works (Argon2 and the gateway's limits still slow guessing).
        logger.warning("login throttle unavailable; allowing the attempt", exc_info=True)
        return ThrottleState(retry_after=0)
    waits = []
    if account_count is not None and int(account_count) >= settings.LOGIN_FAILURES_PER_ACCOUNT:
        waits.append(max(int(account_ttl), 1))
    if ip_count is not None and int(ip_count) >= settings.LOGIN_FAILURES_PER_IP:
        waits.append(max(int(ip_ttl), 1))
    return ThrottleState(retry_after=max(waits, default=0))


def login_failure_record(*, email: str, ip: str) -> None:
    client = _client(settings.LOGIN_THROTTLE_REDIS_URL)
    window = settings.LOGIN_THROTTLE_WINDOW
    try:
        with client.pipeline(transaction=True) as pipe:
            for key in _keys(email=email, ip=ip):
                pipe.set(key, 0, ex=window, nx=True).incr(key)
            pipe.execute()
    except redis.RedisError:
        logger.warning("login throttle unavailable; failure not counted", exc_info=True)


def login_success_record(*, email: str) -> None:
    """A right password clears the account's count (not the IP's: one success must not reset a spray)."""
    account_key, _ = _keys(email=email, ip="-")
    try:
        _client(settings.LOGIN_THROTTLE_REDIS_URL).delete(account_key)
    except redis.RedisError:
        logger.warning("login throttle unavailable; count not cleared", exc_info=True)
