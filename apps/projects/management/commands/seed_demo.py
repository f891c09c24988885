from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.projects.demo import DemoNotReady, demo_seed


class Command(BaseCommand):
    help = "Fill the demo tenant with project DEMO, its board and cards (development only; after tenancy's seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for the demo tenant")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_SEED_ALLOWED:
            raise CommandError("seed_demo is for development only: DJANGO_DEBUG (or DEMO_SEED_ALLOWED) is off")
        self.stdout.write("waiting for the demo tenant to be provisioned...")
        try:
            summary = demo_seed(timeout=options["timeout"])
        except DemoNotReady as error:
            raise CommandError(str(error)) from None
        self.stdout.write(summary)
