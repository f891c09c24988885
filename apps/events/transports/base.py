"""What the relay, the consumers and the developer tools need from a transport, whichever it is.

Two transports implement it: RabbitMQ (production; `rabbitmq.py`) and Redis streams (the
development fallback when no RabbitMQ runs; `redis_streams.py`). Both keep the promises
the rest of the backbone is written against:

- `publish` returns only once the broker has stored every message (publisher confirms on
  RabbitMQ, the reply to XADD on Redis), so the relay marks rows sent only after that;
- a consumer's delivery stays its own until `ack`, `retry` or `dead_letter` settles it,
  and a consumer that dies with deliveries in hand gets them again (at least once);
- deliveries come in publish order per consumer, so one consumer per queue sees each
  aggregate's events in order;
- `retry` holds a copy back for the queue's next delay, `dead_letter` parks it with its
  reason, each settling the original in the same step.
"""

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from django.conf import settings


class PublishNotConfirmed(RuntimeError):
    """The broker refused a message, or did not confirm it in time: it may not be stored."""


class TransportLost(ConnectionError):
    """The broker forgot what this consumer set up (a restart without data, a flush): start again."""


@dataclass(frozen=True)
class ConsumerQueues:
    """The names of one consuming service's queues: main, one per retry delay, dead letters."""

    service: str
    main: str
    retries: tuple[tuple[int, str], ...]
    dead: str

    @classmethod
    def for_service(
        cls, service: str, *, prefix: str | None = None, retry_delays_ms: Iterable[int] | None = None
    ) -> "ConsumerQueues":
        prefix = prefix if prefix is not None else settings.EVENTS_QUEUE_PREFIX
        main = f"{prefix}.{service}"
        delays = tuple(retry_delays_ms if retry_delays_ms is not None else settings.EVENTS_RETRY_DELAYS_MS)
        return cls(
            service=service,
            main=main,
            retries=tuple((delay, f"{main}.retry.{delay}ms") for delay in delays),
            dead=f"{main}.dlq",
        )


@dataclass(frozen=True)
class Outgoing:
    """One message to publish: an event's JSON body and what routes and identifies it."""

    body: bytes
    event_id: str
    event_type: str
    routing_key: str
    headers: Mapping[str, object] = field(default_factory=dict)


@dataclass
class Delivery:
    """One message in a consumer's hands; `receipt` is the transport's own handle to settle it."""

    body: bytes
    event_id: str
    event_type: str
    routing_key: str
    headers: dict[str, object]
    receipt: object = None

    def header(self, name: str, default: object = None) -> object:
        value = self.headers.get(name, default)
        return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class DeadLetter:
    event_id: str
    event_type: str
    kind: str
    reason: str
    attempts: int
    dead_at: str
    body: str


# Headers that describe a failed delivery; a replayed message starts again without them.
FAILURE_HEADERS = frozenset(
    {
        "x-attempt",
        "x-last-error",
        "x-dead-kind",
        "x-dead-reason",
        "x-attempts",
        "x-consumer",
        "x-dead-at",
        "x-original-routing-key",
    }
)


def dead_letter_from(delivery: Delivery) -> DeadLetter:
    """What a dead letter says about itself (the headers the consumer added when it gave up)."""

    def text(name: str) -> str:
        return str(delivery.header(name, ""))

    return DeadLetter(
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        kind=text("x-dead-kind"),
        reason=text("x-dead-reason"),
        attempts=int(delivery.header("x-attempts", 0) or 0),  # type: ignore[call-overload]
        dead_at=text("x-dead-at"),
        body=delivery.body.decode(errors="replace"),
    )


def replay_headers(headers: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in headers.items() if key not in FAILURE_HEADERS}


def _words_match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_words_match(rest, words[skip:]) for skip in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _words_match(rest, words[1:])


@cache
def topic_matches(binding: str, routing_key: str) -> bool:
    """Whether a topic binding (`tenant.*`, `task.#`, `#`) takes a routing key, as RabbitMQ decides:
    words split by dots, `*` is exactly one word, `#` zero or more."""
    return _words_match(tuple(binding.split(".")), tuple(routing_key.split(".")))


class Transport(Protocol):
    """One connection to the broker, used by one thread."""

    kind: str  # "RabbitMQ" or "Redis", for messages a person reads

    def publish(self, messages: Iterable[Outgoing], *, exchange: str, timeout: float = 10.0) -> int:
        """Publishes to the exchange; returns once the broker stored them all (else raises)."""

    def subscribe(self, queues: ConsumerQueues, *, exchange: str, bindings: Sequence[str], prefetch: int) -> None:
        """Declares the consumer's queues (idempotently) and starts receiving from the main one."""

    def receive(self, *, wait: float, max_count: int) -> list[Delivery]:
        """Up to `max_count` deliveries, waiting up to `wait` seconds for the first."""

    def ack(self, deliveries: Sequence[Delivery]) -> None: ...

    def retry(self, delivery: Delivery, *, attempt: int, headers: Mapping[str, object]) -> int:
        """Holds a copy for the delay of retry `attempt` (1-based), settles the original; returns the delay (ms)."""

    def dead_letter(self, delivery: Delivery, *, headers: Mapping[str, object]) -> None: ...

    def dead_letters(self, queues: ConsumerQueues, *, limit: int) -> list[DeadLetter]:
        """The first `limit` dead letters, left in place."""

    def dead_letters_replay(self, queues: ConsumerQueues, *, event_ids: set[str] | None) -> int:
        """Moves dead letters (all, or these) back to the consumer with a fresh attempt count."""

    def tail(self, *, exchange: str, binding: str, stop: threading.Event | None) -> Iterator[bytes]:
        """Bodies of messages published from now on, until `stop` is set."""

    def consumer_ready(self, queues: ConsumerQueues, *, exchange: str) -> bool:
        """Whether the consumer's queue exists, so that nothing published from now on is missed."""

    def queues_delete(self, queues: ConsumerQueues, *, exchange: str) -> None: ...

    def exchange_delete(self, exchange: str) -> None: ...

    def close(self) -> None:
        """Closes quietly, also a connection that is already dead."""
