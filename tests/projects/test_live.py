"""Live board updates: over Channels' in-process communicator, and over a real ASGI server
(uvicorn on a TCP port) with two tenants at once."""

import asyncio
import json
import time

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django_tenants.utils import schema_context

from apps.projects import live
from apps.projects.consumers import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED
from apps.projects.services import projects as project_services
from apps.projects.services import tasks as task_services
from tests.helpers import serve
from tests.projects.conftest import MANAGER_PERMISSIONS, MEMBER_PERMISSIONS, TenantInfo, make_caller
from tests.projects.tokens import make_token


def _board_in(tenant: TenantInfo, key: str) -> dict:
    manager = make_caller(tenant, "user-manager", roles=("manager",), permissions=MANAGER_PERMISSIONS)
    with schema_context(tenant.schema):
        project = project_services.project_create(caller=manager, key=key, name=key)
        project_services.project_member_set(caller=manager, project_id=project.id, user_id="user-member", role="member")
        board = project.boards.get()
        columns = list(board.columns.order_by("position").values_list("id", flat=True))
    return {"id": board.id, "columns": columns, "manager": manager}


def _create(tenant: TenantInfo, board: dict, title: str) -> int:
    with schema_context(tenant.schema):
        return task_services.task_create(caller=board["manager"], board_id=board["id"], title=title).id


def _move(tenant: TenantInfo, board: dict, task_id: int, column: int) -> None:
    with schema_context(tenant.schema):
        task_services.task_move(caller=board["manager"], task_id=task_id, column_id=column)


def _communicator(
    tenant: TenantInfo, board_id: int, *, user: str = "user-member", since: int | None = None, lifetime: int = 900
):
    from config.asgi import application

    token = make_token(user_id=user, tenant_id=tenant.tenant_id, permissions=MEMBER_PERMISSIONS, lifetime=lifetime)
    path = f"/ws/boards/{board_id}/" + (f"?since={since}" if since is not None else "")
    # A real server passes the offered subprotocols both as the header and in the scope.
    headers = [(b"x-tenant-id", tenant.tenant_id.encode()), (b"sec-websocket-protocol", f"bearer, {token}".encode())]
    return WebsocketCommunicator(application, path, headers=headers, subprotocols=["bearer", token])


async def _receive_until(communicator: WebsocketCommunicator, kind: str, timeout: float = 3) -> dict:
    """The next message of that type; the heartbeat is answered on the way, as the board's page does."""
    while True:
        message = json.loads(await communicator.receive_from(timeout=timeout))
        if message["type"] == kind:
            return message
        if message["type"] == "ping":
            await communicator.send_to(text_data="pong")


async def _close_code(communicator: WebsocketCommunicator, timeout: float = 5) -> int:
    """The code the server closed the socket with; what came before (presence, heartbeats) skipped."""
    while (output := await communicator.receive_output(timeout=timeout))["type"] != "websocket.close":
        pass
    return output["code"]


async def _board_messages(communicator: WebsocketCommunicator, count: int) -> list[dict]:
    """The next `count` messages about the board (not who is viewing it, nor the heartbeat)."""
    messages: list[dict] = []
    while len(messages) < count:
        message = json.loads(await communicator.receive_from(timeout=3))
        if message["type"] == "ping":
            await communicator.send_to(text_data="pong")
        elif message["type"] != "presence":
            messages.append(message)
    return messages


@pytest.mark.asyncio
async def test_a_move_reaches_an_open_board_and_a_reconnect_catches_up(committed) -> None:
    tenant = committed["proj_a"]
    board = await sync_to_async(_board_in)(tenant, "LIVE")
    task_id = await sync_to_async(_create)(tenant, board, "A")
    communicator = _communicator(tenant, board["id"])
    connected, subprotocol = await communicator.connect()
    assert connected and subprotocol == "bearer"
    hello = await _receive_until(communicator, "hello")
    [viewer] = hello["data"]["viewers"]
    assert (viewer["user_id"], viewer["name"]) == ("user-member", "Unknown user")

    await sync_to_async(_move)(tenant, board, task_id, board["columns"][1])
    moved = await _receive_until(communicator, "task.moved")
    assert moved["seq"] == hello["data"]["seq"] + 1
    assert moved["data"]["column"] == board["columns"][1]
    await communicator.disconnect()

    await sync_to_async(_move)(tenant, board, task_id, board["columns"][2])
    await sync_to_async(_create)(tenant, board, "B")
    again = _communicator(tenant, board["id"], since=moved["seq"])
    assert (await again.connect())[0]
    await _receive_until(again, "hello")
    missed = await _board_messages(again, 2)
    assert [message["type"] for message in missed] == ["task.moved", "task.created"]
    assert [message["seq"] for message in missed] == [moved["seq"] + 1, moved["seq"] + 2]
    await again.disconnect()


@pytest.mark.asyncio
async def test_an_idle_board_socket_outlasts_the_channel_layers_blocking_read(committed) -> None:
    """The layer's receive blocks in Redis for `brpop_timeout` (5 s); redis-py 8 gave up reading after
    5 s by default and tore every idle socket down (django/channels_redis#422). Still open after that,
    and still live."""
    from channels.layers import get_channel_layer

    tenant = committed["proj_a"]
    board = await sync_to_async(_board_in)(tenant, "IDLE")
    task_id = await sync_to_async(_create)(tenant, board, "A")
    communicator = _communicator(tenant, board["id"])
    assert (await communicator.connect())[0]
    await _receive_until(communicator, "hello")

    # Idle (nothing for the board) for the time under test; only the heartbeat is answered. (A read
    # that times out would cancel the app: the communicator's way.)
    idle_until = time.monotonic() + get_channel_layer().brpop_timeout + 1.5
    while time.monotonic() < idle_until:
        message = json.loads(await communicator.receive_from(timeout=live.HEARTBEAT_SECONDS + 3))
        assert message["type"] in ("ping", "presence")  # the heartbeat, and our own join told to the room
        if message["type"] == "ping":
            await communicator.send_to(text_data="pong")
    await sync_to_async(_move)(tenant, board, task_id, board["columns"][1])
    moved = await _receive_until(communicator, "task.moved")
    assert moved["data"]["column"] == board["columns"][1]
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_sockets_without_access_are_closed(committed) -> None:
    tenant, other = committed["proj_a"], committed["proj_b"]
    board = await sync_to_async(_board_in)(tenant, "LOCK")

    stranger = _communicator(tenant, board["id"], user="stranger")
    await stranger.connect()
    assert (await stranger.receive_output(timeout=3))["code"] == CLOSE_NOT_FOUND

    wrong_tenant = _communicator(tenant, board["id"])
    wrong_tenant.scope["headers"] = [(b"x-tenant-id", other.tenant_id.encode()), wrong_tenant.scope["headers"][1]]
    await wrong_tenant.connect()
    assert (await wrong_tenant.receive_output(timeout=3))["code"] == CLOSE_UNAUTHENTICATED

    from config.asgi import application

    anonymous = WebsocketCommunicator(application, f"/ws/boards/{board['id']}/")
    await anonymous.connect()
    assert (await anonymous.receive_output(timeout=3))["code"] == CLOSE_UNAUTHENTICATED


@pytest.mark.asyncio
async def test_an_open_socket_is_closed_once_its_token_is_revoked_or_expires(committed, monkeypatch) -> None:
    import jwt

    from apps.common.auth import revocation_redis, revoked_jti_key
    from apps.projects import consumers

    monkeypatch.setattr(consumers, "SESSION_RECHECK_SECONDS", 0.2)
    tenant = committed["proj_a"]
    board = await sync_to_async(_board_in)(tenant, "REVOKE")

    signed_out = _communicator(tenant, board["id"])
    assert (await signed_out.connect())[0]
    await _receive_until(signed_out, "hello")
    jti = jwt.decode(signed_out.scope["subprotocols"][1], options={"verify_signature": False})["jti"]
    await sync_to_async(revocation_redis(settings.REDIS_URL).set)(revoked_jti_key(jti), "1", ex=60)
    assert await _close_code(signed_out, timeout=3) == consumers.CLOSE_UNAUTHENTICATED

    expiring = _communicator(tenant, board["id"], lifetime=2)
    assert (await expiring.connect())[0]
    await _receive_until(expiring, "hello")
    assert await _close_code(expiring) == consumers.CLOSE_UNAUTHENTICATED


@pytest.fixture
def asgi_server(committed):
    """The projects ASGI app under uvicorn on a real port, in this process (same test database)."""
    from config.asgi import application

    with serve(application, lifespan="off") as url:
        yield url.removeprefix("http://")


@pytest.mark.asyncio
async def test_two_tenants_stay_apart_under_concurrent_asgi_traffic(asgi_server: str, committed) -> None:
    tenants = [committed["proj_a"], committed["proj_b"]]
    # Same project key, board id and task ids in both tenants: only the schema tells them apart.
    boards = [await sync_to_async(_board_in)(tenant, "ISO") for tenant in tenants]
    assert boards[0]["id"] == boards[1]["id"]
    rounds = 15

    async def viewer(index: int, ready: asyncio.Event, seen: list) -> None:
        tenant = tenants[index]
        token = make_token(user_id="user-member", tenant_id=tenant.tenant_id, permissions=MEMBER_PERMISSIONS)
        async with websockets.connect(
            f"ws://{asgi_server}/ws/boards/{boards[index]['id']}/",
            subprotocols=["bearer", token],
            additional_headers={"X-Tenant-ID": tenant.tenant_id},
        ) as ws:
            ready.set()
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=15))
                if message["type"] == "ping":
                    await ws.send("pong")
                seen.append(message)
                if message["type"] == "task.created" and message["data"]["title"] == f"done-{index}":
                    return

    async def worker(index: int, client: httpx.AsyncClient) -> list[int]:
        tenant = tenants[index]
        token = make_token(user_id="user-member", tenant_id=tenant.tenant_id, permissions=MEMBER_PERMISSIONS)
        headers = {"Authorization": f"Bearer {token}", "X-Tenant-ID": tenant.tenant_id}
        created = []
        for number in range(rounds):
            response = await client.post(
                "/api/tasks", json={"board": boards[index]["id"], "title": f"t{index}-{number}"}, headers=headers
            )
            assert response.status_code == 201, response.text
            created.append(response.json()["id"])
            moved = await client.post(
                f"/api/tasks/{created[-1]}/move", json={"column": boards[index]["columns"][1]}, headers=headers
            )
            assert moved.status_code == 200, moved.text
            board = (await client.get(f"/api/boards/{boards[index]['id']}", headers=headers)).json()
            titles = [task["title"] for column in board["columns"] for task in column["tasks"]]
            assert all(title.startswith(f"t{index}-") for title in titles), titles
        done = await client.post(
            "/api/tasks", json={"board": boards[index]["id"], "title": f"done-{index}"}, headers=headers
        )
        assert done.status_code == 201
        return created

    seen: list[list] = [[], []]
    ready = [asyncio.Event(), asyncio.Event()]
    viewers = [asyncio.create_task(viewer(index, ready[index], seen[index])) for index in (0, 1)]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), timeout=10)
    async with httpx.AsyncClient(base_url=f"http://{asgi_server}", timeout=30) as client:
        await asyncio.gather(worker(0, client), worker(1, client))
    await asyncio.wait_for(asyncio.gather(*viewers), timeout=30)

    for index in (0, 1):
        created_titles = [m["data"]["title"] for m in seen[index] if m["type"] == "task.created"]
        assert created_titles == [f"t{index}-{n}" for n in range(rounds)] + [f"done-{index}"]
        assert sum(m["type"] == "task.moved" for m in seen[index]) == rounds
        seqs = [m["seq"] for m in seen[index] if m["seq"] is not None]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for index, tenant in enumerate(tenants):
        titles = await sync_to_async(_titles_in)(tenant)
        assert titles == {f"t{index}-{n}" for n in range(rounds)} | {f"done-{index}"}


def _titles_in(tenant: TenantInfo) -> set[str]:
    from apps.projects.models import Task

    with schema_context(tenant.schema):
        return set(Task.objects.values_list("title", flat=True))
