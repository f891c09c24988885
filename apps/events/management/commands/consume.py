"""`manage.py consume <service>`: this service's event handlers on its durable queue."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.events.consumer import runner_for_service
from apps.events.management.commands._signals import stop_on_signals


class Command(BaseCommand):
    help = (
        "Consume events for a service (its queue, bindings, retries and dead letters). "
        "`consume probe` records every event in events_proberecord. Stops on SIGINT/SIGTERM."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("service", help="the consuming service: names its queue (<EVENTS_QUEUE_PREFIX>.<service>)")
        parser.add_argument("--prefetch", type=int, default=None)
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args: Any, service: str, prefetch: int | None, batch_size: int | None, **options: Any) -> None:
        stop = stop_on_signals()
        try:
            runner = runner_for_service(service, prefetch=prefetch, batch_size=batch_size)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"consuming {runner.queues.main} for {sorted(runner.handlers)}")
        runner.run(stop=stop)
        self.stderr.write(f"consumer stopped: {dict(runner.counts)}")
