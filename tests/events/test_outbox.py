"""publish() writes to the outbox in the caller's transaction, and only there."""

import psycopg
import pytest
from django.db import transaction
from django.utils import timezone

from apps.events.catalog import InvalidEvent
from apps.events.models import OutboxEvent, ProbeRecord
from apps.events.outbox import OutboxError, publish
from apps.events.relay import NOTIFY_CHANNEL, database_conninfo
from tests.events.samples import SAMPLES


def _a_change() -> None:
    """Stands for the caller's own write (any real row in the same database)."""
    ProbeRecord.objects.create(consumer="caller", event_id="00000000-0000-0000-0000-000000000001",
                               event_type="URLExpired", occurred_at=timezone.now())  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_publish_outside_a_transaction_is_refused_and_writes_nothing() -> None:
    with pytest.raises(OutboxError, match=r"must run inside transaction.atomic"):
        publish("URLExpired", SAMPLES["URLExpired"], tenant_id=None, actor_id=None)
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_committed_publish_leaves_one_outbox_row_with_the_envelope() -> None:
    with transaction.atomic():
        envelope = publish("TaskCreated", SAMPLES["TaskCreated"], tenant_id="t-1", actor_id="12", aggregate_id="41")

    row = OutboxEvent.objects.get()
    assert (str(row.event_id), row.event_type, row.routing_key) == (envelope.id, "TaskCreated", "task.created")
    assert (row.tenant_id, row.aggregate_id, row.sent_at) == ("t-1", "41", None)
    assert row.body == envelope.to_json().decode()


@pytest.mark.django_db(transaction=True)
def test_an_invalid_event_fails_the_callers_transaction() -> None:
    with pytest.raises(InvalidEvent), transaction.atomic():
        _a_change()
        publish("URLExpired", {"code": "Ab3dE"}, tenant_id=None, actor_id=None)

    assert not ProbeRecord.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_outbox_row() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        _a_change()
        publish("URLExpired", SAMPLES["URLExpired"], tenant_id=None, actor_id=None)
        raise RuntimeError("the caller changed its mind")

    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_relay_is_woken_on_commit_and_not_before() -> None:
    with psycopg.connect(database_conninfo(), autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        with transaction.atomic():
            for _ in range(3):
                publish("URLExpired", SAMPLES["URLExpired"], tenant_id=None, actor_id=None)
            assert list(listener.notifies(timeout=0.2)) == []
        woken = list(listener.notifies(timeout=2, stop_after=1))
        woken += list(listener.notifies(timeout=0.2))

        with pytest.raises(RuntimeError), transaction.atomic():
            publish("URLExpired", SAMPLES["URLExpired"], tenant_id=None, actor_id=None)
            raise RuntimeError("rolled back")
        after_rollback = list(listener.notifies(timeout=0.3))

    assert [notify.channel for notify in woken] == [NOTIFY_CHANNEL]  # one wake-up per transaction
    assert after_rollback == []
