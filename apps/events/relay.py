"""The outbox relay: committed outbox rows -> the events exchange, confirmed, then marked sent.

One loop per process: LISTEN for the outbox trigger's NOTIFY (delivered on commit), then
claim unsent rows in id order with FOR UPDATE SKIP LOCKED, publish them as one confirmed
batch on a long-lived broker connection (RabbitMQ, or the Redis fallback: see
apps/events/transports), and mark them sent in the same transaction. A crash
between publish and mark re-sends the batch: delivery is at least once, and consumers are
idempotent by event id.

Several relays may run. Order per aggregate holds across them: a relay takes a row only
while it holds a transaction-scoped advisory lock on the row's aggregate, so every unsent
row of one aggregate goes through one relay at a time, in id order.

Outboxes in other databases (a database-mode tenant's own, written in that database's
transaction) are moved into this one by sweepers (`EVENTS_RELAY_SWEEPERS`, dotted paths of
functions returning how many events they moved), run every `EVENTS_RELAY_SWEEP_SECONDS`.
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.db import close_old_connections, connections
from django.utils.module_loading import import_string
from psycopg.conninfo import make_conninfo

from apps.events.services import outbox_purge
from apps.events.transports import Transport, transport_connect, transport_errors, transport_kind
from apps.events.transports.base import Outgoing, PublishNotConfirmed

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "events_outbox"
# First key of the two-key advisory lock: keeps the relay's locks apart from anyone else's.
ADVISORY_LOCK_CLASS = 0x0E7E

_CLAIM = """
SELECT id, event_id::text, event_type, routing_key, body
FROM events_outboxevent
WHERE sent_at IS NULL
  AND pg_try_advisory_xact_lock(%s, hashtext(COALESCE(aggregate_id, event_id::text)))
ORDER BY id
LIMIT %s
FOR UPDATE SKIP LOCKED
"""
_MARK_SENT = "UPDATE events_outboxevent SET sent_at = clock_timestamp() WHERE id = ANY(%s)"


def database_conninfo(using: str = "default") -> str:
    """The psycopg conninfo of a Django database alias (the test database during tests)."""
    config = connections[using].settings_dict
    params = {
        "dbname": config["NAME"],
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "host": config.get("HOST") or None,
        "port": str(config["PORT"]) if config.get("PORT") else None,
    }
    options: dict[str, Any] = {
        key: value for key, value in (config.get("OPTIONS") or {}).items() if isinstance(value, str | int)
    }
    return make_conninfo(**{key: value for key, value in params.items() if value is not None}, **options)


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    swept: int = 0  # events moved in from other outboxes (sweepers)
    reconnects: int = 0
    last_error: str = ""
    started_at: float = field(default_factory=time.monotonic)


class OutboxRelay:
    def __init__(
        self,
        *,
        using: str = "default",
        exchange: str | None = None,
        broker_url: str | None = None,
        batch_size: int | None = None,
        idle_poll_seconds: float | None = None,
        retention_hours: int | None = None,
        sweepers: Sequence[Callable[[], int]] | None = None,
        sweep_seconds: float | None = None,
    ) -> None:
        self.using = using
        self.conninfo = database_conninfo(using)
        self.exchange = exchange or settings.EVENTS_EXCHANGE
        self.broker_url = broker_url or settings.EVENTS_BROKER_URL
        self.batch_size = batch_size or settings.EVENTS_RELAY_BATCH_SIZE
        # A safety net only: commits wake the relay through NOTIFY.
        self.idle_poll_seconds = idle_poll_seconds or settings.EVENTS_RELAY_IDLE_POLL_SECONDS
        if retention_hours is None:
            retention_hours = settings.EVENTS_OUTBOX_RETENTION_HOURS
        self.retention_hours = retention_hours
        self.stats = RelayStats()
        self._listener: psycopg.Connection | None = None
        self._database: psycopg.Connection | None = None
        self.broker_kind = transport_kind(self.broker_url)
        self._transport: Transport | None = None
        self._last_purge = 0.0
        if sweepers is None:
            sweepers = [import_string(path) for path in getattr(settings, "EVENTS_RELAY_SWEEPERS", ())]
        self.sweepers = list(sweepers)
        configured_sweep: float = getattr(settings, "EVENTS_RELAY_SWEEP_SECONDS", 5.0)
        self.sweep_seconds = sweep_seconds or configured_sweep
        self._last_sweep = 0.0

    # Connections -----------------------------------------------------------------------------

    def _connect(self) -> None:
        if self._listener is None or self._listener.closed:
            self._listener = psycopg.connect(self.conninfo, autocommit=True)
            self._listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        if self._database is None or self._database.closed:
            self._database = psycopg.connect(self.conninfo)
        if self._transport is None:
            self._transport = transport_connect(url=self.broker_url, name="outbox-relay")

    def close(self) -> None:
        for connection in (self._listener, self._database):
            if connection is not None and not connection.closed:
                connection.close()
        self._listener = self._database = None
        self._drop_broker()
        connections[self.using].close()  # this thread's Django connection, opened by the purge

    def _drop_broker(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = None

    # Work -------------------------------------------------------------------------------------

    def relay_batch(self) -> int:
        """Publishes one batch of unsent rows; returns how many (0 when the outbox is drained)."""
        assert self._database is not None and self._transport is not None
        with self._database.transaction(), self._database.cursor() as cursor:
            rows = cursor.execute(_CLAIM, (ADVISORY_LOCK_CLASS, self.batch_size)).fetchall()
            if not rows:
                return 0
            self._transport.publish(
                (
                    Outgoing(body=body.encode(), event_id=event_id, event_type=event_type, routing_key=routing_key)
                    for _, event_id, event_type, routing_key, body in rows
                ),
                exchange=self.exchange,
            )
            cursor.execute(_MARK_SENT, ([row[0] for row in rows],))
        self.stats.published += len(rows)
        self.stats.batches += 1
        return len(rows)

    def drain(self) -> int:
        total = 0
        while True:
            sent = self.relay_batch()
            total += sent
            if sent < self.batch_size:
                return total

    def _wait_for_commit(self, timeout: float, stop: threading.Event) -> None:
        assert self._listener is not None
        deadline = time.monotonic() + timeout
        # Short slices, so a stop request is noticed quickly while idle.
        while not stop.is_set() and time.monotonic() < deadline:
            if any(True for _ in self._listener.notifies(timeout=0.25, stop_after=1)):
                break
        # Everything committed so far is about to be drained: forget the wake-ups already queued.
        for _ in self._listener.notifies(timeout=0):
            pass

    def _purge_if_due(self) -> None:
        if not self.retention_hours or time.monotonic() - self._last_purge < 300:
            return
        self._last_purge = time.monotonic()
        deleted = outbox_purge(older_than_hours=self.retention_hours, using=self.using)
        if deleted:
            logger.info("purged %s sent outbox rows older than %sh", deleted, self.retention_hours)

    def sweep_if_due(self) -> int:
        """Runs the sweepers when their interval is up; returns how many events they moved in."""
        if not self.sweepers or time.monotonic() - self._last_sweep < self.sweep_seconds:
            return 0
        self._last_sweep = time.monotonic()
        # Sweepers query through Django, which renews a broken or expired connection only at a
        # request's edges: this loop is one long request, so it draws the edge itself.
        close_old_connections()
        moved = 0
        for sweeper in self.sweepers:
            try:
                moved += sweeper()
            except Exception as exc:  # noqa: BLE001 - a failed sweep is retried next time; relaying goes on
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("outbox sweeper %s failed: %s", getattr(sweeper, "__name__", sweeper), exc)
        if moved:
            self.stats.swept += moved
            logger.info("moved %s events from other outboxes into this one", moved)
        return moved

    def run(self, *, stop: threading.Event) -> None:
        """Relays until `stop` is set, reconnecting with backoff when PostgreSQL or RabbitMQ drops."""
        backoff = 0.1
        broker_errors: tuple[type[BaseException], ...] = (*transport_errors(), PublishNotConfirmed)
        while not stop.is_set():
            try:
                self._connect()
                self.sweep_if_due()
                self.drain()
                self._purge_if_due()
                backoff = 0.1
                wait = self.idle_poll_seconds
                if self.sweepers:
                    wait = min(wait, max(0.05, self._last_sweep + self.sweep_seconds - time.monotonic()))
                self._wait_for_commit(wait, stop)
            except broker_errors as exc:
                self._on_error(self.broker_kind, exc)
                self._drop_broker()
            except psycopg.Error as exc:
                self._on_error("PostgreSQL", exc)
                self.close()
            else:
                continue
            stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)
        self.close()

    def _on_error(self, what: str, exc: BaseException) -> None:
        self.stats.reconnects += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        logger.warning("outbox relay lost %s (%s); reconnecting", what, self.stats.last_error)
