#!/usr/bin/env python3
"""A real SMTP server for development and tests: it keeps every message it accepts, to read later.

    python platform/mailcatcher.py serve --port 1025 --dir .data/mail   # what the launcher runs
    python platform/mailcatcher.py list --dir .data/mail                # what `make mail` prints
    python platform/mailcatcher.py show --dir .data/mail [N]            # one message (default: the newest)

Services send through Django's SMTP backend (EMAIL_HOST, EMAIL_PORT) exactly as they would to
a production relay; nothing leaves the machine. Each message is one RFC 5322 file,
<received-ns>-<n>.eml, so a test or a developer reads it with the standard `email` parser.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import itertools
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

_sequence = itertools.count(1)


class MailboxHandler:
    """Writes each accepted message to a file; the write is atomic, so a reader never sees half of one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        recipients = ", ".join(envelope.rcpt_tos)
        header = f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {recipients}\r\n".encode()
        name = f"{time.time_ns()}-{next(_sequence):06d}.eml"
        partial = self.directory / f".{name}.tmp"
        partial.write_bytes(header + content)
        partial.rename(self.directory / name)
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class StoredMail:
    path: Path
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message.get("To", ""))

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""


def mail_read(directory: Path) -> list[StoredMail]:
    """Every message in the directory, oldest first."""
    if not directory.is_dir():
        return []
    messages = []
    for path in sorted(directory.glob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        messages.append(StoredMail(path=path, message=parsed))
    return messages


def mail_to(directory: Path, address: str) -> list[StoredMail]:
    return [mail for mail in mail_read(directory) if address.lower() in mail.to.lower()]


@contextmanager
def mailcatcher_run(*, host: str = "127.0.0.1", port: int, directory: Path) -> Iterator[Controller]:
    """The SMTP server on a background thread, for as long as the block runs (tests use this)."""
    controller = Controller(MailboxHandler(directory), hostname=host, port=port, ready_timeout=10)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def _serve(args: argparse.Namespace) -> int:
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    with mailcatcher_run(host=args.host, port=args.port, directory=args.dir):
        print(f"mailcatcher | SMTP on {args.host}:{args.port}, messages in {args.dir}", flush=True)
        stopped.wait()
    return 0


def _list(args: argparse.Namespace) -> int:
    messages = mail_read(args.dir)
    if not messages:
        print(f"no mail in {args.dir}")
        return 0
    for number, mail in enumerate(messages, start=1):
        print(f"{number:>4}  {mail.message.get('Date', '')[:31]:<31}  {mail.to[:40]:<40}  {mail.subject}")
    print(f"\n{len(messages)} message(s); `make mail N=<number>` shows one")
    return 0


def _show(args: argparse.Namespace) -> int:
    messages = mail_read(args.dir)
    if not messages:
        print(f"no mail in {args.dir}")
        return 0
    index = (args.number or len(messages)) - 1
    if not 0 <= index < len(messages):
        print(f"there are {len(messages)} message(s); pick 1 to {len(messages)}", file=sys.stderr)
        return 2
    mail = messages[index]
    for name in ("From", "To", "Date", "Subject"):
        print(f"{name}: {mail.message.get(name, '')}")
    print()
    print(mail.text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the SMTP server until SIGINT/SIGTERM")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=1025)
    for command in (serve, commands.add_parser("list", help="one line per message")):
        command.add_argument("--dir", type=Path, default=Path(".data/mail"))
    show = commands.add_parser("show", help="print one message")
    show.add_argument("--dir", type=Path, default=Path(".data/mail"))
    show.add_argument("number", type=int, nargs="?", help="as numbered by `list`; default: the newest")
    args = parser.parse_args(argv)
    return {"serve": _serve, "list": _list, "show": _show}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
