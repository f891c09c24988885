"""The MongoDB idempotency store (analytics has no PostgreSQL), against a real MongoDB-wire server."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest

from apps.events.catalog import Envelope, envelope_create
from apps.events.consumer import ConsumerRunner, MongoStore
from tests.events.samples import SAMPLES
from tests.helpers import free_port, server_process, wait_until


@pytest.fixture(scope="module")
def mongo_url() -> Iterator[str]:
    port = free_port()
    url = f"mongodb://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            pymongo.MongoClient(url, serverSelectionTimeoutMS=300).admin.command("ping")
        except pymongo.errors.PyMongoError:
            return False
        return True

    secantusd = [str(Path(sys.executable).parent / "secantusd-py"), "--port", str(port), "--storage-path", ":memory:"]
    with server_process(secantusd, ready=answers, timeout=20):
        yield url


@pytest.fixture
def store(mongo_url: str) -> Iterator[MongoStore]:
    store = MongoStore(url=mongo_url, database="events_test")
    store.client.drop_database("events_test")
    yield store
    store.close()


def _count_visit(store: MongoStore) -> tuple[list, object]:
    calls: list[str] = []
    visits = store.client["events_test"]["visits"]

    def count_visit(event: Envelope) -> None:
        calls.append(event.id)
        # Idempotent by construction: keyed by the event id.
        visits.update_one({"_id": event.id}, {"$set": {"code": event.data["code"]}}, upsert=True)

    return calls, count_visit


def test_an_event_is_applied_once_per_consumer(store: MongoStore) -> None:
    calls, count_visit = _count_visit(store)
    event = envelope_create("URLAccessed", SAMPLES["URLAccessed"], tenant_id=None, actor_id=None)
    handlers = {"URLAccessed": [count_visit]}

    assert store.apply(consumer="analytics", events=[event], handlers=handlers) == [True]
    assert store.apply(consumer="analytics", events=[event], handlers=handlers) == [False]
    assert store.apply(consumer="other", events=[event], handlers=handlers) == [True]

    assert calls == [event.id, event.id]
    assert store.client["events_test"]["visits"].count_documents({}) == 1
    assert store.processed.count_documents({}) == 2


def test_a_crash_before_the_processed_record_reapplies_idempotently(store: MongoStore) -> None:
    calls, count_visit = _count_visit(store)
    event = envelope_create("URLAccessed", SAMPLES["URLAccessed"], tenant_id=None, actor_id=None)

    def crash(event: Envelope) -> None:
        raise RuntimeError("worker died here")

    with pytest.raises(RuntimeError):
        store.apply(consumer="analytics", events=[event], handlers={"URLAccessed": [count_visit, crash]})
    assert store.apply(consumer="analytics", events=[event], handlers={"URLAccessed": [count_visit]}) == [True]

    assert calls == [event.id, event.id]
    assert store.client["events_test"]["visits"].count_documents({}) == 1


def test_a_mongo_backed_consumer_takes_events_from_the_broker(
    store: MongoStore, start_relay, publish_committed, running, broker_names
) -> None:
    calls, count_visit = _count_visit(store)
    broker_names.services.add("analytics")
    runner = ConsumerRunner(service="analytics", handlers={"URLAccessed": [count_visit]}, store=store)
    runner._connect()
    running.start(runner.run, idle_wait=0.1)
    start_relay()

    sent = [publish_committed("URLAccessed", {**SAMPLES["URLAccessed"], "visit_number": n}).id for n in range(1, 21)]

    assert wait_until(lambda: store.client["events_test"]["visits"].count_documents({}) == 20, timeout=15)
    assert sorted(calls) == sorted(sent) and store.processed.count_documents({"consumer": "analytics"}) == 20
