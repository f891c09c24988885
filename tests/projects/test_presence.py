"""Who is viewing a board: names, the heartbeat, expiry of views nobody closed, and joins told
once per burst. Over Channels' in-process communicator, against the suite's real Redis."""

import asyncio
import json
import time
from unittest.mock import ANY

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import transaction
from django_tenants.utils import schema_context

from apps.projects import live
from apps.projects.consumers import CLOSE_SILENT
from apps.projects.services import presence as presence_services
from apps.projects.services import projects as project_services
from apps.projects.services.people import person_upsert
from tests.projects.conftest import MANAGER_PERMISSIONS, MEMBER_PERMISSIONS, TenantInfo, make_caller
from tests.projects.tokens import make_token

# The module's own numbers, before the fixture below makes them fast for the tests.
HEARTBEAT, EXPIRY, COALESCE = live.HEARTBEAT_SECONDS, live.PRESENCE_EXPIRY_SECONDS, live.PRESENCE_COALESCE_SECONDS


@pytest.fixture(autouse=True)
def _presence_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast heartbeats, and no views left over from an earlier test's board of the same id."""
    monkeypatch.setattr(live, "HEARTBEAT_SECONDS", 0.3)
    monkeypatch.setattr(live, "PRESENCE_EXPIRY_SECONDS", 1.0)
    client = live.redis_client()
    for key in client.scan_iter(f"{settings.PROJECTS_LIVE_PREFIX}:*"):
        if key.endswith((b":viewers", b":seen", b":presence-due")):
            client.delete(key)


def _board(tenant: TenantInfo, key: str, names: dict[str, str]) -> int:
    manager = make_caller(tenant, "user-manager", roles=("manager",), permissions=MANAGER_PERMISSIONS)
    with schema_context(tenant.schema), transaction.atomic():
        project = project_services.project_create(caller=manager, key=key, name=key)
        for user_id, name in names.items():
            # The people directory, as identity's user events fill it.
            person_upsert(user_id=user_id, name=name, email=f"{user_id}@example.test", is_member=True)
            project_services.project_member_set(caller=manager, project_id=project.id, user_id=user_id, role="member")
        return project.boards.get().id


def _communicator(tenant: TenantInfo, board_id: int, user: str) -> WebsocketCommunicator:
    from config.asgi import application

    token = make_token(user_id=user, tenant_id=tenant.tenant_id, permissions=MEMBER_PERMISSIONS)
    headers = [(b"x-tenant-id", tenant.tenant_id.encode()), (b"sec-websocket-protocol", f"bearer, {token}".encode())]
    return WebsocketCommunicator(
        application, f"/ws/boards/{board_id}/", headers=headers, subprotocols=["bearer", token]
    )


async def _open(tenant: TenantInfo, board_id: int, user: str) -> tuple[WebsocketCommunicator, dict]:
    communicator = _communicator(tenant, board_id, user)
    assert (await communicator.connect())[0]
    hello = json.loads(await communicator.receive_from(timeout=5))
    assert hello["type"] == "hello"
    return communicator, hello


async def _presence_until(communicator: WebsocketCommunicator, wanted: object, timeout: float = 5) -> list[dict]:
    """Reads (answering the heartbeat, as the board's page does) until a presence message whose
    viewers satisfy `wanted`; returns those viewers."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        message = json.loads(await communicator.receive_from(timeout=left))
        if message["type"] == "ping":
            await communicator.send_to(text_data="pong")
        elif message["type"] == "presence" and wanted(message["data"]["viewers"]):
            return message["data"]["viewers"]
    raise AssertionError("no such presence message in time")


def _named(viewers: list[dict]) -> list[dict]:
    """What the contract promises of each viewer."""
    return [{"user_id": viewer["user_id"], "name": viewer["name"]} for viewer in viewers]


def _ids(viewers: list[dict]) -> set[str]:
    return {viewer["user_id"] for viewer in viewers}


def test_the_heartbeat_and_expiry_fit_in_ten_seconds() -> None:
    """A view whose process died (no disconnect ran) is swept by the next heartbeat round after it
    expired; the room hears of it one coalescing window later. The contract: within 10 s."""
    assert EXPIRY + HEARTBEAT + COALESCE <= 8.0
    # A client gone silent (a half-open socket): still refreshed up to one heartbeat and a second.
    assert (HEARTBEAT + 1) + EXPIRY + HEARTBEAT + COALESCE <= 10.0
    assert HEARTBEAT * 2 <= EXPIRY  # one late heartbeat round is not an exit


@pytest.mark.asyncio
async def test_presence_lists_viewers_by_name_and_a_closed_page_leaves_at_once(committed) -> None:
    tenant = committed["proj_a"]
    board_id = await sync_to_async(_board)(tenant, "NAMES", {"user-ana": "Ana Lima", "user-bo": "Bo Berg"})
    ana, hello = await _open(tenant, board_id, "user-ana")
    assert hello["data"]["viewers"] == [{"user_id": "user-ana", "name": "Ana Lima", "initials": "AL", "palette": ANY}]
    assert hello["data"]["heartbeat"] == live.HEARTBEAT_SECONDS

    bo, hello = await _open(tenant, board_id, "user-bo")
    assert _named(hello["data"]["viewers"]) == [
        {"user_id": "user-ana", "name": "Ana Lima"},
        {"user_id": "user-bo", "name": "Bo Berg"},
    ]
    await _presence_until(ana, lambda viewers: _ids(viewers) == {"user-ana", "user-bo"})

    closed = time.monotonic()
    await bo.disconnect()
    assert _named(await _presence_until(ana, lambda viewers: _ids(viewers) == {"user-ana"})) == [
        {"user_id": "user-ana", "name": "Ana Lima"}
    ]
    assert time.monotonic() - closed < 1.0  # told at the close, not at the expiry
    await ana.disconnect()


@pytest.mark.asyncio
async def test_a_view_nobody_closed_expires_and_a_fresh_page_never_lists_it(committed) -> None:
    """A killed process never runs its sockets' disconnect: their views stay in Redis until they
    expire. Recorded here as that process did, then left alone."""
    tenant = committed["proj_a"]
    board_id = await sync_to_async(_board)(tenant, "GONE", {"user-ana": "Ana Lima", "user-bo": "Bo Berg"})
    ana, _ = await _open(tenant, board_id, "user-ana")
    await sync_to_async(presence_services.viewer_heard)(
        schema=tenant.schema,
        board_id=board_id,
        channel_name="specific.killed-process!bo",
        viewer={"user_id": "user-bo", "name": "Bo Berg"},
    )
    last_heard = time.monotonic()
    assert _ids(await sync_to_async(presence_services.board_viewers)(schema=tenant.schema, board_id=board_id)) == {
        "user-ana",
        "user-bo",
    }

    # Ana's own heartbeats sweep Bo's view once it expired, and she is told.
    await _presence_until(ana, lambda viewers: _ids(viewers) == {"user-ana"})
    dropped_after = time.monotonic() - last_heard
    assert dropped_after + 0.05 >= live.PRESENCE_EXPIRY_SECONDS
    assert dropped_after <= live.PRESENCE_EXPIRY_SECONDS + live.HEARTBEAT_SECONDS + live.PRESENCE_COALESCE_SECONDS + 1

    # A stale view is never shown to a page that opens later, even with nobody left to sweep it.
    await sync_to_async(presence_services.viewer_heard)(
        schema=tenant.schema,
        board_id=board_id,
        channel_name="specific.killed-process!bo2",
        viewer={"user_id": "user-bo", "name": "Bo Berg"},
    )
    await ana.disconnect()
    await asyncio.sleep(live.PRESENCE_EXPIRY_SECONDS + 0.2)
    again, hello = await _open(tenant, board_id, "user-ana")
    assert _named(hello["data"]["viewers"]) == [{"user_id": "user-ana", "name": "Ana Lima"}]
    await again.disconnect()


@pytest.mark.asyncio
async def test_a_client_that_stops_answering_the_heartbeat_is_closed_and_dropped(committed) -> None:
    tenant = committed["proj_a"]
    board_id = await sync_to_async(_board)(tenant, "QUIET", {"user-ana": "Ana Lima", "user-bo": "Bo Berg"})
    ana, _ = await _open(tenant, board_id, "user-ana")
    bo, _ = await _open(tenant, board_id, "user-bo")
    await _presence_until(ana, lambda viewers: _ids(viewers) == {"user-ana", "user-bo"})

    # Bo's page hangs (or its network went away without a FIN): his pings go unanswered.
    await _presence_until(ana, lambda viewers: _ids(viewers) == {"user-ana"}, timeout=5)
    while (output := await bo.receive_output(timeout=5))["type"] != "websocket.close":
        pass  # the pings he did not answer
    assert output["code"] == CLOSE_SILENT
    await ana.disconnect()


@pytest.mark.asyncio
async def test_a_burst_of_joins_is_told_in_a_few_messages_not_one_per_join(committed) -> None:
    """Each join used to send the whole room to everyone in it: n joins, n messages to each
    viewer, each listing up to n people (quadratic traffic in the room's size)."""
    tenant = committed["proj_a"]
    joining = {f"user-{n}": f"Person {n:02}" for n in range(12)}
    board_id = await sync_to_async(_board)(tenant, "BURST", {"user-ana": "Ana Lima", **joining})
    ana, _ = await _open(tenant, board_id, "user-ana")
    others = await asyncio.gather(*(_open(tenant, board_id, user) for user in joining))

    everyone = {"user-ana", *joining}
    viewers = await _presence_until(ana, lambda viewers: _ids(viewers) == everyone)
    assert [viewer["name"] for viewer in viewers] == sorted(["Ana Lima", *joining.values()])
    received = 1
    # Whatever else comes in the next windows. (Heartbeats keep coming: a read that timed out
    # would cancel the app, the communicator's way.)
    until = time.monotonic() + live.PRESENCE_COALESCE_SECONDS * 3
    while time.monotonic() < until:
        message = json.loads(await ana.receive_from(timeout=live.HEARTBEAT_SECONDS + 3))
        received += message["type"] == "presence"
        if message["type"] == "ping":
            await ana.send_to(text_data="pong")
    assert received <= 3, f"{received} presence messages for {len(joining)} joins"
    for communicator, _ in others:
        await communicator.disconnect()
    await ana.disconnect()
