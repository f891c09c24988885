"""Turns the visits the gateway answered into URLAccessed events, continuously."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from apps.shortener.services import visits_relay


class Command(BaseCommand):
    help = "Moves visits from shortener_visitinbox into the outbox (one URLAccessed each), until stopped."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--once", action="store_true", help="drain what is there, then stop")

    def handle(self, *args: object, **options: object) -> None:
        moved_total, last_report = 0, time.monotonic()
        while True:
            close_old_connections()
            moved = visits_relay()
            moved_total += moved
            if time.monotonic() - last_report >= 10 and moved_total:
                self.stdout.write(f"relay_visits: {moved_total} visits became events")
                moved_total, last_report = 0, time.monotonic()
            if moved:
                continue
            if options["once"]:
                return
            time.sleep(settings.SHORTENER_VISITS_POLL_SECONDS)
