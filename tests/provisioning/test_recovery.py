"""Provisioning recovers by itself: a template database that vanished is made again, and a failed
attempt is retried with growing delays until it works or the retries run out (issue 8, item 7).

Real PostgreSQL throughout; an unreachable server is a real TCP relay that is down."""

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from apps.events.catalog import envelope_parse
from apps.events.models import OutboxEvent
from apps.events.relay import database_conninfo
from apps.projects.tenants import services, tasks
from apps.projects.tenants.models import ProvisioningStatus, Tenant
from config.celery import app
from tests.helpers import wait_until
from tests.tcp_relay import TcpRelay

ROOT = Path(__file__).resolve().parents[2]


def _template_exists() -> bool:
    with psycopg.connect(f"{settings.POSTGRES_URL}/postgres", autocommit=True) as server:
        row = server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [settings.TENANT_TEMPLATE_DATABASE])
        return row.fetchone() is not None


def _template_drop() -> None:
    with psycopg.connect(f"{settings.POSTGRES_URL}/postgres", autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{settings.TENANT_TEMPLATE_DATABASE}" WITH (FORCE)')


def _reports(tenant: Tenant) -> list[tuple[str, dict]]:
    rows = OutboxEvent.objects.filter(tenant_id=str(tenant.tenant_id)).order_by("id").values_list("body", flat=True)
    return [(event.type, event.data) for event in (envelope_parse(body.encode()) for body in rows)]


@pytest.fixture
def flaky_placement(settings: pytest.FixtureRequest) -> Iterator[TcpRelay]:
    """A placement whose PostgreSQL is reached through a relay the test takes down and up."""
    target = urlsplit(settings.POSTGRES_URL)
    relay = TcpRelay(target=(target.hostname, target.port or 5432))
    flaky = relay.url_through(settings.POSTGRES_URL)
    settings.TENANT_DATABASE_SERVERS = {**settings.TENANT_DATABASE_SERVERS, "flaky": flaky}
    yield relay
    relay.down()


def test_a_template_database_dropped_between_signups_is_made_again(new_tenant) -> None:
    first = new_tenant(isolation="database")  # the process now remembers a ready template
    _template_drop()

    second = new_tenant(isolation="database")

    assert (first.status, second.status) == (ProvisioningStatus.ACTIVE, ProvisioningStatus.ACTIVE)
    assert _template_exists()


def test_a_template_database_dropped_mid_run_is_made_again(new_tenant) -> None:
    new_tenant(isolation="database")

    def drop_after_the_template_check(tenant: Tenant, step: str) -> None:
        if step == "template_ready":
            _template_drop()  # between "the template is ready" and CREATE DATABASE ... TEMPLATE

    tenant = new_tenant(isolation="database", on_step=drop_after_the_template_check)

    assert tenant.status == ProvisioningStatus.ACTIVE, tenant.failure_reason
    assert "database_created" in tenant.steps_done
    assert _template_exists()


def test_a_failed_provisioning_is_retried_with_growing_delays_until_it_works(
    new_tenant, flaky_placement: TcpRelay, settings
) -> None:
    settings.TENANT_PROVISIONING_RETRY_SECONDS = [5, 20, 60]
    tenant = new_tenant(isolation="database", placement="flaky")  # the relay is down: the server is unreachable
    try:
        assert (tenant.status, tenant.provisioning_attempts) == (ProvisioningStatus.FAILED, 1)
        assert "OperationalError" in tenant.failure_reason
        first_gap = tenant.next_attempt_at - timezone.now()
        assert timedelta(seconds=3) < first_gap <= timedelta(seconds=5)
        services.tenant_provisioning_report(tenant=tenant)

        assert services.tenant_provisioning_retries_due() == []  # not due yet

        [second] = services.tenant_provisioning_retries_due(now=tenant.next_attempt_at)
        assert (second.status, second.provisioning_attempts) == (ProvisioningStatus.FAILED, 2)
        assert timedelta(seconds=18) < second.next_attempt_at - timezone.now() <= timedelta(seconds=20)

        flaky_placement.up()  # the server is back
        [third] = services.tenant_provisioning_retries_due(now=second.next_attempt_at)
        assert third.status == ProvisioningStatus.ACTIVE, third.failure_reason
        assert Tenant.objects.get(pk=tenant.pk).next_attempt_at is None

        reports = _reports(tenant)
        failed, provisioned = "TenantProvisioningFailed", "TenantProvisioned"
        assert [kind for kind, _ in reports] == [failed, failed, provisioned]
        assert [(data["attempt"], data["max_attempts"]) for _, data in reports[:2]] == [(1, 4), (2, 4)]
        assert all(data["next_attempt_at"] for _, data in reports[:2])  # tenancy keeps it `provisioning`
    finally:
        if Tenant.objects.get(pk=tenant.pk).status != ProvisioningStatus.ACTIVE:
            flaky_placement.up()  # the test stopped before the server came back
        services.tenant_destroy(tenant=Tenant.objects.get(pk=tenant.pk))


def test_retries_run_out_and_the_tenant_stays_failed_with_its_reason(
    new_tenant, flaky_placement: TcpRelay, settings
) -> None:
    settings.TENANT_PROVISIONING_RETRY_SECONDS = [0, 0]  # due at once: the beat task picks them up
    tenant = new_tenant(isolation="database", placement="flaky")
    try:
        attempted = [tenant.slug]
        while Tenant.objects.get(pk=tenant.pk).next_attempt_at is not None:
            attempted += tasks.provisioning_retries_due.apply().get()
        final = Tenant.objects.get(pk=tenant.pk)
        assert attempted == [tenant.slug] * 3  # the first attempt and two retries
        assert (final.status, final.provisioning_attempts) == (ProvisioningStatus.FAILED, 3)
        assert "OperationalError" in final.failure_reason
        [*_, (kind, data)] = _reports(tenant)
        assert (kind, data["attempt"], data["next_attempt_at"]) == ("TenantProvisioningFailed", 3, None)
        assert services.tenant_provisioning_retries_due(now=timezone.now() + timedelta(days=1)) == []
    finally:
        flaky_placement.up()
        services.tenant_destroy(tenant=Tenant.objects.get(pk=tenant.pk))


def test_a_failure_that_no_retry_can_fix_is_not_retried(new_tenant) -> None:
    tenant = new_tenant(isolation="database", placement="no-such-server")

    assert tenant.status == ProvisioningStatus.FAILED
    assert tenant.next_attempt_at is None and tenant.provisioning_attempts == 1
    assert "no-such-server" in tenant.failure_reason
    assert services.tenant_provisioning_retries_due(now=timezone.now() + timedelta(days=1)) == []
    Tenant.objects.filter(pk=tenant.pk).delete()  # nothing was made on any server


def test_a_new_request_starts_a_fresh_round_of_attempts(new_tenant, flaky_placement: TcpRelay, settings) -> None:
    settings.TENANT_PROVISIONING_RETRY_SECONDS = [60]
    tenant = new_tenant(isolation="database", placement="flaky")
    try:
        assert tenant.provisioning_attempts == 1
        flaky_placement.up()
        again = services.tenant_provision(
            tenant_id=tenant.tenant_id, slug=tenant.slug, name=tenant.name, isolation="database", placement="flaky"
        )
        assert again.status == ProvisioningStatus.ACTIVE
        assert (again.provisioning_attempts, again.next_attempt_at) == (0, None)
    finally:
        services.tenant_destroy(tenant=Tenant.objects.get(pk=tenant.pk))


def test_a_real_worker_runs_the_due_retries(new_tenant, flaky_placement: TcpRelay, settings) -> None:
    """The beat job's task, sent to a real Celery worker on RabbitMQ, brings a failed tenant up."""
    settings.TENANT_PROVISIONING_RETRY_SECONDS = [0]
    tenant = new_tenant(isolation="database", placement="flaky")
    assert tenant.status == ProvisioningStatus.FAILED and tenant.next_attempt_at is not None
    flaky_placement.up()
    queue = f"test-provisioning-retries-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.projects",
        "DATABASE_URL": f"{settings.POSTGRES_URL}/{connection.settings_dict['NAME']}",
        "TENANT_DATABASE_SERVERS": ",".join(f"{k}={v}" for k, v in settings.TENANT_DATABASE_SERVERS.items()),
        "TENANT_TEMPLATE_DATABASE": settings.TENANT_TEMPLATE_DATABASE,
        "TENANT_DATABASE_PREFIX": settings.TENANT_DATABASE_PREFIX,
        "TENANT_PROVISIONING_RETRY_SECONDS": "0",
    }
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "config.celery", "worker", "-Q", queue, "-P", "solo",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        tasks.provisioning_retries_due.apply_async(queue=queue)
        assert wait_until(lambda: Tenant.objects.get(pk=tenant.pk).status == ProvisioningStatus.ACTIVE, timeout=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, log = worker.communicate(timeout=30)
        with app.connection_for_write() as broker:
            broker.default_channel.queue_delete(queue)
        services.tenant_destroy(tenant=Tenant.objects.get(pk=tenant.pk))
    assert worker.returncode == 0, log
    assert [kind for kind, _ in _reports(tenant)][-1:] == ["TenantProvisioned"]


def test_two_consumers_that_both_find_the_template_gone_make_it_once(new_tenant) -> None:
    """Each thread has its own connections, as two consumer processes would; the exclusive lock
    lets one of them make the template, and the other clones it once it is whole."""
    new_tenant(isolation="database")
    _template_drop()
    services._templates_ready.clear()  # neither has seen it yet
    results: list[Tenant] = []
    errors: list[BaseException] = []

    def provision() -> None:
        try:
            results.append(new_tenant(isolation="database"))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=provision) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert [tenant.status for tenant in results] == [ProvisioningStatus.ACTIVE] * 2, [
        tenant.failure_reason for tenant in results
    ]
    assert _template_exists()


def test_a_schema_template_dropped_mid_run_fails_the_attempt_cleanly_and_the_retry_works(new_tenant, settings) -> None:
    """Schema mode's variant, inside a transaction as the TenantCreated handler runs in the consumer's:
    the failed clone is recorded (the transaction stays usable), and the retry makes the template again."""
    settings.TENANT_PROVISIONING_RETRY_SECONDS = [0]
    new_tenant()  # the template schema is ready and remembered

    def drop_after_the_template_check(tenant: Tenant, step: str) -> None:
        if step == "template_ready":
            with psycopg.connect(database_conninfo(), autocommit=True) as other:
                other.execute(f'DROP SCHEMA "{settings.TENANT_TEMPLATE_SCHEMA}" CASCADE')

    with transaction.atomic():  # what PostgresStore holds around a handler
        tenant = new_tenant(on_step=drop_after_the_template_check)
        assert (tenant.status, tenant.provisioning_attempts) == (ProvisioningStatus.FAILED, 1)
        services.tenant_provisioning_report(tenant=tenant)  # the transaction is still usable

    [retried] = services.tenant_provisioning_retries_due()
    assert retried.status == ProvisioningStatus.ACTIVE, retried.failure_reason
    assert (retried.provisioning_attempts, retried.next_attempt_at) == (1, None)
