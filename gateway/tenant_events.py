"""Tenant events drop the gateway's tenant cache, from RabbitMQ or from the Redis fallback.

Without this, a tenant that finishes provisioning keeps getting `503 tenant_provisioning`
until its cache entries expire. Every gateway process holds its own in-process cache, so
each one reads every tenant event; the Redis entry is shared, so every process deleting it
is harmless. On RabbitMQ a process binds its own exclusive, auto-delete queue to `tenant.*`
on the events exchange. On Redis (EVENTS_BROKER_URL=redis://..., what `make up` uses when
no RabbitMQ runs) it reads the exchange's stream from its newest entry on, without a
consumer group, and after a lost connection resumes where it stopped.

The subscriber is a background task of the app's lifespan. It never delays start-up or a
request: while the broker is away it reconnects with backoff and logs, and the cache TTLs
still bound how stale a tenant can be.
"""

import asyncio
import json
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import aio_pika
import redis.asyncio as aioredis
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aio_pika.exceptions import AMQPError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.config import GatewaySettings
from gateway.tenants import tenant_slug_valid

logger = logging.getLogger(__name__)

# tenant.created, tenant.provisioned, tenant.provisioning_failed, and whatever tenant.* comes next.
TENANT_ROUTING_KEY = "tenant.*"
TENANT_ROUTING_PREFIX = "tenant."
INITIAL_BACKOFF = 0.5
PREFETCH = 100
CLOSE_TIMEOUT = 2.0
STREAM_BLOCK_MS = 1000

BROKER_ERRORS: tuple[type[BaseException], ...] = (
    AMQPError,
    OSError,
    ConnectionError,
    TimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
)


def tenant_event_slug(body: bytes) -> str | None:
    """The slug a tenant event is about, or None when the message names no tenant we could cache."""
    try:
        envelope = json.loads(body)
    except (TypeError, ValueError):
        return None
    if not isinstance(envelope, dict) or not str(envelope.get("type", "")).startswith("Tenant"):
        return None
    data = envelope.get("data")
    slug = data.get("slug") if isinstance(data, dict) else None
    # A slug that cannot be a host is never cached, so there is nothing to drop.
    if not isinstance(slug, str) or not tenant_slug_valid(slug):
        return None
    return slug


class TenantEventSubscriber:
    """Consumes tenant events and calls `on_tenant_changed(slug)` for each one.

    `on_subscribed()` runs after every (re)subscription: events published while the broker
    was unreachable are lost to this process's queue, so its in-process cache is dropped.
    """

    def __init__(
        self,
        *,
        settings: GatewaySettings,
        on_tenant_changed: Callable[[str], Awaitable[None]],
        on_subscribed: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._on_tenant_changed = on_tenant_changed
        self._on_subscribed = on_subscribed
        self._task: asyncio.Task[None] | None = None
        self._connection: AbstractConnection | None = None
        self._redis: aioredis.Redis | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stream_position: bytes | None = None  # the last stream entry read (Redis)
        self._subscribe: Callable[[], Awaitable[asyncio.Future[str]]] = self._subscribe_amqp
        self.queue_name = f"gateway.tenant-cache.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self.subscribed = asyncio.Event()
        self.state = "starting"
        self.events_applied = 0
        self.reconnects = 0

    def start(self) -> None:
        if not self._settings.tenant_events_enabled:
            self.state = "disabled"
            logger.info("tenant events disabled; tenant cache entries expire by TTL only")
            return
        scheme = self._settings.events_broker_url.partition("://")[0].lower()
        if scheme in ("amqp", "amqps"):
            self._subscribe = self._subscribe_amqp
        elif scheme in ("redis", "rediss"):
            self._subscribe = self._subscribe_redis
        else:
            self.state = f"disabled: broker scheme {scheme!r} is neither AMQP nor Redis"
            logger.warning(
                "tenant events: unknown broker scheme %s://; tenant cache entries expire by TTL only", scheme
            )
            return
        self._task = asyncio.create_task(self._run(), name="gateway-tenant-events")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = INITIAL_BACKOFF
        failures = 0
        while True:
            try:
                lost = await self._subscribe()
                backoff, failures = INITIAL_BACKOFF, 0
                reason = await lost
                logger.error("TENANT EVENTS DOWN: lost the broker (%s); reconnecting", reason)
                self.state = f"disconnected: {reason}"
            except BROKER_ERRORS as error:
                failures += 1
                self.state = f"disconnected: {type(error).__name__}"
                log = logger.error if failures == 1 else logger.warning
                log(
                    "TENANT EVENTS DOWN: cannot subscribe (%s: %s), attempt %s; retrying in %.1f s",
                    type(error).__name__,
                    error,
                    failures,
                    backoff,
                )
            except Exception:
                # A bug here must not end the subscription for the life of the process.
                failures += 1
                self.state = "disconnected: unexpected error"
                logger.exception("tenant event subscriber failed; retrying in %.1f s", backoff)
            finally:
                self.subscribed.clear()
                await self._disconnect()
            self.reconnects += 1
            # Jitter, so that replicas do not all reconnect in the same instant after an outage.
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))  # noqa: S311 - not security
            backoff = min(backoff * 2, self._settings.tenant_events_max_backoff)

    async def _subscribe_amqp(self) -> "asyncio.Future[str]":
        """Connects, binds this process's queue and starts consuming; returns a future set on loss."""
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[str] = loop.create_future()

        def on_close(_sender: object, error: BaseException | None = None) -> None:
            if not lost.done():
                lost.set_result(f"{type(error).__name__}: {error}" if error else "closed")

        connection = await aio_pika.connect(
            self._settings.events_broker_url,
            timeout=self._settings.connect_timeout,
            client_properties={"connection_name": f"gateway tenant-cache {socket.gethostname()}:{os.getpid()}"},
        )
        self._connection = connection
        connection.close_callbacks.add(on_close)
        channel: AbstractChannel = await connection.channel()
        channel.close_callbacks.add(on_close)
        await channel.set_qos(prefetch_count=PREFETCH)
        # Declared the way apps/events/transports/amqp_client.py declares it, so whoever comes first creates it.
        exchange = await channel.declare_exchange(
            self._settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(self.queue_name, exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=TENANT_ROUTING_KEY)
        await queue.consume(self._on_message)
        self._subscribed_as(
            f"queue {self.queue_name} bound to {TENANT_ROUTING_KEY} on {self._settings.events_exchange}"
        )
        return lost

    async def _subscribe_redis(self) -> "asyncio.Future[str]":
        """Connects and starts reading the exchange's stream; returns a future set on loss."""
        lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        # Any: redis-py types every reply as a union of its sync and async shapes.
        client: Any = aioredis.Redis.from_url(
            self._settings.events_broker_url,
            socket_connect_timeout=self._settings.connect_timeout,
            socket_timeout=STREAM_BLOCK_MS / 1000 + 5,
        )
        self._redis = client
        stream = self._settings.events_exchange
        if self._stream_position is None:
            newest = await client.xrevrange(stream, count=1)
            self._stream_position = newest[0][0] if newest else b"0-0"
        self._reader = asyncio.create_task(self._read_stream(client, stream, lost), name="gateway-tenant-stream")
        self._subscribed_as(f"reading stream {stream} on Redis")
        return lost

    async def _read_stream(self, client: Any, stream: str, lost: "asyncio.Future[str]") -> None:
        try:
            while True:
                reply = await client.xread({stream: self._stream_position}, count=PREFETCH, block=STREAM_BLOCK_MS)
                for entry_id, fields in reply[0][1] if reply else []:
                    self._stream_position = entry_id
                    routing_key = fields.get(b"rk", b"").decode(errors="replace")
                    if routing_key.startswith(TENANT_ROUTING_PREFIX):
                        await self._apply(
                            fields.get(b"body", b""), label=fields.get(b"type", b"").decode() or routing_key
                        )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - any loss ends this reader; _run reconnects
            if not lost.done():
                lost.set_result(f"{type(error).__name__}: {error}")

    def _subscribed_as(self, description: str) -> None:
        self._on_subscribed()
        self.state = "ok"
        self.subscribed.set()
        logger.info("tenant events: %s", description)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # Acked after the cache is dropped; a failure is logged and the message discarded:
        # redelivering to this same process would not help, and the TTL still applies.
        async with message.process(requeue=False, ignore_processed=True):
            await self._apply(message.body, label=message.type or message.routing_key or "")

    async def _apply(self, body: bytes, *, label: str) -> None:
        slug = tenant_event_slug(body)
        if slug is None:
            logger.warning("tenant events: ignored a message without a tenant slug (%r)", label)
            return
        await self._on_tenant_changed(slug)
        self.events_applied += 1
        logger.info("tenant events: %s for %s, cache dropped", label, slug)

    async def _disconnect(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await reader
        client, self._redis = self._redis, None
        if client is not None:
            with suppress(*BROKER_ERRORS):
                await client.aclose()
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await connection.close()
        except BROKER_ERRORS:
            # Closing an already-dead connection; the broker drops the exclusive queue either way.
            logger.debug("closing the tenant-events connection", exc_info=True)
