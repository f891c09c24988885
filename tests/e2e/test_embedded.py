"""`make up` on a machine with no servers: every backing server embedded, events on the Redis fallback.

The launcher is told to probe ports where nothing listens and is given no server URLs, so it
starts embedded PostgreSQL, Redis and the MongoDB-wire server, finds no RabbitMQ and runs
events and Celery on Redis. Then, through the gateway, as a new user would: the demo login of
the README, a new organization's signup until it is active, and a card move that another
viewer sees on the board's websocket.
"""

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.e2e.stack import Stack, stack_run
from tests.helpers import free_port, free_port_run

pytestmark = pytest.mark.e2e

PASSWORD = "embedded-pass-2026"
ACTIVE_TIMEOUT = 30


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    nothing_listens = {name: free_port() for name in ("postgres", "redis", "rabbitmq", "mongo")}
    env = {
        "DEVSTACK_PROBE_PORTS": ",".join(f"{name}={port}" for name, port in nothing_listens.items()),
        # Named servers would be used as they are: name none.
        "POSTGRES_URL": "",
        "REDIS_URL": "",
        "BROKER_URL": "",
        "MONGO_URL": "",
        "EVENTS_BROKER_URL": "",
    }
    with stack_run(
        port_base=free_port_run(10),  # base..base+6 and the mail catcher at base+9
        db_prefix="",
        redis_db=0,
        data_dir=tmp_path_factory.mktemp("embedded-data"),
        seed=True,
        env=env,
        fresh_databases=False,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway, timeout=15) as http:
        yield http


def tenant_host(stack: Stack, slug: str) -> str:
    return f"{slug}.localhost:{stack.port_base}"


def login(client: httpx.Client, stack: Stack, *, slug: str, email: str, password: str) -> str:
    response = client.post(
        "/api/auth/token", headers={"Host": tenant_host(stack, slug)}, json={"email": email, "password": password}
    )
    assert response.status_code == 200, response.text
    return response.json()["access"]


def board_socket(stack: Stack, board_id: int, token: str) -> ClientConnection:
    sock = socket.create_connection(("127.0.0.1", stack.port_base))
    return connect(
        f"ws://{tenant_host(stack, 'demo')}/ws/boards/{board_id}/",
        sock=sock,
        subprotocols=["bearer", token],  # type: ignore[list-item]
        open_timeout=10,
    )


def test_the_launcher_started_every_server_itself_and_said_events_run_on_redis(stack: Stack) -> None:
    log = "\n".join(stack.lines)
    for server in ("PostgreSQL", "Redis", "MongoDB"):
        assert f"{server}: started an embedded server" in log
    assert "WARNING: no RabbitMQ found: events and Celery run on Redis instead" in log
    assert "Not kept: durability across a Redis crash or restart" in log
    assert "lost RabbitMQ" not in log and "seed_demo failed" not in log
    [ready] = [line for line in stack.lines if line.startswith("devstack | ready in")]
    assert f"http://demo.localhost:{stack.port_base}" in ready


def test_a_new_organization_signs_up_through_the_gateway_and_becomes_active(client: httpx.Client, stack: Stack) -> None:
    created = client.post(
        "/api/tenants",
        json={
            "name": "Embedded Co",
            "slug": "embedded",
            "owner_email": "owner@embedded.test",
            "owner_password": PASSWORD,
        },
    )
    assert created.status_code == 201, created.text

    deadline = time.monotonic() + ACTIVE_TIMEOUT
    while (status := client.get("/api/tenants/embedded").json()["status"]) != "active":
        assert status != "failed"
        assert time.monotonic() < deadline, f"still {status} after {ACTIVE_TIMEOUT} s"
        time.sleep(0.2)
    assert login(client, stack, slug="embedded", email="owner@embedded.test", password=PASSWORD)


def test_the_demo_login_works_and_a_card_move_is_seen_live(client: httpx.Client, stack: Stack) -> None:
    token = login(client, stack, slug="demo", email="owner@demo.test", password="demo-pass-123")
    auth = {"Host": tenant_host(stack, "demo"), "Authorization": f"Bearer {token}"}
    projects = client.get("/api/projects", headers=auth).json()
    items = projects["items"] if isinstance(projects, dict) else projects
    [demo] = [project for project in items if project["key"] == "DEMO"]
    board = client.get(f"/api/boards/{demo['boards'][0]['id']}", headers=auth).json()
    first, second = board["columns"][0], board["columns"][1]
    card = first["tasks"][0]

    with board_socket(stack, board["id"], token) as viewer:
        assert json.loads(viewer.recv(timeout=10))["type"] == "hello"
        moved = client.post(f"/api/tasks/{card['id']}/move", headers=auth, json={"column": second["id"], "index": 0})
        assert moved.status_code == 200, moved.text

        deadline = time.monotonic() + 10
        while True:
            message = json.loads(viewer.recv(timeout=max(0.1, deadline - time.monotonic())))
            if (
                message["type"] == "task.moved"
                and message["data"].get("id", message["data"].get("task_id")) == card["id"]
            ):
                break
    after = client.get(f"/api/boards/{board['id']}", headers=auth).json()
    assert card["id"] in [task["id"] for task in after["columns"][1]["tasks"]]
