"""The redirect cache the gateway reads (gateway/shortlinks.py): `shortlink:<code>` in Redis.

An entry is a link the gateway may answer itself: active, no password, no visit limit, not a
task link. Anything else is a tombstone, `{"version": n, "gone": true}`, which sends the visit
here. Writes compare versions in Redis, so a slow writer never puts back an older state.

Order is what keeps a revoked link from being served: a change writes the tombstone before its
transaction commits (Redis down: the change fails with 503 and nothing changed anywhere), and
the new entry only after the commit. A tombstone that outlives a rolled-back change costs one
trip to this service, never a wrong redirect.
"""

import functools
import json
import time

import redis
from django.conf import settings

from apps.common.exceptions import Unavailable
from apps.shortener.models import Link

KEY_PREFIX = "shortlink:"
ENTRY_TTL = 86_400
TOMBSTONE_TTL = 2 * 86_400

_WRITE_LUA = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, stored = pcall(cjson.decode, current)
  if ok and type(stored) == 'table' then
    local stored_version = tonumber(stored['version'])
    if stored_version and stored_version > tonumber(ARGV[1]) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=1.0)


@functools.cache
def _write_script() -> redis.commands.core.Script:
    return _redis().register_script(_WRITE_LUA)


def cache_key(code: str) -> str:
    return KEY_PREFIX + code


def is_cacheable(link: Link) -> bool:
    return link.ended_reason == "" and not link.password_hash and link.max_visits is None and not link.is_task_link


def _write(code: str, version: int, value: dict, ttl: int) -> None:
    _write_script()(keys=[cache_key(code)], args=[version, json.dumps(value, separators=(",", ":")), max(1, ttl)])


def tombstone_write(link: Link) -> None:
    """Before a change commits: the gateway stops answering this link. Raises Unavailable."""
    try:
        _write(link.code, link.version, {"version": link.version, "gone": True}, TOMBSTONE_TTL)
    except redis.RedisError as error:
        raise Unavailable(
            "The link cannot be changed right now (its cache is unreachable); try again", retry_after=5
        ) from error


def entry_write(link: Link) -> None:
    """After a commit (or on a visit): the link's current state, for the gateway. Best effort:
    a failure only means the next visits come here."""
    try:
        if not is_cacheable(link):
            _write(link.code, link.version, {"version": link.version, "gone": True}, TOMBSTONE_TTL)
            return
        ttl = ENTRY_TTL
        expires = None
        if link.expires_at is not None:
            expires = link.expires_at.timestamp()
            ttl = min(ttl, int(expires - time.time()) + 1)
            if ttl <= 0:
                return
        _write(
            link.code,
            link.version,
            {"version": link.version, "target": link.target, "tenant_id": link.tenant_id, "expires_at": expires},
            ttl,
        )
    except redis.RedisError:
        return


def redis_client() -> redis.Redis:
    return _redis()
