"""The development SMTP server: what Django's SMTP backend sends is kept, whole, and readable."""

import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from tests.helpers import free_port
from tests.mail import mailcatcher

ROOT = Path(__file__).resolve().parents[2]
mail_read = mailcatcher().mail_read
mail_to = mailcatcher().mail_to
mailcatcher_run = mailcatcher().mailcatcher_run


def _send(port: int, *, to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = "Kanban <no-reply@localhost>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
        smtp.send_message(message)


def test_each_accepted_message_is_kept_in_order_with_its_body(tmp_path: Path) -> None:
    port = free_port()
    with mailcatcher_run(port=port, directory=tmp_path):
        _send(port, to="ana@example.test", subject="Verify your address", body="Open https://x.test/verify/abc")
        _send(port, to="bo@example.test", subject="Second", body="ünïcode body")
    messages = mail_read(tmp_path)
    assert [mail.subject for mail in messages] == ["Verify your address", "Second"]
    assert "https://x.test/verify/abc" in messages[0].text
    assert messages[1].text.strip() == "ünïcode body"
    assert [mail.subject for mail in mail_to(tmp_path, "BO@example.test")] == ["Second"]


def test_list_and_show_print_what_arrived(tmp_path: Path) -> None:
    port = free_port()
    with mailcatcher_run(port=port, directory=tmp_path):
        _send(port, to="ana@example.test", subject="Hello there", body="the body")
    script = [sys.executable, str(ROOT / "platform" / "mailcatcher.py")]
    listed = subprocess.run([*script, "list", "--dir", str(tmp_path)], capture_output=True, text=True, check=True)
    assert "ana@example.test" in listed.stdout and "Hello there" in listed.stdout
    shown = subprocess.run([*script, "show", "--dir", str(tmp_path)], capture_output=True, text=True, check=True)
    assert "Subject: Hello there" in shown.stdout and "the body" in shown.stdout
    empty = subprocess.run([*script, "list", "--dir", str(tmp_path / "none")], capture_output=True, text=True)
    assert empty.returncode == 0 and "no mail" in empty.stdout
