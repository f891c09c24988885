"""What goes wrong: invalid messages, failing handlers, duplicates, a cut network, a killed consumer."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from django.conf import settings
from django.db import connection, transaction

from apps.events.catalog import envelope_create
from apps.events.consumer import probe_record
from apps.events.models import OutboxEvent, ProbeRecord, ProcessedEvent
from apps.events.outbox import publish
from apps.events.relay import database_conninfo
from apps.events.selectors import dead_letters_list
from apps.events.services import dead_letters_replay
from tests.events.conftest import queue_ready
from tests.events.samples import SAMPLES
from tests.helpers import wait_until
from tests.tcp_relay import TcpRelay

ROOT = Path(__file__).resolve().parents[2]


def _applied_once(event_ids: set[str]) -> bool:
    rows = list(ProbeRecord.objects.filter(event_id__in=event_ids).values_list("event_id", flat=True))
    return len(rows) == len(event_ids) and {str(row) for row in rows} == event_ids


def test_an_invalid_message_goes_to_the_dead_letter_queue_with_its_reason(
    start_consumer, raw_publish, publish_committed, start_relay
) -> None:
    start_consumer()
    start_relay()
    broken = envelope_create("URLExpired", SAMPLES["URLExpired"], tenant_id=None, actor_id=None).as_dict()
    broken["data"] = {"code": "Ab3dE"}
    raw_publish(b"<html>not an event</html>", message_id="not-json")
    raw_publish(json.dumps(broken).encode(), message_id=broken["id"], event_type="URLExpired")
    after = publish_committed("URLExpired", SAMPLES["URLExpired"])

    assert wait_until(lambda: _applied_once({after.id}), timeout=10)
    assert wait_until(lambda: len(dead_letters_list(service="probe")) == 2, timeout=5)
    letters = {letter.event_id: letter for letter in dead_letters_list(service="probe")}
    assert letters["not-json"].kind == "invalid"
    assert letters["not-json"].reason.startswith("The message body is not JSON")
    assert letters["not-json"].body == "<html>not an event</html>"
    assert letters[broken["id"]].reason == 'URLExpired v1 data: "reason" is a required property'
    assert ProbeRecord.objects.count() == 1 and ProcessedEvent.objects.count() == 1
    # Listing leaves them where they are.
    assert len(dead_letters_list(service="probe")) == 2


def test_a_failing_handler_is_retried_then_dead_lettered_without_blocking_the_rest(
    start_consumer, start_relay, publish_committed
) -> None:
    fixed = threading.Event()
    attempts: list[str] = []

    def fails_on_poison(event) -> None:
        probe_record(event)  # an effect that must be rolled back with the failure
        if event.data["code"] == "poison":
            attempts.append(event.id)
            if not fixed.is_set():
                raise ValueError("the link table is missing code 'poison'")

    runner = start_consumer("flaky", handlers={"URLExpired": [fails_on_poison]})
    start_relay()
    poison = publish_committed("URLExpired", {"code": "poison", "reason": "expired"})
    fine = {publish_committed("URLExpired", {"code": f"ok-{n}", "reason": "expired"}).id for n in range(3)}

    assert wait_until(lambda: _applied_once(fine), timeout=10)
    assert wait_until(lambda: runner.counts["dead_lettered"] == 1, timeout=10)
    assert set(attempts) == {poison.id}
    assert runner.counts["retried"] == 2  # first try + one per retry delay, then the dead-letter queue
    [letter] = dead_letters_list(service="flaky")
    assert (letter.event_id, letter.kind, letter.attempts) == (poison.id, "handler_failed", 3)
    assert letter.reason == "ValueError: the link table is missing code 'poison'"
    assert not ProbeRecord.objects.filter(event_id=poison.id).exists()

    fixed.set()
    assert dead_letters_replay(service="flaky") == 1

    assert wait_until(lambda: _applied_once({poison.id, *fine}), timeout=10)
    assert dead_letters_list(service="flaky") == []


def test_a_transient_failure_succeeds_on_retry_and_applies_once(start_consumer, start_relay, publish_committed) -> None:
    failures = []

    def fails_on_the_first_delivery(event) -> None:
        probe_record(event)
        # One delivery runs the handler twice: in the batch, then alone to single out the culprit.
        if len(failures) < 2:
            failures.append(event.id)
            raise ConnectionRefusedError("the mail server said no")

    runner = start_consumer("transient", handlers={"URLExpired": [fails_on_the_first_delivery]})
    start_relay()
    event = publish_committed("URLExpired", SAMPLES["URLExpired"])

    assert wait_until(lambda: _applied_once({event.id}), timeout=10)
    assert runner.counts["retried"] == 1 and runner.counts["dead_lettered"] == 0


def test_the_same_event_delivered_twice_is_applied_once(start_consumer, raw_publish) -> None:
    runner = start_consumer()
    envelope = envelope_create("URLExpired", SAMPLES["URLExpired"], tenant_id=None, actor_id=None)
    for _ in range(2):
        raw_publish(envelope.to_json(), message_id=envelope.id, event_type=envelope.type)

    assert wait_until(lambda: runner.counts["duplicates"] == 1, timeout=10)
    assert _applied_once({envelope.id}) and runner.counts["applied"] == 1


def test_cutting_the_broker_connections_mid_stream_loses_and_doubles_nothing(
    start_consumer, start_relay, broker_names, publish_committed
) -> None:
    broker = urlsplit(broker_names.url)
    proxy = TcpRelay(target=(broker.hostname or "127.0.0.1", broker.port or 5672)).up()
    proxied = proxy.url_through(broker_names.url)
    try:
        runner = start_consumer(broker_url=proxied, batch_size=20)
        relay = start_relay(broker_url=proxied, batch_size=25)
        committed: list[str] = []

        def produce() -> None:
            for batch in range(100):
                with transaction.atomic():
                    for n in range(5):
                        data = {**SAMPLES["URLAccessed"], "code": f"c{batch}", "visit_number": n + 1}
                        committed.append(publish("URLAccessed", data, tenant_id=None, actor_id=None).id)
                time.sleep(0.01)
            connection.close()

        producer = threading.Thread(target=produce)
        producer.start()
        for _ in range(3):
            time.sleep(0.35)
            proxy.cut()
        producer.join()

        assert wait_until(lambda: ProbeRecord.objects.count() >= 500, timeout=30)
        assert wait_until(lambda: not OutboxEvent.objects.filter(sent_at=None).exists(), timeout=10)
        # A later event down the same queue: once it is applied, a duplicate sent before it was too.
        marker = publish_committed("URLAccessed", {**SAMPLES["URLAccessed"], "code": "marker"})
        assert wait_until(lambda: _applied_once({marker.id}), timeout=10)
        assert len(committed) == 500
        assert _applied_once(set(committed)) and ProbeRecord.objects.count() == 501
        assert proxy.cuts == 3 and proxy.accepted > 2
        if broker_names.transport == "rabbitmq":
            assert relay.stats.reconnects + runner.counts["reconnects"] >= 3
        # redis-py replaces a connection that died between two commands by itself (the pool
        # checks it on checkout), so on Redis only a cut during a command reaches our code.
    finally:
        proxy.down()


def test_a_consumer_killed_mid_message_gets_it_again_and_applies_it_once(
    start_consumer, start_relay, publish_committed, broker_names
) -> None:
    lock_key = 4_242_001
    database = connection.settings_dict["NAME"]
    env = {
        **os.environ,
        **broker_names.env(),
        "DJANGO_SETTINGS_MODULE": "config.settings.shortener",
        "DATABASE_URL": f"{settings.POSTGRES_URL}/{database}",
        "PYTHONPATH": str(ROOT),
    }
    broker_names.services.add("killed")
    holder = psycopg.connect(database_conninfo(), autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (lock_key,))
    victim = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/events/blocking_consumer.py"), "killed", str(lock_key)], env=env, cwd=ROOT
    )
    try:
        start_relay()
        waiting = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s"
        # Publish only once the child has declared (and bound) its queue, then wait for its handler to block.
        assert wait_until(lambda: queue_ready("killed"), timeout=60, interval=0.2)
        event = publish_committed("URLExpired", SAMPLES["URLExpired"])
        wait_until(lambda: holder.execute(waiting, (lock_key,)).fetchone() is not None, timeout=30)
        stuck = holder.execute(waiting, (lock_key,)).fetchone()
        assert stuck, "the consumer never reached the blocking handler"

        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        # Its transaction can never commit now; end the orphaned backend as PostgreSQL would on its next write.
        holder.execute("SELECT pg_terminate_backend(%s)", stuck)
        holder.execute("SELECT pg_advisory_unlock(%s)", (lock_key,))

        assert not ProbeRecord.objects.exists()
        start_consumer("killed", handlers={"URLExpired": [probe_record]})
        assert wait_until(lambda: _applied_once({event.id}), timeout=10)
        # A later event down the same queue: once it is applied, a second delivery of the first was too.
        marker = publish_committed("URLExpired", SAMPLES["URLExpired"])
        assert wait_until(lambda: _applied_once({marker.id}), timeout=10)
        assert ProbeRecord.objects.filter(event_id=event.id).count() == 1 and ProbeRecord.objects.count() == 2
        assert ProcessedEvent.objects.filter(consumer="killed", event_id=event.id).count() == 1
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)
        holder.close()
