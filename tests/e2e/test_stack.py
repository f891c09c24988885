"""The whole stack, booted by the dev launcher beside any running one, and checked through the gateway.

Other ports (base 18000), other databases (prefix e2e_), another Redis DB and a throwaway data
directory; the launcher is stopped with SIGINT at the end, as Ctrl-C would.
"""

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PORT_BASE = int(os.environ.get("E2E_PORT_BASE", "18000"))
GATEWAY = f"http://127.0.0.1:{PORT_BASE}"
SERVICES = ("identity", "tenancy", "projects", "shortener", "analytics")
BOOT_TIMEOUT = 120


@dataclass
class Stack:
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    def listener_pid(self, port: int) -> int:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
                return connection.pid
        raise AssertionError(f"nothing listens on {port}")


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    busy = [port for port in range(PORT_BASE, PORT_BASE + 6) if port_in_use(port)]
    if busy:
        pytest.fail(f"ports {busy} are in use; set E2E_PORT_BASE to a free range")
    data_dir = tmp_path_factory.mktemp("e2e-data")
    argv = [
        sys.executable,
        "platform/devstack.py",
        "up",
        "--port-base",
        str(PORT_BASE),
        "--db-prefix",
        "e2e_",
        "--redis-db",
        "9",
        "--data-dir",
        str(data_dir),
        "--no-seed",
    ]
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stack = Stack(process=process)
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
            pytest.fail("the stack did not become ready:\n" + "\n".join(stack.lines[-60:]))
        yield stack
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the launcher stops all it started
        try:
            code = process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        assert code == 0, "\n".join(stack.lines[-40:])
        still_listening = [port for port in range(PORT_BASE, PORT_BASE + 6) if port_in_use(port)]
        assert still_listening == [], f"the launcher left {still_listening} listening"


def test_launcher_prints_one_ready_line_with_the_urls(stack: Stack) -> None:
    ready = [line for line in stack.lines if "ready" in line and line.startswith("devstack |")]
    assert len(ready) == 1
    assert f"http://localhost:{PORT_BASE}" in ready[0]
    assert f"http://demo.localhost:{PORT_BASE}" in ready[0]


def test_healthz_reports_every_service_ok(stack: Stack) -> None:
    response = httpx.get(f"{GATEWAY}/healthz", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["services"] == dict.fromkeys(SERVICES, "ok")
    assert response.headers["X-Request-ID"]


def test_each_service_answers_its_own_readiness(stack: Stack) -> None:
    for offset, service in enumerate(SERVICES, start=1):
        response = httpx.get(f"http://127.0.0.1:{PORT_BASE + offset}/readyz", timeout=10)
        assert response.status_code == 200, (service, response.text)
        assert response.json()["service"] == service


def test_unknown_path_is_a_json_404(stack: Stack) -> None:
    response = httpx.get(f"{GATEWAY}/no/such/path", timeout=10)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] and error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]


def test_a_stopped_service_is_named_by_healthz_and_by_its_routes(stack: Stack) -> None:
    """Runs last in this module: it stops the shortener for good."""
    shortener = stack.listener_pid(PORT_BASE + 4)
    os.killpg(os.getpgid(shortener), signal.SIGTERM)
    deadline = time.monotonic() + 20
    while port_in_use(PORT_BASE + 4) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not port_in_use(PORT_BASE + 4), "the shortener did not stop"

    health = httpx.get(f"{GATEWAY}/healthz", timeout=10)
    assert health.status_code == 503
    body = health.json()
    assert body["services"]["shortener"] != "ok"
    assert "shortener" in body["failing"]
    assert all(body["services"][name] == "ok" for name in SERVICES if name != "shortener")

    redirect = httpx.get(f"{GATEWAY}/s/x", timeout=10)
    assert redirect.status_code == 503
    error = redirect.json()["error"]
    assert "shortener" in error["message"]
    assert error["request_id"]
