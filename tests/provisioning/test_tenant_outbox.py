"""A database-mode tenant's events commit in its own database and reach the platform exactly once,
even when the process dies between the tenant's commit and the service's outbox (issue 8, item 8).

The fault tests freeze a real projects process at a named point (apps/events/faults.py) and kill
it with SIGKILL there; then a real relay (with its sweeper) and a real consumer on RabbitMQ run."""

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections, transaction

from apps.events.consumer import ConsumerRunner, PostgresStore, handlers_for_service
from apps.events.models import OutboxEvent, ProbeRecord, ProcessedEvent
from apps.events.outbox import publish
from apps.events.relay import OutboxRelay
from apps.events.transports import transport_connect
from apps.events.transports.base import ConsumerQueues
from apps.projects.db import tenant_db
from apps.projects.models import Project
from apps.projects.permissions import CallerClaims
from apps.projects.services import projects as project_services
from apps.projects.tenants.context import tenant_alias, tenant_context
from apps.projects.tenants.models import Tenant
from apps.projects.tenants.outbox import tenant_outbox_move, tenant_outboxes_sweep
from tests.events.samples import SAMPLES
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
CONSUMER = "probe"  # binds every event type; records each application in events_proberecord


def _owner(tenant: Tenant) -> CallerClaims:
    return CallerClaims(
        user_id="owner-1", tenant_id=str(tenant.tenant_id), roles=("owner",), permissions=frozenset({"create_project"})
    )


def tenant_outbox_ids(tenant: Tenant) -> list[str]:
    """Event ids waiting in the tenant database's own outbox, in order."""
    with tenant_context(tenant), connections[tenant_alias(tenant)].cursor() as cursor:
        cursor.execute("SELECT event_id::text FROM events_outboxevent ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def central_ids(tenant: Tenant) -> list[str]:
    rows = OutboxEvent.objects.filter(tenant_id=str(tenant.tenant_id)).order_by("id")
    return [str(event_id) for event_id in rows.values_list("event_id", flat=True)]


@pytest.fixture
def wire(settings) -> Iterator[Callable[[], tuple[OutboxRelay, ConsumerRunner]]]:
    """Starts a relay (its sweeper every 0.2 s) and the probe consumer, on this test's own names."""
    tag = f"test-tenant-outbox-{uuid.uuid4().hex[:10]}"
    settings.EVENTS_EXCHANGE = tag
    settings.EVENTS_QUEUE_PREFIX = tag
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start() -> tuple[OutboxRelay, ConsumerRunner]:
        relay = OutboxRelay(sweepers=[tenant_outboxes_sweep], sweep_seconds=0.2, idle_poll_seconds=0.2)
        runner = ConsumerRunner(service=CONSUMER, handlers=handlers_for_service(CONSUMER), store=PostgresStore())
        runner._connect()  # its queue exists before anything is relayed
        for target, kwargs in ((relay.run, {}), (runner.run, {"idle_wait": 0.1})):
            thread = threading.Thread(target=target, kwargs={"stop": stop, **kwargs}, daemon=True)
            thread.start()
            threads.append(thread)
        return relay, runner

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    transport = transport_connect(name="test-cleanup")
    try:
        transport.queues_delete(ConsumerQueues.for_service(CONSUMER, prefix=tag), exchange=tag)
        transport.exchange_delete(tag)
    finally:
        transport.close()


def later_event_applied() -> None:
    """Publishes an event after everything so far and waits until the consumer applied it: what was
    sent before it (a duplicate, say) has been delivered by then too."""
    with transaction.atomic():
        marker = publish("URLExpired", SAMPLES["URLExpired"], tenant_id=None, actor_id=None)
    assert wait_until(lambda: ProbeRecord.objects.filter(event_id=marker.id).exists(), timeout=30)


def writer_killed_at(point: str, *, tenant: Tenant, key: str, breakpoints: Path) -> None:
    """Runs tests/provisioning/outbox_writer.py until it reaches `point`, then SIGKILLs it there."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.projects",
        "DATABASE_URL": f"{settings.POSTGRES_URL}/{connections['default'].settings_dict['NAME']}",
        "PYTHONPATH": str(ROOT),
        "EVENTS_FAULT_BREAKPOINT": point,
        "EVENTS_FAULT_BREAKPOINT_DIR": str(breakpoints),
    }
    victim = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/provisioning/outbox_writer.py"), str(tenant.tenant_id), key],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        reached = breakpoints / f"{point}.reached"
        if not wait_until(lambda: reached.exists() or victim.poll() is not None, timeout=60) or not reached.exists():
            victim.kill()
            pytest.fail(f"the writer never reached {point}:\n{victim.communicate()[0]}")
        assert reached.read_text() == str(victim.pid)
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(10) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)


def test_an_event_is_written_in_the_tenant_database_s_own_transaction(new_tenant) -> None:
    tenant = new_tenant(isolation="database")

    with tenant_context(tenant), transaction.atomic(using=tenant_db()):
        project_services.project_create(caller=_owner(tenant), key="SAME", name="Same transaction")
        waiting = tenant_outbox_ids(tenant)
        assert len(waiting) == 2  # ProjectCreated, ProjectUserAdded: beside the board rows, not yet committed
        assert central_ids(tenant) == []

    assert tenant_outbox_ids(tenant) == []  # moved right after the commit ...
    assert central_ids(tenant) == waiting  # ... in order, into the service's outbox


def test_the_move_is_idempotent_by_event_id(new_tenant) -> None:
    tenant = new_tenant(isolation="database")
    with tenant_context(tenant):
        project_services.project_create(caller=_owner(tenant), key="ONCE", name="Once")
    moved = central_ids(tenant)
    # As after a crash between the central commit and the tenant's delete: the rows are back.
    with tenant_context(tenant), connections[tenant_alias(tenant)].cursor() as cursor:
        for row in OutboxEvent.objects.filter(tenant_id=str(tenant.tenant_id)).order_by("id"):
            cursor.execute(
                "INSERT INTO events_outboxevent (event_id, event_type, routing_key, tenant_id, aggregate_id, body)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [row.event_id, row.event_type, row.routing_key, row.tenant_id, row.aggregate_id, row.body],
            )

    assert tenant_outbox_move(tenant) == 0  # nothing new to the service's outbox
    assert central_ids(tenant) == moved  # nothing twice
    assert tenant_outbox_ids(tenant) == []


@pytest.mark.parametrize("point", ["tenant_outbox.before_move", "tenant_outbox.after_central_commit"])
def test_a_process_killed_between_the_two_commits_loses_no_event_and_applies_none_twice(
    new_tenant, wire, tmp_path: Path, point: str
) -> None:
    tenant = new_tenant(isolation="database")

    writer_killed_at(point, tenant=tenant, key="KILL", breakpoints=tmp_path)

    # The board change committed in the tenant's database, and its events with it.
    with tenant_context(tenant):
        assert Project.objects.using(tenant_db()).filter(key="KILL").exists()
    waiting = tenant_outbox_ids(tenant)
    assert len(waiting) == 2
    if point == "tenant_outbox.before_move":
        assert central_ids(tenant) == []  # the old design lost these here
    else:
        assert central_ids(tenant) == waiting  # copied, but the process died before clearing its outbox

    relay, _ = wire()  # the relay's sweeper moves what waits; the consumer applies it
    assert wait_until(lambda: ProbeRecord.objects.filter(event_id__in=waiting).count() == 2, timeout=30)
    later_event_applied()

    assert central_ids(tenant) == waiting  # no event lost, none twice in the outbox
    assert tenant_outbox_ids(tenant) == []
    assert relay.stats.swept == (2 if point == "tenant_outbox.before_move" else 0)
    for event_id in waiting:
        assert ProbeRecord.objects.filter(event_id=event_id).count() == 1
        assert ProcessedEvent.objects.filter(consumer=CONSUMER, event_id=event_id).count() == 1

    # Delivered again (a relay that died before marking them sent): still applied once each.
    OutboxEvent.objects.filter(event_id__in=waiting).update(sent_at=None)
    assert wait_until(lambda: not OutboxEvent.objects.filter(event_id__in=waiting, sent_at=None).exists(), timeout=30)
    later_event_applied()
    assert ProbeRecord.objects.filter(event_id__in=waiting).count() == 2
