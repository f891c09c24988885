"""The dev launcher's logic, with real sockets, real processes and real embedded servers."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pymongo
import pytest
import redis

from tests.helpers import free_port, free_port_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def listener() -> Iterator[int]:
    """A real listening socket on a free port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_port_probes_see_a_listener_and_its_absence(devstack: ModuleType, listener: int) -> None:
    assert devstack.port_answers("127.0.0.1", listener)
    assert not devstack.port_free("127.0.0.1", listener)
    closed = free_port()
    assert not devstack.port_answers("127.0.0.1", closed)
    assert devstack.port_free("127.0.0.1", closed)


def test_probe_ports_default_to_the_standard_ones_and_can_be_moved(
    devstack: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEVSTACK_PROBE_PORTS", raising=False)
    assert devstack.probe_ports() == {"postgres": 5432, "redis": 6379, "rabbitmq": 5672, "mongo": 27017}
    monkeypatch.setenv("DEVSTACK_PROBE_PORTS", "redis=16379, mongo=27018")
    assert devstack.probe_ports() == {"postgres": 5432, "redis": 16379, "rabbitmq": 5672, "mongo": 27018}
    monkeypatch.setenv("DEVSTACK_PROBE_PORTS", "mysql=3306")
    with pytest.raises(devstack.DevstackError, match="DEVSTACK_PROBE_PORTS"):
        devstack.probe_ports()


def test_a_configured_server_that_does_not_answer_is_named(devstack: ModuleType, listener: int) -> None:
    closed = free_port()
    with pytest.raises(devstack.DevstackError, match=rf"POSTGRES_URL=.*127\.0\.0\.1:{closed}.*unset POSTGRES_URL"):
        devstack.configured_url("postgres", {"POSTGRES_URL": f"postgres://postgres@127.0.0.1:{closed}"})
    url = f"redis://127.0.0.1:{listener}/3"
    assert devstack.configured_url("redis", {"REDIS_URL": url}) == url
    assert devstack.configured_url("mongo", {}) is None


def test_stack_env_derives_ports_and_keeps_a_second_stack_apart(devstack: ModuleType, tmp_path: Path) -> None:
    urls = devstack.BackingUrls(
        postgres="postgres://postgres@127.0.0.1:5432",
        redis="redis://127.0.0.1:6379/0",
        broker="amqp://guest:guest@127.0.0.1:5672//",
        mongo="mongodb://127.0.0.1:27017",
    )
    base = {"PATH": "/usr/bin", "DATABASE_URL": "postgres://x/one_db_for_all"}
    first = devstack.stack_env(base_env=base, urls=urls, port_base=8000, db_prefix="", data_dir=tmp_path)
    assert first["GATEWAY_PORT"] == "8000"
    assert [first[f"{s}_URL"] for s in ("IDENTITY", "TENANCY", "PROJECTS", "SHORTENER", "ANALYTICS")] == [
        f"http://127.0.0.1:{port}" for port in range(8001, 8006)
    ]
    assert first["BROKER_URL"] == first["EVENTS_BROKER_URL"] == urls.broker
    assert first["REDIS_URL"] == urls.redis
    assert "DATABASE_URL" not in first
    assert first["PATH"].startswith(str(Path(sys.executable).parent))

    second = devstack.stack_env(
        base_env=base, urls=urls, port_base=18000, db_prefix="e2e_", data_dir=tmp_path, redis_db=7
    )
    assert second["IDENTITY_URL"] == "http://127.0.0.1:18001"
    assert second["DB_NAME_PREFIX"] == "e2e_"
    assert second["MONGO_DB_NAME"] == "e2e_analytics"
    assert second["EVENTS_EXCHANGE"] == "e2e_platform.events"
    assert second["EVENTS_QUEUE_PREFIX"] == "e2e_events"
    assert second["REDIS_URL"] == "redis://127.0.0.1:6379/7"
    assert second["BROKER_URL"] == "redis://127.0.0.1:6379/8"  # its Celery queues are its own
    assert second["EVENTS_BROKER_URL"] == urls.broker
    assert second["GATEWAY_REDIS_PREFIX"] != first["GATEWAY_REDIS_PREFIX"]
    # Links in mail lead to the stack that sent them.
    assert first["APEX_URL"] == "http://localhost:8000"
    assert second["APEX_URL"] == "http://localhost:18000"
    assert second["TENANT_URL_TEMPLATE"].format(slug="acme") == "http://acme.localhost:18000"
    assert second["EMAIL_PORT"] == "18009"


def test_processes_whose_code_is_missing_are_skipped_with_the_reason(devstack: ModuleType) -> None:
    present = devstack.ProcessSpec(name="present", command=("python", "-V"), requires_module=("json",))
    no_module = devstack.ProcessSpec(name="no-module", command=("x",), requires_module=("apps.nothing_here",))
    no_command = devstack.ProcessSpec(
        name="no-command", command=("x",), settings="identity", requires_command="no_such_command"
    )
    has_command = devstack.ProcessSpec(name="has", command=("x",), settings="identity", requires_command="migrate")
    runnable, skipped = devstack.processes_runnable([present, no_module, no_command, has_command])
    assert [spec.name for spec in runnable] == ["present", "has"]
    assert skipped == {
        "module apps.nothing_here does not exist": ["no-module"],
        "no `manage.py no_such_command`": ["no-command"],
    }


def test_process_list_renders_ports_from_the_base(devstack: ModuleType) -> None:
    specs = {spec.name: spec for spec in devstack.processes_load()}
    assert specs["gateway"].argv(host="127.0.0.1", port_base=18000, data_dir="/d")[-3:] == [
        "--port",
        "18000",
        "--no-access-log",
    ]
    assert "127.0.0.1:18001" in specs["identity"].argv(host="127.0.0.1", port_base=18000, data_dir="/d")
    assert {spec.port for spec in specs.values() if spec.port is not None} == {0, 1, 2, 3, 4, 5, 6, 9}
    assert "/d/celerybeat-projects" in specs["beat-projects"].argv(host="h", port_base=1, data_dir="/d")


def test_supervisor_stops_whole_process_groups_and_nothing_else(devstack: ModuleType) -> None:
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    supervisor = devstack.Supervisor()
    supervisor.quiet.add("tree")
    try:
        # A shell with a grandchild: stopping the shell's group must take the grandchild too.
        child = supervisor.spawn("tree", ["sh", "-c", "sleep 60 & echo $!; wait"], env=dict(os.environ))
        deadline = time.monotonic() + 5
        grandchildren: list[int] = []
        while not grandchildren and time.monotonic() < deadline:
            grandchildren = [
                int(pid)
                for pid in subprocess.run(
                    ["pgrep", "-g", str(child.process.pid)], capture_output=True, text=True, check=False
                ).stdout.split()
                if int(pid) != child.process.pid
            ]
            time.sleep(0.05)
        assert grandchildren, "the grandchild did not start"
        supervisor.stop_all(timeout=5)
        assert child.process.poll() is not None
        assert not [pid for pid in grandchildren if running(pid)]
        assert bystander.poll() is None, "a process we did not start was stopped"
        assert supervisor.children == []
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()


def test_embedded_fallbacks_start_answer_and_stop(
    devstack: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No server on the probed ports: embedded PostgreSQL, Valkey and SecantusDB start; Redis is the broker."""
    ports = {name: free_port() for name in ("postgres", "redis", "rabbitmq", "mongo")}
    monkeypatch.setenv("DEVSTACK_PROBE_PORTS", ",".join(f"{name}={port}" for name, port in ports.items()))
    supervisor = devstack.Supervisor()
    supervisor.quiet.update({"postgres", "redis", "mongo"})
    env = {key: value for key, value in os.environ.items() if not key.endswith("_URL")}
    data_dir = tmp_path / "data"
    try:
        urls = devstack.backing_ensure(env=env, data_dir=data_dir, supervisor=supervisor)
        assert urls.postgres == f"postgres://postgres@127.0.0.1:{ports['postgres']}"
        with psycopg.connect(f"{urls.postgres}/postgres", connect_timeout=5) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        assert redis.Redis.from_url(urls.redis).ping()
        assert urls.broker == urls.redis  # no RabbitMQ on its probed port
        client = pymongo.MongoClient(urls.mongo, serverSelectionTimeoutMS=5000)
        try:
            assert client.admin.command("ping")["ok"] == 1
        finally:
            client.close()
        assert (data_dir / "postgres" / "PG_VERSION").exists()
    finally:
        supervisor.stop_all(timeout=15)
    for name in ("postgres", "redis", "mongo"):
        assert devstack.port_free("127.0.0.1", ports[name]), f"embedded {name} still listens"


def up_until_it_stops(*, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`make up` on free ports with these variables, expected to stop by itself."""
    return subprocess.run(
        [
            sys.executable,
            "platform/devstack.py",
            "up",
            "--port-base",
            str(free_port_run(10)),
            "--data-dir",
            str(data_dir),
        ],
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_up_with_an_unreachable_configured_server_says_which_and_exits(devstack: ModuleType, tmp_path: Path) -> None:
    closed = free_port()
    result = up_until_it_stops(data_dir=tmp_path, POSTGRES_URL=f"postgres://postgres@127.0.0.1:{closed}")
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert f"error: POSTGRES_URL=postgres://postgres@127.0.0.1:{closed}: no PostgreSQL answers" in result.stdout


def test_a_process_that_exits_is_reported_with_its_code_and_last_lines(devstack: ModuleType) -> None:
    supervisor = devstack.Supervisor()
    supervisor.quiet.add("crashy")
    script = "import sys; print('starting'); print('CommandError: no handlers', flush=True); sys.exit(3)"
    child = supervisor.spawn("crashy", [sys.executable, "-c", script], env=dict(os.environ))
    child.process.wait(timeout=10)
    try:
        with pytest.raises(devstack.DevstackError) as raised:
            supervisor.check_alive()
        assert "crashy exited with 3" in str(raised.value)
        assert "CommandError: no handlers" in str(raised.value)
        assert "fix: its last lines above say why" in str(raised.value)
        assert [gone.name for gone in supervisor.exited()] == ["crashy"]
        assert supervisor.exited() == []  # reported once
    finally:
        supervisor.stop_all(timeout=5)


def test_one_shot_commands_are_not_watched_as_long_running(devstack: ModuleType) -> None:
    supervisor = devstack.Supervisor()
    code, output = devstack.run_quiet(
        [sys.executable, "-c", "print('migrated')"], env=dict(os.environ), supervisor=supervisor, name="migrate"
    )
    assert (code, output.strip()) == (0, "migrated")
    supervisor.check_alive()  # a finished one-shot command is no failure


def test_a_settings_module_that_does_not_import_stops_the_launcher(devstack: ModuleType, tmp_path: Path) -> None:
    result = up_until_it_stops(data_dir=tmp_path, DJANGO_DEBUG="maybe")
    assert result.returncode == 1, result.stdout[-2000:]
    assert "does not import" in result.stdout
    assert "ready in" not in result.stdout
