"""Sharing a task (issue 11): the shortener's internal check, the shared view's grant and cookie,
what the page shows (and never shows), the ended link (URLExpired), and the live shared view."""

import asyncio
import json
import time
import uuid
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core import signing
from django.db import connection, transaction
from django.test import Client
from django_tenants.utils import schema_context

from apps.projects import handlers, selectors, share
from apps.projects.consumers import CLOSE_ENDED, CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED
from apps.projects.models import SharedLinkEnd
from apps.projects.services import comments as comment_services
from apps.projects.services import people as people_services
from apps.projects.services import projects as project_services
from apps.projects.services import subtasks as subtask_services
from apps.projects.services import tasks as task_services
from tests.projects.conftest import MANAGER_PERMISSIONS, TenantInfo, make_caller
from tests.projects.test_people import event

CHECK = "/internal/tasks/{}/share-check"
SECRET_WORDS = ("Ana Secret-Name", "ana.secret@people.test", "a private comment body", "user-assignee")


def grant_for(code: str, tenant_id: str, task_id: int, *, key: str | None = None, age: float = 0) -> str:
    """A grant as the shortener signs it (docs: /work/notes §4), `age` seconds old."""
    data = {"code": code, "tenant": tenant_id, "task": task_id}
    with mock.patch("django.core.signing.time.time", return_value=time.time() - age):
        return signing.dumps(data, key=key or settings.SHARE_GRANT_SECRET, salt=share.GRANT_SALT)


def code_new() -> str:
    return "t" + uuid.uuid4().hex[:11]


def keeping_schema(call):
    """A request through the middleware, which leaves the connection in the public schema; the
    test goes on in the schema it was in."""

    def run(*args, **kwargs):
        schema = connection.schema_name
        try:
            return call(*args, **kwargs)
        finally:
            connection.set_schema(schema)

    return run


@keeping_schema
def internal_get(tenant: TenantInfo | None, task_id: int, user: str, *, token: str | None = None):
    headers = {"HTTP_X_INTERNAL_TOKEN": settings.INTERNAL_API_TOKEN if token is None else token}
    if tenant is not None:
        headers["HTTP_X_TENANT_ID"] = tenant.tenant_id
    return Client().get(CHECK.format(task_id), {"user": user}, **headers)


@keeping_schema
def shared_get(client: Client, tenant: TenantInfo, code: str, grant: str | None = None):
    query = {"grant": grant} if grant is not None else {}
    return client.get(f"/shared/{code}", query, HTTP_X_TENANT_ID=tenant.tenant_id, HTTP_ACCEPT="text/html")


def opened(client: Client, tenant: TenantInfo, code: str, task_id: int) -> Client:
    response = shared_get(client, tenant, code, grant_for(code, tenant.tenant_id, task_id))
    assert response.status_code == 302, response.content
    return client


@keeping_schema
def end_link(tenant: TenantInfo, code: str, reason: str = "revoked") -> None:
    handlers.on_url_expired(event("URLExpired", {"code": code, "reason": reason}, tenant_id=tenant.tenant_id))


@pytest.fixture
def shared_task(tenant_a, board, manager, columns):
    """A task with everything the shared view must leave out: people, their emails, comments."""
    people_services.person_upsert(user_id="user-assignee", name="Ana Secret-Name", email="ana.secret@people.test")
    task = task_services.task_create(
        caller=manager,
        board_id=board.id,
        title="Publish the roadmap",
        description="Read **this** <script>alert(1)</script> [x](javascript:alert(1))",
        assignees=["user-assignee"],
        due_date=None,
    )
    subtask_services.subtask_create(caller=manager, task_id=task.id, title="Draft it")
    done = subtask_services.subtask_create(caller=manager, task_id=task.id, title="Review it")
    subtask_services.subtask_update(caller=manager, subtask_id=done.id, done=True)
    comment_services.comment_add(caller=manager, task_id=task.id, body="a private comment body")
    return task


# The internal endpoint ---------------------------------------------------------------------------


def test_share_check_refuses_a_missing_or_wrong_internal_token(tenant_a, shared_task) -> None:
    for token in ("", "dev-internal-tokeN", "x" * 200):
        response = internal_get(tenant_a, shared_task.id, "user-member", token=token)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "invalid_internal_token"


def test_share_check_says_who_may_read_and_manage(tenant_a, shared_task, project) -> None:
    member = internal_get(tenant_a, shared_task.id, "user-member").json()
    assert member == {
        "task_id": shared_task.id,
        "key": shared_task.key,
        "title": "Publish the roadmap",
        "project_id": project.id,
        "board_id": shared_task.board_id,
        "can_read": True,
        "can_manage": False,
    }
    manager = internal_get(tenant_a, shared_task.id, "user-manager").json()
    assert (manager["can_read"], manager["can_manage"]) == (True, True)
    stranger = internal_get(tenant_a, shared_task.id, "user-stranger").json()
    assert (stranger["can_read"], stranger["can_manage"]) == (False, False)
    # An organization admin needs no membership of the project (the directory knows the roles).
    people_services.person_upsert(user_id="user-admin", name="Al", roles=["admin"], is_member=True)
    admin = internal_get(tenant_a, shared_task.id, "user-admin").json()
    assert (admin["can_read"], admin["can_manage"]) == (True, True)
    # Someone who left the organization keeps their project row for history, and may do nothing.
    people_services.person_upsert(user_id="user-member", is_member=False, roles=[])
    left = internal_get(tenant_a, shared_task.id, "user-member").json()
    assert (left["can_read"], left["can_manage"]) == (False, False)


def test_share_check_finds_only_the_named_tenants_tasks(tenants, tenant_a) -> None:
    caller = make_caller(tenants["proj_b"], "user-manager", roles=("manager",), permissions=MANAGER_PERMISSIONS)
    with schema_context("proj_b"):
        project = project_services.project_create(caller=caller, key="BEE", name="B")
        task = task_services.task_create(caller=caller, board_id=project.boards.get().id, title="B's task")
    # Tenant A has no task at all: B's id names nothing there.
    response = internal_get(tenant_a, task.id, "user-manager")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert internal_get(tenants["proj_b"], task.id, "user-manager").json()["can_manage"] is True
    assert internal_get(tenant_a, 2**63, "user-manager").status_code == 404
    assert internal_get(None, task.id, "user-manager").status_code == 400  # the tenant is named, never guessed


# The grant and the cookie ----------------------------------------------------------------------


def test_a_grant_becomes_a_cookie_of_this_page_and_a_clean_address(tenant_a, shared_task) -> None:
    code = code_new()
    client = Client()
    response = shared_get(client, tenant_a, code, grant_for(code, tenant_a.tenant_id, shared_task.id))
    assert response.status_code == 302
    assert response["Location"] == f"/shared/{code}"
    assert response["Referrer-Policy"] == "no-referrer"
    for name, path in ((share.COOKIE, f"/shared/{code}"), (share.SOCKET_COOKIE, f"/ws/shared/{code}/")):
        morsel = response.cookies[name]
        assert morsel["path"] == path
        assert morsel["httponly"] and morsel["samesite"] == "Lax" and int(morsel["max-age"]) == share.VIEW_MAX_AGE
    assert response.cookies[share.COOKIE].value == response.cookies[share.SOCKET_COOKIE].value
    page = shared_get(client, tenant_a, code)
    assert page.status_code == 200, page.content


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ("other_code", 403),
        ("other_tenant", 403),
        ("expired", 403),
        ("tampered", 403),
        ("other_key", 403),
        ("empty", 403),
    ],
)
def test_a_grant_that_is_not_this_links_is_refused(tenants, tenant_a, shared_task, change: str, status: int) -> None:
    code = code_new()
    grant = {
        "other_code": lambda: grant_for(code_new(), tenant_a.tenant_id, shared_task.id),
        "other_tenant": lambda: grant_for(code, tenants["proj_b"].tenant_id, shared_task.id),
        "expired": lambda: grant_for(code, tenant_a.tenant_id, shared_task.id, age=share.GRANT_MAX_AGE + 5),
        "tampered": lambda: grant_for(code, tenant_a.tenant_id, shared_task.id)[:-3] + "AAA",
        "other_key": lambda: grant_for(code, tenant_a.tenant_id, shared_task.id, key="not-the-secret"),
        "empty": lambda: "",
    }[change]()
    response = shared_get(Client(), tenant_a, code, grant)
    assert response.status_code == status
    assert share.COOKIE not in response.cookies or not response.cookies[share.COOKIE].value
    assert response["Content-Type"].startswith("text/html")
    assert f'href="/s/{code}"' in response.content.decode()  # the way back: the link itself
    assert "Publish the roadmap" not in response.content.decode()


def test_a_grant_opens_one_browser_once(tenant_a, shared_task) -> None:
    code = code_new()
    grant = grant_for(code, tenant_a.tenant_id, shared_task.id)
    first = Client()
    assert shared_get(first, tenant_a, code, grant).status_code == 302
    # Passed on (or replayed) within its two minutes: refused.
    replay = shared_get(Client(), tenant_a, code, grant)
    assert replay.status_code == 403 and "already used" in replay.content.decode()
    # The browser it opened may come back by it (the back button): off to the page, still open.
    again = shared_get(first, tenant_a, code, grant)
    assert again.status_code == 302 and again["Location"] == f"/shared/{code}"
    assert shared_get(first, tenant_a, code).status_code == 200


def test_a_tenants_cookie_opens_nothing_on_another_tenants_host(tenants, tenant_a, shared_task) -> None:
    code = code_new()
    client = opened(Client(), tenant_a, code, shared_task.id)
    other = shared_get(client, tenants["proj_b"], code)
    assert other.status_code == 403
    assert "Publish the roadmap" not in other.content.decode()


def test_without_a_pass_the_page_says_how_to_open_it(tenant_a, shared_task) -> None:
    code = code_new()
    response = shared_get(Client(), tenant_a, code)
    assert response.status_code == 403
    body = response.content.decode()
    assert "Open the link you were given" in body and f'href="/s/{code}"' in body
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    # An expired cookie: the same way back.
    client = Client()
    stale = share.SharePass(code=code, tenant_id=tenant_a.tenant_id, task_id=shared_task.id, expires_at=time.time() - 1)
    client.cookies[share.COOKIE] = share.view_token(stale)
    expired = shared_get(client, tenant_a, code)
    assert expired.status_code == 403 and "timed out" in expired.content.decode()


def test_the_apex_serves_no_shared_task(db, tenants) -> None:
    response = Client().get(f"/shared/{code_new()}", HTTP_ACCEPT="text/html", HTTP_HOST="localhost")
    assert response.status_code == 404


# The page ------------------------------------------------------------------------------------


def test_the_page_shows_the_task_and_nothing_of_its_people_or_comments(tenant_a, shared_task, columns) -> None:
    code = code_new()
    client = opened(Client(), tenant_a, code, shared_task.id)
    response = shared_get(client, tenant_a, code)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Publish the roadmap" in body and shared_task.key in body
    assert columns[0].name in body
    assert "<strong>this</strong>" in body  # markdown, rendered
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body  # raw HTML escaped
    assert 'href="javascript:' not in body
    assert "Draft it" in body and "Review it" in body and "1/2" in body
    for word in SECRET_WORDS:
        assert word not in body, word
    assert "Comments" not in body and "Attachments" not in body and "History" not in body
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert '<meta name="robots" content="noindex, nofollow">' in body
    assert "<script>" not in body.replace('<script src="', "")  # no inline script


def test_the_page_reads_a_fixed_number_of_queries(tenant_a, shared_task, django_assert_max_num_queries) -> None:
    code = code_new()
    client = opened(Client(), tenant_a, code, shared_task.id)
    for title in ("one", "two", "three"):
        subtask_services.subtask_create(
            caller=make_caller(tenant_a, "user-manager", roles=(), permissions=MANAGER_PERMISSIONS),
            task_id=shared_task.id,
            title=title,
        )
    with django_assert_max_num_queries(6):  # search_path, tenant, ended?, task, subtasks (+ slack)
        assert shared_get(client, tenant_a, code).status_code == 200


def test_a_deleted_task_is_gone_from_its_shared_view(tenant_a, shared_task, manager) -> None:
    code = code_new()
    client = opened(Client(), tenant_a, code, shared_task.id)
    task_services.task_delete(caller=manager, task_id=shared_task.id)
    response = shared_get(client, tenant_a, code)
    assert response.status_code == 404 and "This task is gone" in response.content.decode()


# An ended link -------------------------------------------------------------------------------


def test_an_ended_link_refuses_its_cookie_and_its_grants(tenant_a, shared_task) -> None:
    code = code_new()
    client = opened(Client(), tenant_a, code, shared_task.id)
    end_link(tenant_a, code, "expired")
    assert selectors.shared_link_ended(code=code) == "expired"
    page = shared_get(client, tenant_a, code)
    assert page.status_code == 410
    assert "This link has ended" in page.content.decode() and "Publish the roadmap" not in page.content.decode()
    assert page.cookies[share.COOKIE].value == ""  # the cookie is taken back
    fresh = shared_get(Client(), tenant_a, code, grant_for(code, tenant_a.tenant_id, shared_task.id))
    assert fresh.status_code == 410
    # Delivered again (the consumer may): still one record, the first reason kept.
    end_link(tenant_a, code, "revoked")
    assert list(SharedLinkEnd.objects.filter(code=code).values_list("reason", flat=True)) == ["expired"]


def test_a_used_up_link_keeps_the_views_it_gave_and_a_url_links_end_is_not_recorded(tenant_a, shared_task) -> None:
    """The shortener ends a link in the visit that reaches its limit: that visitor's grant and view
    stay good (until their pass runs out), and a revocation after it still shuts them."""
    code = code_new()
    grant = grant_for(code, tenant_a.tenant_id, shared_task.id)
    end_link(tenant_a, code, "used_up")  # the event overtook the last visitor's browser
    client = Client()
    assert shared_get(client, tenant_a, code, grant).status_code == 302
    assert shared_get(client, tenant_a, code).status_code == 200
    end_link(tenant_a, code, "revoked")
    assert selectors.shared_link_ended(code=code) == "revoked"
    assert shared_get(client, tenant_a, code).status_code == 410
    # A link to a URL shares no task: its end is nobody's business here.
    url_code = code_new()
    schema = connection.schema_name
    try:
        handlers.on_url_expired(
            event("URLExpired", {"code": url_code, "reason": "revoked", "task_id": None}, tenant_id=tenant_a.tenant_id)
        )
    finally:
        connection.set_schema(schema)
    assert selectors.shared_link_ended(code=url_code) is None


def test_an_ended_link_of_another_tenant_ends_nothing_here(tenants, tenant_a, shared_task) -> None:
    code = code_new()
    client = opened(Client(), tenant_a, code, shared_task.id)
    end_link(tenants["proj_b"], code)
    assert shared_get(client, tenant_a, code).status_code == 200


def test_the_projects_consumer_subscribes_to_url_expired() -> None:
    from apps.events.consumer import handlers_discover

    assert handlers.on_url_expired in handlers_discover()["URLExpired"]


def test_an_url_expired_for_a_tenant_not_provisioned_here_is_retried(tenant_a) -> None:
    with pytest.raises(handlers.TenantNotReady):
        end_link(TenantInfo(schema="none", tenant_id=str(uuid.uuid4()), slug="none"), code_new())


# Live -------------------------------------------------------------------------------------------


def _setup_live(tenant: TenantInfo) -> dict:
    manager = make_caller(tenant, "user-manager", roles=("manager",), permissions=MANAGER_PERMISSIONS)
    with schema_context(tenant.schema), transaction.atomic():
        people_services.person_upsert(user_id="user-assignee", name="Ana Secret-Name", email="ana.secret@people.test")
        project = project_services.project_create(caller=manager, key="SHR", name="Shared")
        board = project.boards.get()
        columns = list(board.columns.order_by("position").values_list("id", flat=True))
        task = task_services.task_create(
            caller=manager, board_id=board.id, title="Live title", assignees=["user-assignee"]
        )
        other = task_services.task_create(caller=manager, board_id=board.id, title="Another task")
        subtask = subtask_services.subtask_create(caller=manager, task_id=task.id, title="Step one")
    return {"manager": manager, "task": task.id, "other": other.id, "subtask": subtask.id, "columns": columns}


def _in(tenant: TenantInfo, work):
    with schema_context(tenant.schema):
        return work()


def _socket(
    tenant: TenantInfo,
    code: str,
    task_id: int,
    *,
    origin: str = "http://a.localhost",
    cookie: bool = True,
    at: TenantInfo | None = None,
):
    """A shared view's handshake with `tenant`'s pass for `code`, on `at`'s host (the gateway's X-Tenant-ID)."""
    from config.asgi import application

    granted = share.SharePass(code=code, tenant_id=tenant.tenant_id, task_id=task_id, expires_at=time.time() + 60)
    host = (at or tenant).tenant_id.encode()
    headers = [(b"x-tenant-id", host), (b"host", b"a.localhost"), (b"origin", origin.encode())]
    if cookie:
        headers.append((b"cookie", f"csrftoken=x; {share.SOCKET_COOKIE}={share.view_token(granted)}".encode()))
    return WebsocketCommunicator(application, share.socket_path(code), headers=headers)


async def _message(communicator: WebsocketCommunicator, timeout: float = 5) -> dict:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def _close_code(communicator: WebsocketCommunicator, timeout: float = 5) -> int:
    """The code the server closed with; the consumer then let finish (its channel layer receive
    must not outlive this test's event loop: the layer's lock would stay held for the next)."""
    while (output := await communicator.receive_output(timeout=timeout))["type"] != "websocket.close":
        pass
    await communicator.disconnect()
    return output["code"]


@pytest.mark.asyncio
async def test_the_shared_view_follows_its_task_live_and_forwards_nothing_else(committed) -> None:
    tenant = committed["proj_a"]
    made = await sync_to_async(_setup_live)(tenant)
    manager, task_id = made["manager"], made["task"]
    code = code_new()
    communicator = _socket(tenant, code, task_id)
    connected, _ = await communicator.connect()
    assert connected
    first = await _message(communicator)
    assert first["type"] == "task" and "Live title" in first["data"]["html"]

    await sync_to_async(_in)(
        tenant, lambda: task_services.task_update(caller=manager, task_id=task_id, title="New title")
    )
    renamed = await _message(communicator)
    assert renamed["type"] == "task" and renamed["data"]["title"] == "New title"
    assert set(renamed) == {"type", "data"} and set(renamed["data"]) == {"html", "digest", "key", "title"}

    await sync_to_async(_in)(
        tenant, lambda: subtask_services.subtask_update(caller=manager, subtask_id=made["subtask"], done=True)
    )
    ticked = await _message(communicator)
    assert "shared-subtask done" in ticked["data"]["html"] and "1/1" in ticked["data"]["html"]

    await sync_to_async(_in)(
        tenant, lambda: task_services.task_move(caller=manager, task_id=task_id, column_id=made["columns"][1])
    )
    moved = await _message(communicator)
    assert "status-doing" in moved["data"]["html"]

    # A comment, another task's change, an assignment: nothing the view shows, so nothing is sent.
    await sync_to_async(_in)(
        tenant, lambda: comment_services.comment_add(caller=manager, task_id=task_id, body="a private comment body")
    )
    await sync_to_async(_in)(
        tenant, lambda: task_services.task_update(caller=manager, task_id=made["other"], title="Another, renamed")
    )
    await sync_to_async(_in)(tenant, lambda: task_services.task_update(caller=manager, task_id=task_id, assignees=[]))
    assert await communicator.receive_nothing(timeout=1.0)

    text = json.dumps([first, renamed, ticked, moved])
    for word in (*SECRET_WORDS, "Another", "user-manager"):
        assert word not in text, word
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_an_ended_link_closes_its_open_views_and_refuses_them_after(committed) -> None:
    tenant = committed["proj_a"]
    made = await sync_to_async(_setup_live)(tenant)
    code = code_new()
    communicator = _socket(tenant, code, made["task"])
    assert (await communicator.connect())[0]
    assert (await _message(communicator))["type"] == "task"
    await asyncio.sleep(0.2)  # the view has joined its groups
    await sync_to_async(end_link)(tenant, code, "revoked")
    ended = await _message(communicator)
    assert ended == {"type": "ended", "data": {"reason": "revoked"}}
    assert await _close_code(communicator) == CLOSE_ENDED

    again = _socket(tenant, code, made["task"])
    assert (await again.connect())[0]
    assert (await _message(again))["type"] == "ended"
    assert await _close_code(again) == CLOSE_ENDED
    await sync_to_async(_in)(tenant, lambda: SharedLinkEnd.objects.filter(code=code).delete())


@pytest.mark.asyncio
async def test_a_shared_socket_without_its_cookie_or_from_another_site_is_refused(committed) -> None:
    tenant = committed["proj_a"]
    made = await sync_to_async(_setup_live)(tenant)
    code = code_new()
    for communicator in (
        _socket(tenant, code, made["task"], cookie=False),
        _socket(tenant, code, made["task"], origin="https://evil.example"),
        _socket(tenant, code, made["task"], at=committed["proj_b"]),  # A's pass at B
    ):
        await communicator.connect()
        assert await _close_code(communicator) == CLOSE_UNAUTHENTICATED
    # The pass names a code: another link's socket refuses it.
    from config.asgi import application

    granted = share.SharePass(code=code, tenant_id=tenant.tenant_id, task_id=made["task"], expires_at=time.time() + 60)
    headers = [
        (b"x-tenant-id", tenant.tenant_id.encode()),
        (b"host", b"a.localhost"),
        (b"origin", b"http://a.localhost"),
        (b"cookie", f"{share.SOCKET_COOKIE}={share.view_token(granted)}".encode()),
    ]
    other = WebsocketCommunicator(application, share.socket_path(code_new()), headers=headers)
    await other.connect()
    assert await _close_code(other) == CLOSE_UNAUTHENTICATED


@pytest.mark.asyncio
async def test_a_deleted_task_closes_its_shared_view(committed) -> None:
    tenant = committed["proj_a"]
    made = await sync_to_async(_setup_live)(tenant)
    communicator = _socket(tenant, code_new(), made["task"])
    assert (await communicator.connect())[0]
    assert (await _message(communicator))["type"] == "task"
    await asyncio.sleep(0.2)
    await sync_to_async(_in)(tenant, lambda: task_services.task_delete(caller=made["manager"], task_id=made["task"]))
    assert (await _message(communicator))["type"] == "gone"
    assert await _close_code(communicator) == CLOSE_NOT_FOUND
