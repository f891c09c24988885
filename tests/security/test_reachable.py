"""Every route group a card panel and a board's settings use answers through the gateway (issue 9, item 6).

tests/routes proves the route table covers every path of every service's OpenAPI; this walks the
groups that were once missing from it (columns, subtasks, attachments, work logs) as the demo owner
would from the browser, through the stack's gateway, and checks each change really happened.
"""

from collections.abc import Iterator

import httpx
import pytest

from tests.security.conftest import tenant_host

pytestmark = pytest.mark.e2e

OWNER = {"email": "owner@demo.test", "password": "demo-pass-123"}


@pytest.fixture(scope="module")
def demo(gateway: str) -> Iterator[httpx.Client]:
    host = {"Host": tenant_host("demo")}
    signed_in = httpx.post(f"{gateway}/api/auth/token", json=OWNER, headers=host, timeout=15)
    assert signed_in.status_code == 200, signed_in.text
    headers = {**host, "Authorization": f"Bearer {signed_in.json()['access']}"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def board(demo: httpx.Client) -> dict:
    project = demo.get("/api/projects").json()[0]
    detail = demo.get(f"/api/projects/{project['id']}").json()
    response = demo.get(f"/api/boards/{detail['boards'][0]['id']}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def task(demo: httpx.Client, board: dict) -> dict:
    response = demo.post("/api/tasks", json={"board": board["id"], "title": "Reachable through the gateway"})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_column_is_renamed_through_the_gateway(demo: httpx.Client, board: dict) -> None:
    column = demo.post(f"/api/boards/{board['id']}/columns", json={"name": "Waiting"}).json()
    renamed = demo.patch(f"/api/columns/{column['id']}", json={"name": "Blocked"})
    assert renamed.status_code == 200, renamed.text
    names = [item["name"] for item in demo.get(f"/api/boards/{board['id']}/columns").json()]
    assert "Blocked" in names and "Waiting" not in names
    assert demo.delete(f"/api/columns/{column['id']}").status_code == 204


def test_a_subtask_is_ticked_through_the_gateway(demo: httpx.Client, task: dict) -> None:
    subtask = demo.post(f"/api/tasks/{task['id']}/subtasks", json={"title": "Check the gateway"}).json()
    ticked = demo.patch(f"/api/subtasks/{subtask['id']}", json={"done": True})
    assert ticked.status_code == 200, ticked.text
    assert demo.get(f"/api/tasks/{task['id']}/subtasks").json()[0]["done"] is True
    assert demo.delete(f"/api/subtasks/{subtask['id']}").status_code == 204


def test_an_attachment_is_downloaded_through_the_gateway(demo: httpx.Client, task: dict) -> None:
    content = b"notes for the card\n"
    uploaded = demo.post(f"/api/tasks/{task['id']}/attachments", files={"file": ("notes.txt", content, "text/plain")})
    assert uploaded.status_code == 201, uploaded.text
    downloaded = demo.get(f"/api/attachments/{uploaded.json()['id']}")
    assert downloaded.status_code == 200 and downloaded.content == content
    assert demo.delete(f"/api/attachments/{uploaded.json()['id']}").status_code == 204


def test_a_work_log_is_deleted_through_the_gateway(demo: httpx.Client, task: dict) -> None:
    logged = demo.post(f"/api/tasks/{task['id']}/worklogs", json={"minutes": 30, "note": "review"})
    assert logged.status_code == 201, logged.text
    assert demo.delete(f"/api/worklogs/{logged.json()['id']}").status_code == 204
    assert demo.get(f"/api/tasks/{task['id']}/worklogs").json() == []
