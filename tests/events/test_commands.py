"""The commands: relay_outbox and consume run as processes and stop cleanly; events dlq/tail."""

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from apps.events.models import OutboxEvent, ProbeRecord
from apps.events.selectors import dead_letters_list
from tests.events.conftest import BrokerNames, queue_ready
from tests.events.samples import SAMPLES
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, broker: BrokerNames) -> subprocess.Popen:
    env = {
        **os.environ,
        **broker.env(),
        "DJANGO_SETTINGS_MODULE": "config.settings.shortener",
        "DATABASE_URL": f"{settings.POSTGRES_URL}/{connection.settings_dict['NAME']}",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, stderr


def test_relay_and_consumer_processes_deliver_and_stop_gracefully(events_db, broker_names, publish_committed) -> None:
    broker_names.services.add("probe")
    consumer = _manage("consume", "probe", broker=broker_names)
    relay = _manage("relay_outbox", broker=broker_names)
    try:
        assert wait_until(lambda: queue_ready("probe"), timeout=60, interval=0.2)
        event = publish_committed("TaskCommentAdded", SAMPLES["TaskCommentAdded"])
        assert wait_until(lambda: ProbeRecord.objects.filter(event_id=event.id).exists(), timeout=20)
    finally:
        relay_code, relay_log = _stop(relay)
        consumer_code, consumer_log = _stop(consumer)

    assert relay_code == 0 and "relay stopped after 1 events" in relay_log
    assert consumer_code == 0 and "consumer stopped: {'applied': 1" in consumer_log
    assert OutboxEvent.objects.get().sent_at is not None


def test_consume_refuses_a_service_without_handlers(events_db) -> None:
    with pytest.raises(CommandError, match="No event handlers are registered for 'nobody'"):
        call_command("consume", "nobody")


def test_dlq_list_and_replay_from_the_command_line(start_consumer, raw_publish) -> None:
    start_consumer()
    raw_publish(b'{"id": "x"}', message_id="bad-1", routing_key="url.created")
    assert wait_until(lambda: len(dead_letters_list(service="probe")) == 1, timeout=10)

    listing = io.StringIO()
    call_command("events", "dlq", "list", "probe", stdout=listing)
    first, summary = listing.getvalue().splitlines()
    assert json.loads(first)["event_id"] == "bad-1" and json.loads(first)["kind"] == "invalid"
    assert 'envelope: "type" is a required property' in json.loads(first)["reason"]
    assert summary == "1 dead letter(s) in the probe queue"

    replay = io.StringIO()
    call_command("events", "dlq", "replay", "probe", "--id", "someone-else", stdout=replay)
    assert replay.getvalue().strip() == "replayed 0 dead letter(s) to the probe queue"
    assert len(dead_letters_list(service="probe")) == 1

    call_command("events", "dlq", "replay", "probe", "--id", "bad-1", stdout=replay)
    # Still not an event: it is refused again and lands back in the dead-letter queue, once.
    assert wait_until(lambda: len(dead_letters_list(service="probe")) == 1, timeout=10)
    assert "replayed 1 dead letter(s)" in replay.getvalue()


def test_tail_prints_events_as_json_lines(start_relay, events_db, broker_names, publish_committed) -> None:
    tail = _manage("events", "tail", "--type", "URLCreated", "--count", "1", broker=broker_names)
    try:
        # Publish until the tail's private queue is bound and it has printed one.
        def printed() -> bool:
            publish_committed("URLCreated", SAMPLES["URLCreated"])
            return tail.poll() is not None

        start_relay()
        assert wait_until(printed, timeout=20, interval=0.3)
        stdout, _ = tail.communicate(timeout=5)
    finally:
        if tail.poll() is None:
            tail.kill()
    event = json.loads(stdout.splitlines()[0])
    assert event["type"] == "URLCreated" and event["data"] == SAMPLES["URLCreated"]
