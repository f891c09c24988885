"""The launcher after `ready`: every exit is reported, a dead process comes back with backoff,
one that keeps crashing is given up on with its last lines and a fix; and no process starts that
has nothing to do. Real processes, real signals, a real SMTP exchange with the mail process."""

import os
import signal
import smtplib
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import free_port_run, wait_until
from tests.mail import mailcatcher

ROOT = Path(__file__).resolve().parents[2]
FAST = {"first_delay": 0.1, "max_delay": 0.4, "stable_after": 30.0, "give_up_after": 4}


def restart_delays(out: str, name: str) -> list[str]:
    """The delays the launcher announced for `name`, as printed ("restarting x in 0.2 s ...")."""
    return [line.split(" in ", 1)[1].split(" s", 1)[0] for line in out.splitlines() if f"restarting {name}" in line]


def tend_until(supervisor: object, done: object, *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the supervisor did not get there in time"
        supervisor.tend()
        time.sleep(0.02)


def test_a_crashing_process_is_restarted_with_growing_delays_then_given_up_on(
    devstack: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    supervisor = devstack.Supervisor()
    supervisor.quiet.add("crashy")
    script = "print('CommandError: the queue is gone', flush=True); raise SystemExit(3)"
    policy = devstack.RestartPolicy(**FAST)
    supervisor.spawn("crashy", [sys.executable, "-c", script], env=dict(os.environ), restart=policy)
    try:
        tend_until(supervisor, lambda: supervisor.given_up)
        out = capsys.readouterr().out
        assert restart_delays(out, "crashy") == ["0.1", "0.2", "0.4"]  # doubling, then the fourth quick crash gives up
        assert out.count("crashy exited with 3") == 4  # every exit is reported
        assert "giving up on crashy: it crashed 4 times in a row" in out
        assert "CommandError: the queue is gone" in out.rsplit("giving up", 1)[0].rsplit("crashy exited", 1)[1]
        assert "fix: its last lines above say why it stops" in out
        assert supervisor.children == [] and supervisor.pending_restarts == []
        supervisor.tend()  # given up means given up: nothing comes back
        assert supervisor.children == []
    finally:
        supervisor.stop_all(timeout=5)


def test_the_delay_drops_back_once_a_process_stayed_up(devstack: ModuleType, capsys: pytest.CaptureFixture) -> None:
    supervisor = devstack.Supervisor()
    supervisor.quiet.add("flaky")
    # Each run lasts longer than stable_after: every crash is a first one.
    policy = devstack.RestartPolicy(first_delay=0.1, max_delay=5.0, stable_after=0.3, give_up_after=2)
    script = "import time; time.sleep(0.5); raise SystemExit(1)"
    supervisor.spawn("flaky", [sys.executable, "-c", script], env=dict(os.environ), restart=policy)
    try:
        tend_until(supervisor, lambda: _restarts(supervisor) >= 3)
        out = capsys.readouterr().out
        assert restart_delays(out, "flaky") == ["0.1", "0.1", "0.1"]
        assert "giving up" not in out
        assert supervisor.given_up == []
    finally:
        supervisor.stop_all(timeout=5)


def _restarts(supervisor: object) -> int:
    return max((child.restarts for child in supervisor.children), default=0)


def test_a_process_killed_with_sigkill_is_reported_and_comes_back(
    devstack: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    supervisor = devstack.Supervisor()
    policy = devstack.RestartPolicy(**FAST)
    first = supervisor.spawn("sleeper", ["sleep", "60"], env=dict(os.environ), restart=policy)
    try:
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=5)
        tend_until(supervisor, lambda: supervisor.children and supervisor.children[0] is not first)
        second = supervisor.children[0]
        assert second.alive and second.process.pid != first.process.pid and second.restarts == 1
        out = capsys.readouterr().out
        assert "sleeper was killed by SIGKILL" in out
        assert "restarting sleeper in 0.1 s" in out
    finally:
        supervisor.stop_all(timeout=5)
    assert supervisor.children == [] and not second.alive


def test_what_a_dead_process_left_in_its_group_is_stopped_before_it_is_restarted(devstack: ModuleType) -> None:
    """A SIGKILLed gunicorn master leaves its workers, which hold the port: they go with it."""
    supervisor = devstack.Supervisor()
    supervisor.quiet.add("master")
    policy = devstack.RestartPolicy(**FAST)
    first = supervisor.spawn("master", ["sh", "-c", "sleep 60 & echo $!; wait"], env=dict(os.environ), restart=policy)
    try:
        assert wait_until(lambda: first.tail)
        orphan = int(first.tail[0])
        first.process.send_signal(signal.SIGKILL)  # the master only, as `kill -9 <pid>` would
        first.process.wait(5)
        assert process_running(orphan)
        tend_until(supervisor, lambda: supervisor.children and supervisor.children[0] is not first)
        assert wait_until(lambda: not process_running(orphan))
    finally:
        supervisor.stop_all(timeout=5)


def process_running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_a_process_without_a_restart_policy_is_reported_and_left_down(
    devstack: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    supervisor = devstack.Supervisor()
    supervisor.spawn("once", [sys.executable, "-c", "raise SystemExit(2)"], env=dict(os.environ))
    tend_until(supervisor, lambda: "once exited with 2" in capsys.readouterr().out)
    supervisor.tend()
    assert supervisor.children == [] and supervisor.pending_restarts == []


def test_processes_with_nothing_to_do_are_not_started(devstack: ModuleType) -> None:
    # Only projects' relay has tenant outboxes to sweep; identity's settings leave the list empty.
    sweeper = devstack.ProcessSpec(
        name="sweeper", command=("x",), settings="identity", requires_setting="EVENTS_RELAY_SWEEPERS"
    )
    runnable, skipped = devstack.processes_runnable([sweeper])
    assert runnable == []
    assert skipped == {"EVENTS_RELAY_SWEEPERS is empty": ["sweeper"]}


def test_every_worker_consumer_and_scheduler_says_what_it_needs(devstack: ModuleType) -> None:
    """A consumer without handlers or a worker without tasks exits at start (CommandError) or idles:
    each one names the code it runs, so the launcher skips it until that code exists."""
    specs = {spec.name: spec for spec in devstack.processes_load()}
    for spec in specs.values():
        if spec.name.startswith("consume-"):
            assert any(module.endswith(".handlers") for module in spec.requires_module), spec.name
        elif spec.name.startswith("worker-"):
            assert any(module.endswith(".tasks") for module in spec.requires_module), spec.name
        elif spec.name.startswith("beat-"):
            # A beat sends its jobs to its service's queue: it runs only where that queue has a worker.
            worker = specs[spec.name.replace("beat-", "worker-", 1)]
            assert spec.requires_setting == "CELERY_BEAT_SCHEDULE", spec.name
            assert spec.settings == worker.settings and set(worker.requires_module) <= set(spec.requires_module)
        elif spec.name.startswith("relay-"):
            assert spec.requires_command == "relay_outbox", spec.name
            service = spec.name.removeprefix("relay-")
            app = ROOT / "apps" / service
            publishes = (app / "services.py").exists() or (app / "services" / "__init__.py").exists()
            assert publishes or f"apps.{service}.services" in spec.requires_module, spec.name


def test_the_mail_process_of_the_process_table_receives_smtp(devstack: ModuleType, tmp_path: Path) -> None:
    specs = {spec.name: spec for spec in devstack.processes_load()}
    mail = specs["mail"]
    assert mail.port == devstack.MAIL_PORT_OFFSET and mail.dev_only
    port_base = free_port_run(devstack.MAIL_PORT_OFFSET + 1)
    env = devstack.stack_env(
        base_env=dict(os.environ),
        urls=devstack.BackingUrls(postgres="p", redis="redis://r:6379/0", broker="amqp://b", mongo="m"),
        port_base=port_base,
        db_prefix="",
        data_dir=tmp_path,
    )
    # Every process is told where mail goes: the port of this process.
    assert (env["EMAIL_HOST"], env["EMAIL_PORT"]) == ("127.0.0.1", str(port_base + mail.port))

    supervisor = devstack.Supervisor()
    supervisor.quiet.add("mail")
    argv = mail.argv(host="127.0.0.1", port_base=port_base, data_dir=str(tmp_path))
    child = supervisor.spawn("mail", argv, env=env)
    try:
        devstack.wait_for_port("127.0.0.1", int(env["EMAIL_PORT"]), timeout=20, child=child, what="mail")
        message = EmailMessage()
        message["From"] = "Kanban <no-reply@localhost>"
        message["To"] = "someone@example.test"
        message["Subject"] = "Verify your address"
        message.set_content("https://localhost/verify?token=abc")
        with smtplib.SMTP(env["EMAIL_HOST"], int(env["EMAIL_PORT"]), timeout=5) as smtp:
            smtp.send_message(message)
        [kept] = mailcatcher().mail_to(tmp_path / "mail", "someone@example.test")
        assert kept.subject == "Verify your address"
        assert "token=abc" in kept.text
    finally:
        supervisor.stop_all(timeout=5)
    assert not child.alive
    assert devstack.port_free("127.0.0.1", int(env["EMAIL_PORT"]))
