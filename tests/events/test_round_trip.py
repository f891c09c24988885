"""Outbox -> relay -> RabbitMQ -> consumer -> PostgreSQL, for real."""

import threading

import pytest
from django.db import transaction

from apps.events.catalog import EVENT_TYPES
from apps.events.models import OutboxEvent, ProbeRecord, ProcessedEvent
from apps.events.outbox import publish
from apps.events.selectors import events_tail
from tests.events.samples import SAMPLES
from tests.helpers import wait_until


def _applied(event_ids: set[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event_id in ProbeRecord.objects.filter(event_id__in=event_ids).values_list("event_id", flat=True):
        counts[str(event_id)] = counts.get(str(event_id), 0) + 1
    return counts


def test_every_event_type_makes_the_round_trip(start_relay, start_consumer, publish_committed) -> None:
    start_consumer()
    start_relay()

    sent = {
        publish_committed(event_type, SAMPLES[event_type], tenant_id="t-1").id: event_type for event_type in EVENT_TYPES
    }

    assert wait_until(lambda: len(_applied(set(sent))) == len(sent), timeout=10)
    assert _applied(set(sent)) == dict.fromkeys(sent, 1)
    assert {str(i): t for i, t in ProbeRecord.objects.values_list("event_id", "event_type")} == sent
    assert set(ProbeRecord.objects.values_list("tenant_id", flat=True)) == {"t-1"}
    assert not OutboxEvent.objects.filter(sent_at=None).exists()
    assert ProcessedEvent.objects.filter(consumer="probe").count() == len(sent)


def test_a_rolled_back_transaction_publishes_nothing(start_relay, start_consumer, publish_committed) -> None:
    start_consumer()
    start_relay()
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = publish("URLExpired", SAMPLES["URLExpired"], tenant_id=None, actor_id=None)
        raise RuntimeError("rolled back")
    # A later event that does arrive proves the pipeline ran past the point where the first would be.
    marker = publish_committed("URLCreated", SAMPLES["URLCreated"])

    assert wait_until(lambda: ProbeRecord.objects.filter(event_id=marker.id).exists(), timeout=10)
    assert not ProbeRecord.objects.filter(event_id=rolled_back.id).exists()
    assert list(ProbeRecord.objects.values_list("event_type", flat=True)) == ["URLCreated"]


def test_events_committed_while_the_relay_was_down_are_published_when_it_starts(
    start_relay, start_consumer, publish_committed
) -> None:
    start_consumer()
    waiting = {publish_committed("URLAccessed", {**SAMPLES["URLAccessed"], "visit_number": n}).id for n in range(1, 6)}
    assert OutboxEvent.objects.filter(sent_at=None).count() == 5

    start_relay()

    assert wait_until(lambda: len(_applied(waiting)) == 5, timeout=10)
    assert _applied(waiting) == dict.fromkeys(waiting, 1)


def test_two_relays_keep_the_order_of_each_aggregate(start_relay, start_consumer, publish_committed) -> None:
    start_consumer(batch_size=50)
    start_relay(batch_size=7)
    start_relay(batch_size=7)
    expected: dict[str, list[str]] = {f"link-{n}": [] for n in range(6)}
    for visit in range(1, 41):
        for code in expected:
            event = publish_committed(
                "URLAccessed", {**SAMPLES["URLAccessed"], "code": code, "visit_number": visit}, aggregate_id=code
            )
            expected[code].append(event.id)
    total = sum(len(ids) for ids in expected.values())

    assert wait_until(lambda: ProbeRecord.objects.count() >= total, timeout=20)
    applied_order = [
        str(event_id) for event_id in ProbeRecord.objects.order_by("pk").values_list("event_id", flat=True)
    ]
    assert len(applied_order) == total
    for code, ids in expected.items():
        assert [event_id for event_id in applied_order if event_id in set(ids)] == ids, code


def test_tail_shows_live_events_of_one_type(start_relay, publish_committed, broker_names) -> None:
    start_relay()
    stop = threading.Event()
    seen: list[dict] = []
    ready = threading.Event()

    def watch() -> None:
        stream = events_tail(event_type="TaskAssigned", stop=stop)
        ready.set()
        for event in stream:
            seen.append(event)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(5)
    # The generator binds its queue on first iteration: publish until it is listening.
    assigned = None
    for _ in range(50):
        publish_committed("TaskCreated", SAMPLES["TaskCreated"])
        assigned = publish_committed("TaskAssigned", SAMPLES["TaskAssigned"])
        if wait_until(lambda: bool(seen), timeout=0.2):
            break
    stop.set()
    watcher.join(5)

    assert seen and {event["type"] for event in seen} == {"TaskAssigned"}
    assert seen[-1]["id"] == assigned.id and seen[-1]["data"] == SAMPLES["TaskAssigned"]
