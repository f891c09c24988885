"""The Redis transport's own promises, beyond what the shared suite checks on both transports."""

import time

import pytest
import redis
from django.conf import settings

from apps.events.transports.base import ConsumerQueues, Outgoing, TransportLost, topic_matches
from apps.events.transports.redis_streams import RedisStreamsTransport


@pytest.mark.parametrize(
    ("binding", "routing_key", "matches"),
    [
        ("tenant.*", "tenant.created", True),
        ("tenant.*", "tenant.provisioning_failed", True),
        ("tenant.*", "tenant", False),
        ("tenant.*", "tenant.a.b", False),
        ("task.#", "task", True),
        ("task.#", "task.status_changed", True),
        ("task.#", "tasks.created", False),
        ("#", "url.accessed", True),
        ("#.accessed", "url.accessed", True),
        ("url.accessed", "url.accessed", True),
        ("url.accessed", "url.created", False),
        ("*.created", "user.created", True),
    ],
)
def test_topic_bindings_match_as_rabbitmq_matches_them(binding: str, routing_key: str, matches: bool) -> None:
    assert topic_matches(binding, routing_key) is matches


def _transport(tag: str, *, consumer: str, claim_idle_ms: int = 60_000) -> RedisStreamsTransport:
    transport = RedisStreamsTransport(
        url=settings.REDIS_URL, name="test", claim_idle_ms=claim_idle_ms, consumer_name=consumer
    )
    transport.subscribe(
        ConsumerQueues.for_service("claims", prefix=tag, retry_delays_ms=[50]),
        exchange=tag,
        bindings=["url.*"],
        prefetch=10,
    )
    return transport


@pytest.fixture
def tag(settings) -> str:
    name = f"test-transport-{time.monotonic_ns()}"
    yield name
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(name, f"{name}.claims.retry", f"{name}.claims.dlq")
    client.close()


def _publish(transport: RedisStreamsTransport, tag: str, *routing_keys: str) -> None:
    transport.publish(
        [Outgoing(body=b"{}", event_id=f"e{n}", event_type="X", routing_key=key) for n, key in enumerate(routing_keys)],
        exchange=tag,
    )


def test_a_dead_consumers_deliveries_are_claimed_by_another_after_the_idle_time(tag: str) -> None:
    dead = _transport(tag, consumer="host-a:claims")
    _publish(dead, tag, "url.created", "url.expired")
    assert [d.event_id for d in dead.receive(wait=0.1, max_count=10)] == ["e0", "e1"]  # never settled

    alive = _transport(tag, consumer="host-b:claims", claim_idle_ms=0)
    assert [d.event_id for d in alive.receive(wait=0.1, max_count=10)] == ["e0", "e1"]
    dead.close()
    alive.close()


def test_entries_no_binding_takes_are_settled_without_a_delivery(tag: str) -> None:
    consumer = _transport(tag, consumer="host-a:claims")
    _publish(consumer, tag, "task.created", "url.created")
    assert [d.event_id for d in consumer.receive(wait=0.1, max_count=10)] == ["e1"]
    assert consumer.client.xpending(tag, f"{tag}.claims")["pending"] == 1
    consumer.close()


def test_a_restarted_consumer_first_gets_what_it_had_in_hand(tag: str) -> None:
    before = _transport(tag, consumer="host-a:claims")
    _publish(before, tag, "url.created")
    [delivery] = before.receive(wait=0.1, max_count=10)
    before.close()  # died without settling

    after = _transport(tag, consumer="host-a:claims")
    [again] = after.receive(wait=0.1, max_count=10)
    assert again.event_id == delivery.event_id
    after.ack([again])
    assert after.receive(wait=0.05, max_count=10) == []
    after.close()


def test_a_consumer_group_that_vanished_is_reported_as_a_lost_transport(tag: str) -> None:
    consumer = _transport(tag, consumer="host-a:claims")
    consumer.receive(wait=0.01, max_count=1)
    consumer.client.delete(tag)  # a Redis restart without data looks like this

    with pytest.raises(TransportLost):
        consumer.receive(wait=0.01, max_count=1)
    consumer.close()
