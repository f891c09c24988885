"""The edge redirect: `GET /s/<code>` for a link in the shortener's redirect cache, answered by
the gateway itself, after admission, with the visit committed first (gateway/visit_inbox.py).

The cache (`shortlink:<code>` in the Redis DB of REDIS_URL, written by apps/shortener/cache.py)
holds only links anyone may follow any number of times: active, no password, no visit limit, not
a task link. Anything else is not answered here and goes to the shortener as before: a missing
key, a tombstone (`"gone": true`), an entry past its `expires_at`, a value that does not read as
an entry or a target that is not a plain http(s) URL, any Redis or PostgreSQL failure, and every
method but GET (HEAD is forwarded too: it follows nothing, and the shortener decides what it
counts). The answer is the shortener's own: 302, `Location`, `Cache-Control: private, no-store`
(never a 301 or a cached redirect: browsers would skip us, and the visit, next time),
`X-Robots-Tag: noindex`, and the gateway's `Referrer-Policy: same-origin`, so the target is not
told which page the link was clicked on (the referrer is recorded here, not passed on).
"""

import json
import logging
import math
import re
import time
from dataclasses import dataclass
from functools import lru_cache

from gateway.redis_pipe import RedisPipe, RedisReplyError
from gateway.visit_inbox import Visit, VisitInbox, VisitNotRecorded
from gateway.visitors import VisitorFacts

logger = logging.getLogger(__name__)

KEY_PREFIX = "shortlink:"
OUTAGE_BACKOFF = 1.0
PATH = re.compile(r"/s/([A-Za-z0-9_-]{1,64})")
# What goes into a Location header as it is: an absolute http(s) URL of printable ASCII, no
# backslash (the shortener validated it when the link was made; this is the edge's own check).
_SAFE_TARGET = re.compile(r"https?://[\x21-\x5b\x5d-\x7e]+", re.ASCII)


@dataclass(frozen=True, slots=True)
class CachedLink:
    target: str
    tenant_id: str
    expires_at: float | None = None


def entry_servable(raw: object, *, now: float) -> CachedLink | None:
    """The cache entry if the edge may answer it; None sends the visit to the shortener."""
    if not isinstance(raw, bytes):
        return None
    link = _entry_parse(raw)
    if link is None or (link.expires_at is not None and link.expires_at <= now):
        return None
    return link


@lru_cache(maxsize=4096)
def _entry_parse(raw: bytes) -> CachedLink | None:
    """A cache value read once per distinct value (a link's entry is the same bytes until it
    changes), not once per visit. Expiry is checked on every visit by `entry_servable`."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("gone"):
        return None
    target, tenant_id, expires_at = value.get("target"), value.get("tenant_id"), value.get("expires_at")
    if not isinstance(target, str) or _SAFE_TARGET.fullmatch(target) is None:
        return None
    if not isinstance(tenant_id, str) or not 0 < len(tenant_id) <= 64:
        return None
    if expires_at is not None and (
        isinstance(expires_at, bool) or not isinstance(expires_at, int | float) or not math.isfinite(expires_at)
    ):
        return None
    return CachedLink(target=target, tenant_id=tenant_id, expires_at=expires_at)


def code_of(path: str) -> str | None:
    match = PATH.fullmatch(path)
    return match.group(1) if match else None


_RESPONSE_HEADERS = (
    (b"cache-control", b"private, no-store"),
    (b"x-robots-tag", b"noindex"),
    (b"content-length", b"0"),
)


class EdgeRedirects:
    def __init__(self, *, redis: RedisPipe, inbox: VisitInbox, enabled: bool = True) -> None:
        self.enabled = enabled
        self._redis = redis
        self._inbox = inbox
        self._redis_down_until = float("-inf")

    async def cached(self, code: str) -> CachedLink | None:
        if time.monotonic() < self._redis_down_until:
            return None
        try:
            raw = await self._redis.execute("GET", KEY_PREFIX + code)
        except (RedisReplyError, OSError):  # RedisPipeError is an OSError
            self._redis_down_until = time.monotonic() + OUTAGE_BACKOFF
            return None
        return entry_servable(raw, now=time.time())

    async def answer(
        self,
        *,
        method: str,
        path: str,
        facts: VisitorFacts,
        referrer: str | None,
        user_agent: str | None,
    ) -> list[tuple[bytes, bytes]] | None:
        """The 302's headers once its visit is committed; None: forward the request instead."""
        if not self.enabled or method != "GET" or not self._inbox.available:
            return None
        code = code_of(path)
        if code is None:
            return None
        link = await self.cached(code)
        if link is None:
            return None
        visit = Visit(
            code=code,
            tenant_id=link.tenant_id,
            referrer=referrer,
            user_agent=user_agent,
            visitor=facts.visitor,
            country=facts.country,
            bot=facts.bot,
        )
        try:
            await self._inbox.record(visit)
        except VisitNotRecorded:
            return None
        return [(b"location", link.target.encode("ascii")), *_RESPONSE_HEADERS]
