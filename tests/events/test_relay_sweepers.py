"""The relay also moves events from outboxes in other databases (sweepers), and a sweeper that
fails never stops it relaying (database-mode tenants' outboxes: tests/provisioning/test_tenant_outbox.py)."""

import threading

from django.db import transaction

from apps.events.models import ProbeRecord
from apps.events.outbox import publish
from tests.events.samples import SAMPLES
from tests.helpers import wait_until


def test_events_a_sweeper_moves_in_are_relayed_and_a_failing_sweeper_is_survived(
    start_relay, start_consumer, publish_committed
) -> None:
    waiting = [SAMPLES["URLExpired"]] * 3  # as if in another database's outbox
    calls = {"broken": 0}
    moved_all = threading.Event()

    def broken() -> int:
        calls["broken"] += 1
        raise ConnectionError("that database is down")

    def mover() -> int:
        if not waiting:
            return 0
        with transaction.atomic():
            for data in waiting:
                publish("URLExpired", data, tenant_id=None, actor_id=None)
        count = len(waiting)
        waiting.clear()
        moved_all.set()
        return count

    start_consumer()
    relay = start_relay(sweepers=[broken, mover], sweep_seconds=0.1, idle_poll_seconds=0.1)

    assert moved_all.wait(10)
    assert wait_until(lambda: ProbeRecord.objects.filter(event_type="URLExpired").count() == 3, timeout=20)
    assert relay.stats.swept == 3
    assert wait_until(lambda: calls["broken"] >= 2, timeout=5)  # it keeps being tried, and relaying goes on
    assert "that database is down" in relay.stats.last_error
    publish_committed("URLExpired", SAMPLES["URLExpired"])  # and the relay still sends its own outbox
    assert wait_until(lambda: ProbeRecord.objects.filter(event_type="URLExpired").count() == 4, timeout=20)
