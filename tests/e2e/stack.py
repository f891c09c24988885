"""Boots the whole stack with the dev launcher, beside any running one, for end-to-end suites.

Each suite picks its own port base, database prefix and Redis DB, so suites (and a `make up` on
8000) never share data; the launcher gets a throwaway data directory and is stopped with SIGINT,
as Ctrl-C would, and must then leave nothing listening.
"""

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT = 120
STOP_TIMEOUT = 45
PORTS_PER_STACK = 7  # gateway + five services + the projects service's WebSocket server
MAIL_PORT_OFFSET = 9  # the launcher's SMTP server ([process.mail] in platform/processes.toml)


def stack_ports(port_base: int) -> list[int]:
    """Every port a stack listens on: base..base+6 and the mail catcher's."""
    return [*range(port_base, port_base + PORTS_PER_STACK), port_base + MAIL_PORT_OFFSET]


@dataclass
class Stack:
    process: subprocess.Popen
    port_base: int
    data_dir: Path
    lines: list[str] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.port_base}"

    def listener_pid(self, port: int) -> int:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
                return connection.pid
        raise AssertionError(f"nothing listens on {port}")

    def log_tail(self, count: int = 60) -> str:
        return "\n".join(self.lines[-count:])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stack_databases_drop(*, db_prefix: str, postgres_url: str) -> None:
    """Every database of a previous run with this prefix, and its database-mode tenants' roles."""
    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as server:
        names = [
            row[0] for row in server.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{db_prefix}%"])
        ]
        roles: list[str] = []
        if f"{db_prefix}projects" in names:
            # A run stopped before it migrated has no tenant table, and no role to drop.
            with (
                psycopg.connect(f"{postgres_url}/{db_prefix}projects") as projects,
                contextlib.suppress(psycopg.errors.UndefinedTable),
            ):
                roles = [
                    row[0]
                    for row in projects.execute(
                        "SELECT database_role FROM project_tenants_tenant WHERE database_role <> ''"
                    )
                ]
        for name in names:
            server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        for role in roles:
            server.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@contextmanager
def stack_run(
    *,
    port_base: int,
    db_prefix: str,
    redis_db: int,
    data_dir: Path,
    seed: bool = False,
    env: dict[str, str] | None = None,
    fresh_databases: bool = True,
) -> Iterator[Stack]:
    """The launcher's stack, yielded once it printed its ready line; stopped and checked on exit."""
    busy = [port for port in stack_ports(port_base) if port_in_use(port)]
    if busy:
        pytest.fail(f"ports {busy} are in use; pick another port base (see the suite's *_PORT_BASE variable)")
    # Each run starts from empty databases, so nothing a previous run left can make it pass or fail.
    if fresh_databases:  # (a stack on embedded servers starts from an empty data directory instead)
        postgres_url = (env or {}).get("POSTGRES_URL") or os.environ.get(
            "POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"
        )
        stack_databases_drop(db_prefix=db_prefix, postgres_url=postgres_url.rstrip("/"))
    argv = [
        sys.executable,
        "platform/devstack.py",
        "up",
        "--port-base",
        str(port_base),
        "--db-prefix",
        db_prefix,
        "--redis-db",
        str(redis_db),
        "--data-dir",
        str(data_dir),
    ]
    if not seed:
        argv.append("--no-seed")
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stack = Stack(process=process, port_base=port_base, data_dir=data_dir)
    ready: queue.Queue[bool] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.lines.append(line.rstrip())
            if line.startswith("devstack | ready"):
                ready.put(True)
        ready.put(False)

    threading.Thread(target=read, daemon=True).start()
    try:
        try:
            booted = ready.get(timeout=BOOT_TIMEOUT)
        except queue.Empty:
            booted = False
        if not booted:
            pytest.fail("the stack did not become ready:\n" + stack.log_tail())
        yield stack
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the launcher stops all it started
        try:
            code = process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        assert code == 0, stack.log_tail(40)
        still_listening = [port for port in stack_ports(port_base) if port_in_use(port)]
        assert still_listening == [], f"the launcher left {still_listening} listening"


class ConnectionSampler:
    """The most connections PostgreSQL held for a stack's databases (those named with its prefix),
    sampled on a thread for as long as the block runs."""

    def __init__(self, db_prefix: str, *, interval: float = 0.02, postgres_url: str | None = None) -> None:
        self.pattern = db_prefix.replace("_", r"\_") + "%"
        self.interval = interval
        self.postgres_url = (
            postgres_url or os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
        ).rstrip("/")
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(f"{self.postgres_url}/postgres", autocommit=True) as connection:
            while not self._stop.is_set():
                row = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE %s", [self.pattern]
                ).fetchone()
                self.peak = max(self.peak, row[0] if row else 0)
                self.samples += 1
                self._stop.wait(self.interval)

    def __enter__(self) -> "ConnectionSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
