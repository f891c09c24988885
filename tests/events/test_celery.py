"""Celery on RabbitMQ: routing per service, the safety settings, and a real worker running a thin task."""

import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.events.models import OutboxEvent
from apps.events.outbox import publish
from apps.events.tasks import outbox_purge
from config.celery import app, route_task
from tests.events.samples import SAMPLES
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_each_service_s_tasks_go_to_its_own_queue() -> None:
    assert route_task("apps.identity.tasks.mail_send", (), {}, {}) == {"queue": "identity"}
    assert route_task("apps.projects.tenants.tasks.tenant_provision", (), {}, {}) == {"queue": "projects"}
    # The events app lives in every service: its tasks run where they were sent from.
    assert route_task("apps.events.tasks.outbox_purge", (), {}, {}) == {"queue": settings.SERVICE_NAME}


def test_tasks_are_confirmed_on_send_and_acked_only_after_they_ran() -> None:
    assert app.conf.broker_transport_options["confirm_publish"] is True
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_url.startswith("amqp://")


@pytest.mark.django_db(transaction=True)
def test_a_worker_on_rabbitmq_runs_the_outbox_purge_task() -> None:
    with transaction.atomic():
        for _ in range(3):
            publish("URLExpired", SAMPLES["URLExpired"], tenant_id=None, actor_id=None)
    OutboxEvent.objects.update(sent_at=timezone.now() - timedelta(hours=2))
    queue = f"test-events-celery-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.shortener",
        "DATABASE_URL": f"{settings.POSTGRES_URL}/{connection.settings_dict['NAME']}",
    }
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "config.celery", "worker", "-Q", queue, "-P", "solo",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        outbox_purge.apply_async(kwargs={"older_than_hours": 1}, queue=queue)
        assert wait_until(lambda: not OutboxEvent.objects.exists(), timeout=30, interval=0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, log = worker.communicate(timeout=30)
        with app.connection_for_write() as broker:
            broker.default_channel.queue_delete(queue)
    assert worker.returncode == 0, log
