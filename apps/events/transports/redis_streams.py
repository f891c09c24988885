"""The Redis transport (development fallback): one stream per exchange, a consumer group per queue.

- The exchange is a stream of that name. Publishing is XADD in one pipeline; Redis's reply
  means the entry is stored (in memory: see "What it does not promise").
- A consumer's queue is a consumer group on the stream, created at the stream's start, so
  a group created after an event was published still gets it. Topic bindings are applied by
  the consumer: an entry no binding takes is acked without a handler.
- Unsettled deliveries stay in the group's pending list. The consumer's name is stable per
  host and service, so a restarted consumer takes its own pending entries first, in order;
  entries pending on another consumer for longer than EVENTS_REDIS_CLAIM_IDLE_MS are claimed.
- Retries wait in a sorted set `<queue>.retry` scored by when they are due; dead letters in
  a stream `<queue>.dlq`. Moving a delivery there and settling the original is one MULTI.
- The stream is capped at about EVENTS_REDIS_STREAM_MAXLEN entries.

What it does not promise: durability across a Redis crash or restart (what Redis had not
persisted is gone), and delivery to a consumer that falls behind the stream's cap.
"""

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import redis
from django.conf import settings
from redis.exceptions import ResponseError

from apps.events.transports.base import (
    ConsumerQueues,
    DeadLetter,
    Delivery,
    Outgoing,
    TransportLost,
    dead_letter_from,
    replay_headers,
    topic_matches,
)

ERRORS: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)
AUTOCLAIM_EVERY_SECONDS = 10.0


def _fields(*, body: bytes, event_id: str, event_type: str, routing_key: str, headers: Mapping[str, object]) -> dict:
    return {
        "body": body,
        "id": event_id,
        "type": event_type,
        "rk": routing_key,
        "headers": json.dumps(dict(headers), default=str),
    }


def _delivery(fields: Mapping[bytes, bytes], receipt: object) -> Delivery:
    def text(name: bytes) -> str:
        return fields.get(name, b"").decode(errors="replace")

    return Delivery(
        body=fields.get(b"body", b""),
        event_id=text(b"id"),
        event_type=text(b"type"),
        routing_key=text(b"rk"),
        headers=json.loads(fields.get(b"headers") or b"{}"),
        receipt=receipt,
    )


def _retry_member(delivery: Delivery, headers: Mapping[str, object]) -> str:
    # The body round-trips byte for byte (surrogateescape); the nonce keeps two copies apart.
    return json.dumps(
        {
            "body": delivery.body.decode("utf-8", "surrogateescape"),
            "id": delivery.event_id,
            "type": delivery.event_type,
            "rk": delivery.routing_key,
            "headers": dict(headers),
            "nonce": uuid.uuid4().hex,
        },
        default=str,
    )


def _retry_delivery(member: bytes) -> Delivery:
    document = json.loads(member)
    return Delivery(
        body=document["body"].encode("utf-8", "surrogateescape"),
        event_id=document["id"],
        event_type=document["type"],
        routing_key=document["rk"],
        headers=document["headers"],
        receipt=("retry", member),
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


class RedisStreamsTransport:
    kind = "Redis"

    def __init__(
        self,
        *,
        url: str,
        name: str,
        maxlen: int | None = None,
        claim_idle_ms: int | None = None,
        consumer_name: str | None = None,
    ) -> None:
        self.name = name
        self.consumer_name = consumer_name
        # The socket timeout is longer than any blocking read, so only a dead server trips it.
        # Any: redis-py types every reply as a union of its sync and async shapes.
        self.client: Any = redis.Redis.from_url(
            url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=15
        )
        self.client.ping()
        self.maxlen = maxlen or settings.EVENTS_REDIS_STREAM_MAXLEN
        self.claim_idle_ms = claim_idle_ms if claim_idle_ms is not None else settings.EVENTS_REDIS_CLAIM_IDLE_MS
        self._stream = ""
        self._queues: ConsumerQueues | None = None
        self._bindings: tuple[str, ...] = ()
        self._consumer = ""
        self._own_pending_done = False
        self._last_autoclaim = 0.0

    # Publishing ---------------------------------------------------------------------------

    def publish(self, messages: Iterable[Outgoing], *, exchange: str, timeout: float = 10.0) -> int:
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for message in messages:
            fields = _fields(
                body=message.body,
                event_id=message.event_id,
                event_type=message.event_type,
                routing_key=message.routing_key,
                headers=message.headers,
            )
            pipe.xadd(exchange, fields, maxlen=self.maxlen, approximate=True)
            count += 1
        if count:
            pipe.execute()  # raises if any XADD failed: the caller publishes the batch again
        return count

    # Consuming ----------------------------------------------------------------------------

    def subscribe(self, queues: ConsumerQueues, *, exchange: str, bindings: Sequence[str], prefetch: int) -> None:
        self._group_ensure(exchange, queues.main)
        self._stream, self._queues, self._bindings = exchange, queues, tuple(bindings)
        self._consumer = self.consumer_name or f"{socket.gethostname()}:{queues.service}"
        self._own_pending_done = False

    def _group_ensure(self, stream: str, group: str) -> None:
        try:
            self.client.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def receive(self, *, wait: float, max_count: int) -> list[Delivery]:
        assert self._queues is not None
        try:
            due = self._retries_due(max_count)
            if due:
                return due
            if not self._own_pending_done:
                # What this consumer had in hand when it stopped, first and in order.
                entries = self._read("0", max_count, block_ms=None)
                if entries:
                    return entries
                self._own_pending_done = True
            claimed = self._autoclaim(max_count)
            if claimed:
                return claimed
            return self._read(">", max_count, block_ms=self._block_ms(wait))
        except ResponseError as error:
            if "NOGROUP" in str(error):
                raise TransportLost(f"the consumer group {self._queues.main} is gone from Redis") from error
            raise

    def _block_ms(self, wait: float) -> int:
        assert self._queues is not None
        block = max(1, int(wait * 1000))
        upcoming = self.client.zrange(f"{self._queues.main}.retry", 0, 0, withscores=True)
        if upcoming:
            block = max(1, min(block, int(upcoming[0][1]) - _now_ms()))
        return block

    def _read(self, start: str, count: int, *, block_ms: int | None) -> list[Delivery]:
        assert self._queues is not None
        reply = self.client.xreadgroup(
            self._queues.main, self._consumer, {self._stream: start}, count=count, block=block_ms
        )
        entries = reply[0][1] if reply else []
        return self._taken(entries)

    def _taken(self, entries: list) -> list[Delivery]:
        """The entries this consumer's bindings take; the others (and trimmed ones) are acked at once."""
        assert self._queues is not None
        taken, skipped = [], []
        for entry_id, fields in entries:
            if not fields:  # trimmed from the stream while pending
                skipped.append(entry_id)
                continue
            delivery = _delivery(fields, ("stream", entry_id))
            if any(topic_matches(binding, delivery.routing_key) for binding in self._bindings):
                taken.append(delivery)
            else:
                skipped.append(entry_id)
        if skipped:
            self.client.xack(self._stream, self._queues.main, *skipped)
        return taken

    def _retries_due(self, count: int) -> list[Delivery]:
        assert self._queues is not None
        members = self.client.zrangebyscore(f"{self._queues.main}.retry", "-inf", _now_ms(), start=0, num=count)
        return [_retry_delivery(member) for member in members]

    def _autoclaim(self, count: int) -> list[Delivery]:
        assert self._queues is not None
        if time.monotonic() - self._last_autoclaim < AUTOCLAIM_EVERY_SECONDS:
            return []
        self._last_autoclaim = time.monotonic()
        reply = self.client.xautoclaim(
            self._stream, self._queues.main, self._consumer, min_idle_time=self.claim_idle_ms, count=count
        )
        return self._taken(reply[1])

    def _settle(self, pipe: Any, deliveries: Sequence[Delivery]) -> None:
        assert self._queues is not None
        entry_ids = [d.receipt[1] for d in deliveries if d.receipt[0] == "stream"]  # type: ignore[index]
        members = [d.receipt[1] for d in deliveries if d.receipt[0] == "retry"]  # type: ignore[index]
        if entry_ids:
            pipe.xack(self._stream, self._queues.main, *entry_ids)
        if members:
            pipe.zrem(f"{self._queues.main}.retry", *members)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        pipe = self.client.pipeline(transaction=True)
        self._settle(pipe, deliveries)
        pipe.execute()

    def retry(self, delivery: Delivery, *, attempt: int, headers: Mapping[str, object]) -> int:
        assert self._queues is not None
        delay, _ = self._queues.retries[attempt - 1]
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(f"{self._queues.main}.retry", {_retry_member(delivery, headers): _now_ms() + delay})
        self._settle(pipe, [delivery])
        pipe.execute()
        return delay

    def dead_letter(self, delivery: Delivery, *, headers: Mapping[str, object]) -> None:
        assert self._queues is not None
        pipe = self.client.pipeline(transaction=True)
        fields = _fields(
            body=delivery.body,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            routing_key=delivery.routing_key,
            headers=headers,
        )
        pipe.xadd(self._queues.dead, fields)
        self._settle(pipe, [delivery])
        pipe.execute()

    # Dead letters -------------------------------------------------------------------------

    def dead_letters(self, queues: ConsumerQueues, *, limit: int) -> list[DeadLetter]:
        return [dead_letter_from(_delivery(fields, None)) for _, fields in self.client.xrange(queues.dead, count=limit)]

    def dead_letters_replay(self, queues: ConsumerQueues, *, event_ids: set[str] | None) -> int:
        replayed = 0
        for entry_id, fields in self.client.xrange(queues.dead):
            delivery = _delivery(fields, None)
            if event_ids is not None and delivery.event_id not in event_ids:
                continue
            # Back to this consumer only (not the whole stream), due now, in one step.
            pipe = self.client.pipeline(transaction=True)
            pipe.zadd(f"{queues.main}.retry", {_retry_member(delivery, replay_headers(delivery.headers)): _now_ms()})
            pipe.xdel(queues.dead, entry_id)
            pipe.execute()
            replayed += 1
        return replayed

    # Tools --------------------------------------------------------------------------------

    def tail(self, *, exchange: str, binding: str, stop: threading.Event | None) -> Iterator[bytes]:
        newest = self.client.xrevrange(exchange, count=1)
        last = newest[0][0] if newest else b"0-0"
        while stop is None or not stop.is_set():
            reply = self.client.xread({exchange: last}, count=100, block=500)
            for entry_id, fields in reply[0][1] if reply else []:
                last = entry_id
                delivery = _delivery(fields, None)
                if topic_matches(binding, delivery.routing_key):
                    yield delivery.body

    def consumer_ready(self, queues: ConsumerQueues, *, exchange: str) -> bool:
        try:
            groups = self.client.xinfo_groups(exchange)
        except ResponseError:  # no such stream yet
            return False
        return any(group["name"] in (queues.main, queues.main.encode()) for group in groups)

    def queues_delete(self, queues: ConsumerQueues, *, exchange: str) -> None:
        if self.client.exists(exchange):
            self.client.xgroup_destroy(exchange, queues.main)
        self.client.delete(f"{queues.main}.retry", queues.dead)

    def exchange_delete(self, exchange: str) -> None:
        self.client.delete(exchange)

    def close(self) -> None:
        with contextlib.suppress(*ERRORS):
            self.client.close()
