"""A consumer process whose handler records the event, then blocks on an advisory lock the test holds.

The test kills this process mid-message (its transaction never commits) and checks that
the event is delivered again and applied once. Run by tests/events/test_failures.py.
"""

import os
import sys

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.shortener")
    django.setup()
    from django.db import connection

    from apps.events.catalog import Envelope
    from apps.events.consumer import ConsumerRunner, PostgresStore, probe_record
    from apps.events.management.commands._signals import stop_on_signals

    lock_key = int(sys.argv[2])

    def record_then_block(event: Envelope) -> None:
        probe_record(event)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key])

    runner = ConsumerRunner(service=sys.argv[1], handlers={"URLExpired": [record_then_block]}, store=PostgresStore())
    runner.run(stop=stop_on_signals())


if __name__ == "__main__":
    main()
