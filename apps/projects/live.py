"""Live board updates: the one way a change reaches open boards.

`board_broadcast` is called only from apps/projects/services/. It waits for the surrounding
transaction to commit, then numbers the message with the board's sequence (a Redis
counter), keeps the last LOG_SIZE messages for clients that reconnect with
`?since=<seq>`, and sends it to the board's Channels group. Group and keys carry the
tenant's schema, so two tenants' boards with the same id never meet. A shared task's open views
(consumers.SharedTaskConsumer) hear the board's group but forward none of it: they read their task
again; `shared_link_close` (services/sharing.py) closes them when their link ends.
"""

import json
import logging
from functools import partial

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from apps.projects.db import tenant_connection, tenant_db

logger = logging.getLogger(__name__)

LOG_SIZE = 1000
LOG_TTL_SECONDS = 24 * 3600
_client: redis.Redis | None = None


def redis_client() -> redis.Redis:
    global _client  # one connection pool per process
    if _client is None:
        _client = redis.Redis.from_url(settings.PROJECTS_LIVE_REDIS_URL)
    return _client


def _prefix() -> str:
    return settings.PROJECTS_LIVE_PREFIX


def board_group(schema: str, board_id: int) -> str:
    return f"board.{schema}.{board_id}"


def _key(schema: str, board_id: int, what: str) -> str:
    return f"{_prefix()}:{schema}:{board_id}:{what}"


def board_broadcast(
    *, board_id: int, event: str, data: dict, sequenced: bool = True, schema: str | None = None
) -> None:
    """Send `event` to everyone viewing the board, once the current transaction commits.

    Unsequenced messages (who is viewing) are not kept for catch-up. `schema` names the tenant
    where no tenant is active (the board's socket, which knows it from its handshake)."""
    schema = schema or tenant_connection().schema_name
    send = partial(_send, schema, board_id, event, data, sequenced)
    connection = transaction.get_connection(tenant_db())
    if connection.in_atomic_block:
        connection.on_commit(send)
    else:  # nothing to wait for (and no database connection opened just to learn that)
        send()


def _send(schema: str, board_id: int, event: str, data: dict, sequenced: bool) -> None:
    try:
        if sequenced:
            client = redis_client()
            seq = client.incr(_key(schema, board_id, "seq"))
            text = json.dumps({"seq": seq, "type": event, "data": data}, cls=DjangoJSONEncoder)
            log_key = _key(schema, board_id, "log")
            with client.pipeline(transaction=False) as pipe:
                pipe.zadd(log_key, {text: seq})
                pipe.zremrangebyrank(log_key, 0, -(LOG_SIZE + 1))
                pipe.expire(log_key, LOG_TTL_SECONDS)
                pipe.execute()
        else:
            text = json.dumps({"seq": None, "type": event, "data": data}, cls=DjangoJSONEncoder)
        async_to_sync(get_channel_layer().group_send)(
            board_group(schema, board_id), {"type": "board.message", "text": text}
        )
    except Exception:  # the change is committed; a lost live message is healed by the next reload
        logger.exception("live update failed", extra={"board_id": board_id, "schema": schema, "event": event})


def shared_group(schema: str, code: str) -> str:
    """The open shared views of one link (consumers.SharedTaskConsumer)."""
    return f"shared.{schema}.{code}"


def shared_link_close(*, code: str, reason: str) -> None:
    """Close every open shared view of the link `code`, once the current transaction commits: it
    ended (revoked, expired, used up). Only the ending travels, never anything of the task."""
    schema = tenant_connection().schema_name

    def send() -> None:
        try:
            async_to_sync(get_channel_layer().group_send)(
                shared_group(schema, code), {"type": "shared.ended", "reason": reason}
            )
        except Exception:  # recorded: a view that missed this is refused at its next reconnect or reload
            logger.exception("closing shared views failed", extra={"code": code, "schema": schema})

    connection = transaction.get_connection(tenant_db())
    if connection.in_atomic_block:
        connection.on_commit(send)
    else:
        send()


def board_seq(*, schema: str, board_id: int) -> int:
    return int(redis_client().get(_key(schema, board_id, "seq")) or 0)


def board_messages_since(*, schema: str, board_id: int, since: int) -> list[str] | None:
    """The messages after `since`, oldest first; None when some were already dropped
    (the client must reload the board)."""
    client = redis_client()
    current = board_seq(schema=schema, board_id=board_id)
    if since >= current:
        return []
    messages = [raw.decode() for raw in client.zrangebyscore(_key(schema, board_id, "log"), since + 1, "+inf")]
    if len(messages) < current - since:
        return None
    return messages


# Presence: who has the board open. Each open socket is one entry (hash `viewers`: channel ->
# viewer JSON) with the time it was last heard of (sorted set `seen`: channel -> seconds, by
# Redis's clock, so every process agrees). Every HEARTBEAT_SECONDS each process pings its sockets
# and refreshes the entries of those whose client answered the last ping; an entry not refreshed
# for PRESENCE_EXPIRY_SECONDS is gone, whether or not the process that served it ran its
# disconnect (a killed process never does). Every heartbeat round and every join sweeps the
# board's stale entries, so a view whose process died is dropped within PRESENCE_EXPIRY_SECONDS
# + HEARTBEAT_SECONDS, one whose client went silent (a half-open socket) within another
# HEARTBEAT_SECONDS + 1, and a fresh page never lists either.
HEARTBEAT_SECONDS = 2.0
PRESENCE_EXPIRY_SECONDS = 4.5
PRESENCE_KEY_TTL_SECONDS = 300  # a board nobody views leaves nothing behind
# Changes to who is viewing are told at most once per this many seconds per board: a burst of N
# joins then costs one message of the room to each viewer, not N of them (quadratic in the room).
PRESENCE_COALESCE_SECONDS = 0.15
PRESENCE_DUE_TTL_MS = 2000  # a claim to announce outlives a process that died before announcing

_PRESENCE_SWEEP = """
local now = redis.call('TIME')
local cutoff = tonumber(now[1]) + tonumber(now[2]) / 1e6 - tonumber(ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. cutoff)
for _, channel in ipairs(stale) do
  redis.call('ZREM', KEYS[2], channel)
  redis.call('HDEL', KEYS[1], channel)
end
return {tonumber(now[1]) + tonumber(now[2]) / 1e6, #stale}
"""

# KEYS: viewers, seen. ARGV: expiry seconds, key ttl, channel, viewer JSON.
# Marks the channel as heard now (adding it when new or swept); sweeps stale entries.
# Returns how many entries it added or swept (0: nobody needs telling).
_PRESENCE_TOUCH = f"""
local swept = (function() {_PRESENCE_SWEEP} end)()
local added = redis.call('ZADD', KEYS[2], string.format('%.6f', swept[1]), ARGV[3])
if added == 1 then redis.call('HSET', KEYS[1], ARGV[3], ARGV[4]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return added + swept[2]
"""

# KEYS: viewers, seen. ARGV: expiry seconds, key ttl, then channel and viewer JSON pairs: many
# views of one board heard at once (one process's heartbeat round). Returns as _PRESENCE_TOUCH.
_PRESENCE_TOUCH_MANY = f"""
local swept = (function() {_PRESENCE_SWEEP} end)()
local now = string.format('%.6f', swept[1])
local added = 0
for i = 3, #ARGV, 2 do
  if redis.call('ZADD', KEYS[2], now, ARGV[i]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    added = added + 1
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return added + swept[2]
"""

# KEYS: viewers, seen. ARGV: expiry seconds. The live entries' viewer JSON, stale ones swept.
_PRESENCE_READ = f"""
(function() {_PRESENCE_SWEEP} end)()
return redis.call('HVALS', KEYS[1])
"""

# KEYS: viewers, seen. ARGV: channel. 1 when the entry was there.
_PRESENCE_LEAVE = """
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('ZREM', KEYS[2], ARGV[1])
"""


def _presence_keys(schema: str, board_id: int) -> list[str]:
    return [_key(schema, board_id, "viewers"), _key(schema, board_id, "seen")]


def presence_touch(*, schema: str, board_id: int, channel_name: str, viewer: dict) -> bool:
    """One open view was heard from (its join, or a heartbeat). True when who is viewing changed:
    the view is new (or had expired), or stale views were swept."""
    changed = redis_client().eval(
        _PRESENCE_TOUCH,
        2,
        *_presence_keys(schema, board_id),
        PRESENCE_EXPIRY_SECONDS,
        PRESENCE_KEY_TTL_SECONDS,
        channel_name,
        json.dumps(viewer),
    )
    return bool(changed)


def presence_touch_many(*, views: dict[tuple[str, int], list[tuple[str, dict]]]) -> list[tuple[str, int]]:
    """Views heard from, by board (`(schema, board_id)` -> `[(channel_name, viewer), ...]`), in one
    round trip; the boards whose viewers changed (a view new or expired, stale views swept)."""
    boards = list(views)
    with redis_client().pipeline(transaction=False) as pipe:
        for schema, board_id in boards:
            pairs = [item for channel, viewer in views[(schema, board_id)] for item in (channel, json.dumps(viewer))]
            pipe.eval(
                _PRESENCE_TOUCH_MANY,
                2,
                *_presence_keys(schema, board_id),
                PRESENCE_EXPIRY_SECONDS,
                PRESENCE_KEY_TTL_SECONDS,
                *pairs,
            )
        changed = pipe.execute()
    return [board for board, count in zip(boards, changed, strict=True) if count]


def presence_leave(*, schema: str, board_id: int, channel_name: str) -> bool:
    """One view closed. True when it was still listed."""
    return bool(redis_client().eval(_PRESENCE_LEAVE, 2, *_presence_keys(schema, board_id), channel_name))


def presence_list(*, schema: str, board_id: int) -> list[dict]:
    """Everyone viewing the board now, once per person (several tabs are one), by name."""
    raw = redis_client().eval(_PRESENCE_READ, 2, *_presence_keys(schema, board_id), PRESENCE_EXPIRY_SECONDS)
    by_user: dict[str, dict] = {}
    for value in raw:
        entry = json.loads(value)
        by_user[entry["user_id"]] = entry
    return sorted(by_user.values(), key=lambda entry: (entry.get("name") or "", entry["user_id"]))


def presence_claim(*, schema: str, board_id: int) -> bool:
    """True when the caller is the one to announce the board's presence after the coalescing
    window (nobody else has claimed it); False when an announcement is already due."""
    return bool(redis_client().set(_key(schema, board_id, "presence-due"), "1", nx=True, px=PRESENCE_DUE_TTL_MS))


def presence_unclaim(*, schema: str, board_id: int) -> None:
    """Called just before the announcement reads the room: a change after this claims anew, so
    none is left untold."""
    redis_client().delete(_key(schema, board_id, "presence-due"))
