"""`manage.py relay_outbox`: this service's outbox -> RabbitMQ. One process per PostgreSQL service."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.events.management.commands._signals import stop_on_signals
from apps.events.relay import OutboxRelay


class Command(BaseCommand):
    help = "Relay committed outbox rows to the events exchange, with publisher confirms. Stops on SIGINT/SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default", help="Django database alias holding the outbox")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args: Any, database: str, batch_size: int | None, **options: Any) -> None:
        stop = stop_on_signals()
        relay = OutboxRelay(using=database, batch_size=batch_size)
        self.stderr.write(f"relaying outbox of {database!r} to exchange {relay.exchange!r}")
        relay.run(stop=stop)
        self.stderr.write(f"relay stopped after {relay.stats.published} events in {relay.stats.batches} batches")
