"""Live board updates: the one way a change reaches open boards.

`board_broadcast` is called only from apps/projects/services/. It waits for the surrounding
transaction to commit, then numbers the message with the board's sequence (a Redis
counter), keeps the last LOG_SIZE messages for clients that reconnect with
`?since=<seq>`, and sends it to the board's Channels group. Group and keys carry the
tenant's schema, so two tenants' boards with the same id never meet.
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


def board_broadcast(*, board_id: int, event: str, data: dict, sequenced: bool = True) -> None:
    """Send `event` to everyone viewing the board, once the current transaction commits.

    Unsequenced messages (who is viewing) are not kept for catch-up."""
    schema = tenant_connection().schema_name
    transaction.on_commit(partial(_send, schema, board_id, event, data, sequenced), using=tenant_db())


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


def presence_set(*, schema: str, board_id: int, channel_name: str, viewer: dict | None) -> list[dict]:
    """Record (or, with viewer None, forget) one open view; return everyone viewing."""
    client = redis_client()
    key = _key(schema, board_id, "viewers")
    if viewer is None:
        client.hdel(key, channel_name)
    else:
        client.hset(key, channel_name, json.dumps(viewer))
        client.expire(key, LOG_TTL_SECONDS)
    by_user: dict[str, dict] = {}
    for raw in client.hvals(key):
        entry = json.loads(raw)
        by_user[entry["user_id"]] = entry
    return sorted(by_user.values(), key=lambda entry: entry["user_id"])
