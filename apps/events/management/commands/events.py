"""`manage.py events tail [--type T]` and `manage.py events dlq list|replay <service>`."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.events import selectors, services
from apps.events.catalog import EVENT_TYPES
from apps.events.management.commands._signals import stop_on_signals


class Command(BaseCommand):
    help = "Developer tools for events: watch the live stream, inspect and replay dead letters."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        tail = actions.add_parser("tail", help="print live events as JSON lines until Ctrl-C")
        tail.add_argument("--type", dest="event_type", choices=EVENT_TYPES, default=None)
        tail.add_argument("--count", type=int, default=None, help="stop after this many events")
        dlq = actions.add_parser("dlq", help="a consumer's dead-letter queue")
        dlq_actions = dlq.add_subparsers(dest="dlq_action", required=True)
        listing = dlq_actions.add_parser("list", help="show dead letters (they stay in the queue)")
        listing.add_argument("service")
        listing.add_argument("--limit", type=int, default=100)
        replay = dlq_actions.add_parser("replay", help="send dead letters back to the service's queue")
        replay.add_argument("service")
        replay.add_argument("--id", dest="event_ids", action="append", default=None, help="only this event id")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "tail":
            self._tail(event_type=options["event_type"], count=options["count"])
        elif options["dlq_action"] == "list":
            self._dlq_list(service=options["service"], limit=options["limit"])
        elif options["dlq_action"] == "replay":
            ids = options["event_ids"]
            replayed = services.dead_letters_replay(service=options["service"], event_ids=set(ids) if ids else None)
            self.stdout.write(f"replayed {replayed} dead letter(s) to the {options['service']} queue")
        else:  # pragma: no cover - argparse refuses other choices
            raise CommandError("unknown action")

    def _tail(self, *, event_type: str | None, count: int | None) -> None:
        stop = stop_on_signals()
        for seen, event in enumerate(selectors.events_tail(event_type=event_type, stop=stop), start=1):
            self.stdout.write(json.dumps(event, ensure_ascii=False))
            self.stdout.flush()
            if count is not None and seen >= count:
                break

    def _dlq_list(self, *, service: str, limit: int) -> None:
        letters = selectors.dead_letters_list(service=service, limit=limit)
        for letter in letters:
            self.stdout.write(
                json.dumps(
                    {
                        "event_id": letter.event_id,
                        "type": letter.event_type,
                        "kind": letter.kind,
                        "reason": letter.reason,
                        "attempts": letter.attempts,
                        "dead_at": letter.dead_at,
                    },
                    ensure_ascii=False,
                )
            )
        self.stdout.write(f"{len(letters)} dead letter(s) in the {service} queue")
