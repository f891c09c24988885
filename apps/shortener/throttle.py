"""Password guesses on a protected link: limited per client and link, and per link.

Every attempt is counted before the password is even checked, atomically (the `limits` moving
window in Redis), so neither a right guess inside a refused window nor a burst of parallel
guesses gets through. The client is a keyed hash of its IP: never the raw IP in Redis.
"""

import functools
import hashlib
import hmac
import math
import time

from django.conf import settings
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from apps.common.exceptions import RateLimited, Unavailable

PER_CLIENT = parse("5/minute")
PER_LINK = parse("30/hour")


@functools.cache
def _limiter() -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(
        storage_from_string(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=1.0)
    )


def client_key(ip: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"shortener-client:{ip}".encode(), hashlib.sha256).hexdigest()[:32]


def password_attempt_admit(code: str, client: str) -> None:
    """Counts one guess at `code`'s password by `client`; raises RateLimited when over a limit."""
    limiter = _limiter()
    checks = ((PER_CLIENT, ("sl-pw-client", code, client)), (PER_LINK, ("sl-pw-link", code)))
    try:
        for limit, identifiers in checks:
            if not limiter.hit(limit, *identifiers):
                reset_at, _ = limiter.get_window_stats(limit, *identifiers)
                raise RateLimited(
                    "Too many password attempts for this link",
                    retry_after=max(1, math.ceil(reset_at - time.time())),
                )
    except RateLimited:
        raise
    except Exception as error:  # the storage's connection errors: refuse rather than allow unlimited guesses
        raise Unavailable("Passwords cannot be checked right now", retry_after=5) from error
