"""What the gateway tells about the visitor of a short link (`/s/...`), never the raw IP itself.

- `visitor`: SHA-256 of `salt|client ip|user agent`, with a salt that changes every UTC day
  (Redis `visitor-salt:<YYYY-MM-DD>`, 32 random bytes in hex, created with SET NX by whichever
  gateway needs it first and kept two days), so a person is one visitor within a day and cannot
  be followed across days, nor turned back into an address (as Plausible counts).
- `country`: ISO 3166 alpha-2 from geoip2fast's offline database (GeoLite2-derived, IPv4 and
  IPv6, shipped in the package), `None` for private, reserved or unknown addresses. Chosen over
  iptocc (measured in docs/gateway.md, "The edge redirect"): iptocc is 40 times faster (0.3 vs
  6-9 us a lookup) but gives the country an address block was registered in, which for cloud
  and multinational networks is not where the visitor is (AWS Mumbai reads as US).
- `bot`: crawlerdetect's maintained list, plus the link previewers the product names, plus no
  user agent at all (every browser sends one). The answer is cached per user-agent string: one
  uncached check is ~190 us of regular expressions, a cached one well under 1 us.

The shortener trusts the `x-visitor-*` headers because only the gateway can send them (any
copy from a client is dropped, `gateway.proxy.CLIENT_FORBIDDEN`).
"""

import asyncio
import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from crawlerdetect import CrawlerDetect  # type: ignore[import-untyped]
from geoip2fast import GeoIP2Fast  # type: ignore[import-untyped]

from gateway.redis_pipe import RedisPipe, RedisReplyError

logger = logging.getLogger(__name__)

SALT_KEY_PREFIX = "visitor-salt:"
SALT_TTL = 2 * 86_400
# After Redis failed to give the day's salt: a salt of this process only, until Redis is asked again.
SALT_RETRY = 1.0
MAX_USER_AGENT = 1000  # what the inbox keeps, and what the bot check reads

# The previewers the issue names, whatever crawlerdetect's list says about them this year.
_PREVIEWERS = re.compile(
    r"Slackbot|Slack-ImgProxy|Discordbot|WhatsApp|Twitterbot|facebookexternalhit|Facebot|meta-externalagent"
    r"|Mastodon|LinkedInBot|TelegramBot|SkypeUriPreview|redditbot|Pinterestbot|Iframely|Embedly",
    re.IGNORECASE,
)
_crawlers = CrawlerDetect()


@lru_cache(maxsize=8192)
def is_bot(user_agent: str) -> bool:
    """A crawler, a link previewer or a client that does not say what it is. Cached per string."""
    agent = user_agent[:MAX_USER_AGENT].strip()
    if not agent:
        return True
    return _PREVIEWERS.search(agent) is not None or bool(_crawlers.is_crawler(agent))


@lru_cache(maxsize=1)
def _geo() -> GeoIP2Fast:
    # The IPv6 file holds IPv4 too: one table for both (loads in ~0.2 s, ~55 MiB).
    return GeoIP2Fast(geoip2fast_data_file="geoip2fast-ipv6.dat.gz", verbose=False)


def visitors_warm() -> None:
    """Load the country table and compile crawlerdetect's expressions now, at start-up (~0.4 s),
    rather than on the first visits."""
    _geo()
    is_bot("Mozilla/5.0 (start-up)")


def _country_code(ip: str) -> object:
    geo = _geo()
    if not _GEO_INTERNALS:
        return geo.lookup(ip).country_code
    # The three steps of geoip2fast 1.2's `lookup` that give the country, without the network's
    # name, its AS and the timing it also works out (half of a lookup's cost; same answers: a
    # test compares them). Another version without them: the public `lookup`.
    number = geo._ip2int(ip)
    root, chunk, _, last, _ = geo._main_index_lookup(number)
    if number > last:
        return None
    return geo._country_lookup(root, chunk)[0]


_GEO_INTERNALS = all(hasattr(GeoIP2Fast, name) for name in ("_ip2int", "_main_index_lookup", "_country_lookup"))


def country_of(ip: str) -> str | None:
    try:
        code = _country_code(ip)
    except Exception:  # noqa: BLE001 - an address the table cannot read is an unknown country
        return None
    if isinstance(code, str) and len(code) == 2 and code.isalpha() and code.isupper():
        return code
    return None


@dataclass(frozen=True, slots=True)
class VisitorFacts:
    visitor: str
    country: str | None
    bot: bool

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("x-visitor-id", self.visitor),
            ("x-visitor-country", self.country or ""),
            ("x-visitor-bot", "1" if self.bot else "0"),
        ]


def visitor_hash(salt: str, client_ip: str, user_agent: str) -> str:
    return hashlib.sha256(f"{salt}|{client_ip}|{user_agent}".encode("utf-8", "surrogateescape")).hexdigest()


_day_cache: tuple[int, str] = (-1, "")


def _today() -> str:
    """The UTC date, YYYY-MM-DD (formatted once a day, not once a request)."""
    global _day_cache
    day = int(time.time() // 86_400)
    if day != _day_cache[0]:
        _day_cache = (day, datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d"))
    return _day_cache[1]


class VisitorSalts:
    """The day's salt: from Redis once per day and process (concurrent callers share the one
    call), then from memory. Redis down: a salt of this process for the moment (visitors hashed
    meanwhile do not match other replicas' hashes; nothing else is lost), asked again after
    `SALT_RETRY` seconds."""

    def __init__(self, redis: RedisPipe) -> None:
        self._redis = redis
        self._day = ""
        self._salt = ""
        self._valid_until = float("-inf")  # monotonic; infinite for the salt Redis gave for the day
        self._fetching: asyncio.Future[str] | None = None

    def current(self) -> str | None:
        """The salt when it is known for now, without a wait (every request but the day's first)."""
        if self._day == _today() and time.monotonic() < self._valid_until:
            return self._salt
        return None

    async def salt(self) -> str:
        day = _today()
        if day == self._day and time.monotonic() < self._valid_until:
            return self._salt
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.ensure_future(self._fetch(day))
        return await asyncio.shield(self._fetching)

    async def _fetch(self, day: str) -> str:
        candidate = secrets.token_hex(32)
        try:
            # Redis >= 7: NX with GET answers the salt already there, or nil when ours was set.
            existing = await self._redis.execute("SET", SALT_KEY_PREFIX + day, candidate, "NX", "EX", SALT_TTL, "GET")
        except (RedisReplyError, OSError) as error:  # RedisPipeError is an OSError
            logger.warning("visitor salt unavailable from Redis (%s); this process's own for now", error)
            if day != self._day:
                self._day, self._salt = day, candidate
            self._valid_until = time.monotonic() + SALT_RETRY
            return self._salt
        self._day = day
        self._salt = existing.decode() if isinstance(existing, bytes) else candidate
        self._valid_until = float("inf")
        return self._salt


class Visitors:
    def __init__(self, redis: RedisPipe) -> None:
        self.salts = VisitorSalts(redis)

    async def facts(self, *, client_ip: str, user_agent: str) -> VisitorFacts:
        salt = self.salts.current() or await self.salts.salt()
        return VisitorFacts(
            visitor=visitor_hash(salt, client_ip, user_agent),
            country=country_of(client_ip),
            bot=is_bot(user_agent),
        )
