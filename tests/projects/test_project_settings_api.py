"""The project list, the settings page and the JSON API behind them, as a browser and scripts call
them (the pages' script calls these same endpoints). Attacked too: other tenants' ids, a viewer
writing, markup in names, duplicate keys, oversized names."""

import re
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.projects.models import LABEL_PALETTE, Column, Label, Project, Task
from tests.projects.conftest import MANAGER_PERMISSIONS, MEMBER_PERMISSIONS, TenantInfo
from tests.projects.test_api import ApiClient, assert_error, in_tenant

ROOT = Path(__file__).resolve().parents[2]
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def as_manager(tenant_a: TenantInfo) -> ApiClient:
    return ApiClient(tenant_a, "user-manager", MANAGER_PERMISSIONS, roles=("manager",))


@pytest.fixture
def as_member(tenant_a: TenantInfo) -> ApiClient:
    return ApiClient(tenant_a, "user-member", MEMBER_PERMISSIONS)


@pytest.fixture
def as_viewer(tenant_a: TenantInfo) -> ApiClient:
    return ApiClient(tenant_a, "user-viewer", frozenset({"comment"}), roles=("viewer",))


@pytest.fixture
def project(as_manager: ApiClient) -> dict:
    created = as_manager.post("/api/projects", {"key": "web", "name": "Website", "template": "flow"})
    assert created.status_code == 201, created.content
    project = created.json()
    for user, role in (("user-member", "member"), ("user-viewer", "viewer")):
        added = as_manager.post(f"/api/projects/{project['id']}/members", {"user_id": user, "role": role})
        assert added.status_code == 201, added.content
    return project


def page(client: ApiClient, path: str):
    browser = Client()
    browser.cookies["access_token"] = client.headers["HTTP_AUTHORIZATION"].split()[1]
    return browser.get(path, HTTP_X_TENANT_ID=client.headers["HTTP_X_TENANT_ID"])


def test_a_project_from_the_longer_template_has_its_board_and_columns(project, as_member) -> None:
    assert (project["key"], project["archived"], project["labels"]) == ("WEB", False, [])
    board = as_member.get(f"/api/boards/{project['boards'][0]['id']}").json()

    assert [(c["name"], c["category"]) for c in board["columns"]] == [
        ("Backlog", "todo"),
        ("Ready", "todo"),
        ("In progress", "doing"),
        ("Review", "doing"),
        ("Done", "done"),
    ]
    assert board["archived"] is False and board["labels"] == []


def test_create_project_refusals_name_their_field(project, as_manager) -> None:
    duplicate = assert_error(as_manager.post("/api/projects", {"key": "WEB", "name": "Again"}), 409, "duplicate_key")
    assert duplicate["field"] == "key"
    bad_key = assert_error(as_manager.post("/api/projects", {"key": "1AB", "name": "Bad"}), 400)
    assert "key" in bad_key["fields"]
    huge = assert_error(as_manager.post("/api/projects", {"key": "HUGE", "name": "x" * 10_240}), 422)
    assert huge["fields"][0]["loc"][-1] == "name"
    template = assert_error(as_manager.post("/api/projects", {"key": "TPL", "name": "T", "template": "x"}), 422)
    assert template["fields"][0]["loc"][-1] == "template"
    assert in_tenant(lambda: Project.objects.count()) == 1


def test_members_may_not_create_projects(as_member, tenant_a) -> None:
    assert_error(as_member.post("/api/projects", {"key": "MINE", "name": "Mine"}), 403)


def test_boards_are_created_renamed_archived_and_restored(project, as_manager, as_member) -> None:
    created = as_manager.post(f"/api/projects/{project['id']}/boards", {"name": "Ops", "template": "kanban"})
    assert created.status_code == 201, created.content
    board = created.json()
    assert {"id", "name", "project", "archived", "version"} <= set(board)

    renamed = as_manager.patch(f"/api/boards/{board['id']}", {"name": "Operations", "version": board["version"]})
    assert renamed.json()["name"] == "Operations"
    stale = as_manager.patch(f"/api/boards/{board['id']}", {"name": "Stale", "version": board["version"]})
    assert_error(stale, 409, "version_conflict")
    archived = as_manager.patch(f"/api/boards/{board['id']}", {"archived": True})
    assert archived.json()["archived"] is True

    listed = as_member.get("/api/projects").json()[0]
    assert [b["name"] for b in listed["boards"]] == ["Board"]
    detail = as_member.get(f"/api/projects/{project['id']}").json()
    assert detail["archived_boards"] == [{"id": board["id"], "name": "Operations"}]
    assert_error(as_member.post("/api/tasks", {"board": board["id"], "title": "A"}), 409, "archived")
    read = as_member.get(f"/api/boards/{board['id']}").json()
    assert read["archived"] is True and "create_task" not in read["actions"]

    restored = as_manager.patch(f"/api/boards/{board['id']}", {"archived": False})
    assert restored.json()["archived"] is False
    assert as_member.post("/api/tasks", {"board": board["id"], "title": "A"}).status_code == 201


def test_projects_are_renamed_archived_and_listed_apart(project, as_manager, as_member) -> None:
    renamed = as_manager.patch(f"/api/projects/{project['id']}", {"name": "Site", "version": project["version"]})
    assert renamed.json()["name"] == "Site"
    assert_error(as_manager.patch(f"/api/projects/{project['id']}", {"name": "Old", "version": 1}), 409)

    assert as_manager.patch(f"/api/projects/{project['id']}", {"archived": True}).json()["archived"] is True
    assert as_member.get("/api/projects").json() == []
    assert [p["key"] for p in as_member.get("/api/projects?archived=true").json()] == ["WEB"]
    assert_error(as_manager.patch(f"/api/projects/{project['id']}", {"name": "While archived"}), 409, "archived")
    assert as_manager.patch(f"/api/projects/{project['id']}", {"archived": False}).status_code == 200


def test_a_member_and_a_viewer_cannot_rename_archive_or_delete(project, as_member, as_viewer, as_manager) -> None:
    board_id = project["boards"][0]["id"]
    board = as_manager.get(f"/api/boards/{board_id}").json()
    column_id = board["columns"][0]["id"]
    label = as_manager.post(f"/api/projects/{project['id']}/labels", {"name": "bug"}).json()
    for client in (as_member, as_viewer):
        assert_error(client.patch(f"/api/projects/{project['id']}", {"name": "Mine"}), 403)
        assert_error(client.patch(f"/api/projects/{project['id']}", {"archived": True}), 403)
        assert_error(client.post(f"/api/projects/{project['id']}/boards", {"name": "Mine"}), 403)
        assert_error(client.patch(f"/api/boards/{board_id}", {"archived": True}), 403)
        assert_error(client.delete(f"/api/columns/{column_id}"), 403)
        assert_error(client.post(f"/api/boards/{board_id}/columns", {"name": "Mine"}), 403)
        assert_error(client.post(f"/api/projects/{project['id']}/labels", {"name": "mine"}), 403)
        assert_error(client.patch(f"/api/labels/{label['id']}", {"name": "mine"}), 403)
        assert_error(client.delete(f"/api/labels/{label['id']}"), 403)
        assert_error(client.patch(f"/api/projects/{project['id']}/members/user-manager", {"role": "viewer"}), 403)
        assert_error(client.delete(f"/api/projects/{project['id']}/members/user-manager"), 403)
    assert in_tenant(lambda: (Project.objects.get().name, Column.objects.count(), Label.objects.count())) == (
        "Website",
        5,
        1,
    )


def test_another_tenants_ids_are_404(project, as_manager, tenants) -> None:
    board_id = project["boards"][0]["id"]
    column_id = as_manager.get(f"/api/boards/{board_id}").json()["columns"][0]["id"]
    label_id = as_manager.post(f"/api/projects/{project['id']}/labels", {"name": "bug"}).json()["id"]
    # The owner of another organization, on their own host, with the first one's ids.
    stranger = ApiClient(tenants["proj_b"], "user-manager", MANAGER_PERMISSIONS, roles=("owner",))

    assert_error(stranger.patch(f"/api/projects/{project['id']}", {"archived": True}), 404)
    assert_error(stranger.patch(f"/api/boards/{board_id}", {"name": "Mine"}), 404)
    assert_error(stranger.post(f"/api/projects/{project['id']}/boards", {"name": "Mine"}), 404)
    assert_error(stranger.delete(f"/api/columns/{column_id}?move_to={column_id}"), 404)
    assert_error(stranger.patch(f"/api/labels/{label_id}", {"name": "mine"}), 404)
    assert_error(stranger.delete(f"/api/labels/{label_id}"), 404)
    assert_error(stranger.get(f"/api/projects/{project['id']}/labels"), 404)
    assert page(stranger, f"/projects/{project['id']}/settings/").status_code == 404
    assert in_tenant(lambda: Label.objects.count()) == 1


def test_labels_through_the_api_and_in_the_board_json(project, as_manager, as_member) -> None:
    board_id = project["boards"][0]["id"]
    created = as_manager.post(f"/api/projects/{project['id']}/labels", {"name": "bug", "colour": "#c9372c"})
    assert created.status_code == 201, created.content
    label = created.json()
    assert label == {"id": label["id"], "name": "bug", "colour": "#c9372c"}
    task = as_member.post("/api/tasks", {"board": board_id, "title": "A", "labels": ["bug", "ui"]}).json()

    board = as_member.get(f"/api/boards/{board_id}").json()
    assert [(entry["name"], entry["colour"]) for entry in board["labels"]] == [("bug", "#c9372c"), ("ui", "#216e4e")]
    assert all(entry["colour"] in LABEL_PALETTE for entry in board["labels"])

    renamed = as_manager.patch(f"/api/labels/{label['id']}", {"name": "defect", "colour": "#0c66e4"})
    assert renamed.json() == {"id": label["id"], "name": "defect", "colour": "#0c66e4"}
    assert as_member.get(f"/api/tasks/{task['id']}").json()["labels"] == ["defect", "ui"]
    assert_error(as_manager.patch(f"/api/labels/{label['id']}", {"colour": "red"}), 400, "invalid_colour")
    assert_error(as_manager.post(f"/api/projects/{project['id']}/labels", {"name": "UI"}), 409, "duplicate_label")
    assert_error(as_manager.post(f"/api/projects/{project['id']}/labels", {"name": "x" * 10_240}), 422)

    assert as_manager.delete(f"/api/labels/{label['id']}").status_code == 204
    assert as_member.get(f"/api/tasks/{task['id']}").json()["labels"] == ["ui"]
    assert [entry["name"] for entry in as_member.get(f"/api/projects/{project['id']}/labels").json()] == ["ui"]
    assert [entry["name"] for entry in as_member.get("/api/projects").json()[0]["labels"]] == ["ui"]


def test_a_column_with_cards_is_deleted_by_moving_them(project, as_manager, as_member) -> None:
    board_id = project["boards"][0]["id"]
    columns = as_manager.get(f"/api/boards/{board_id}").json()["columns"]
    backlog, ready = columns[0]["id"], columns[1]["id"]
    for title in ("a", "b"):
        as_member.post("/api/tasks", {"board": board_id, "column": backlog, "title": title})

    assert_error(as_manager.delete(f"/api/columns/{backlog}"), 409, "column_not_empty")
    assert_error(as_manager.delete(f"/api/columns/{backlog}?move_to={backlog}"), 400, "invalid_column")
    assert_error(as_manager.delete(f"/api/columns/{backlog}?move_to=abc"), 422)
    assert as_manager.delete(f"/api/columns/{backlog}?move_to={ready}").status_code == 204

    board = as_member.get(f"/api/boards/{board_id}").json()
    assert [column["name"] for column in board["columns"]] == ["Ready", "In progress", "Review", "Done"]
    assert [task["title"] for task in board["columns"][0]["tasks"]] == ["a", "b"]


def test_member_roles_through_the_api_keep_a_manager(project, as_manager) -> None:
    members = f"/api/projects/{project['id']}/members"

    promoted = as_manager.patch(f"{members}/user-member", {"role": "manager"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "manager"
    assert_error(as_manager.patch(f"{members}/nobody", {"role": "viewer"}), 404)
    assert_error(as_manager.patch(f"{members}/user-member", {"role": "owner"}), 422)
    assert as_manager.delete(f"{members}/user-member").status_code == 204
    assert_error(as_manager.delete(f"{members}/user-manager"), 409, "last_manager")
    assert_error(as_manager.patch(f"{members}/user-manager", {"role": "member"}), 409, "last_manager")


# Pages --------------------------------------------------------------------------------------------


def test_an_empty_organization_offers_to_create_a_project(as_manager, as_member, tenant_a) -> None:
    html = page(as_manager, "/projects/").content.decode()

    assert "Create your first project" in html
    assert 'data-open-dialog="new-project"' in html
    assert 'data-api="POST /api/projects"' in html
    # Both templates, with their columns.
    for column in ("To do", "Backlog", "Ready", "Review"):
        assert f'<span class="template-column">{column}</span>' in html
    member_html = page(as_member, "/projects/").content.decode()
    assert "You are not a member of any project yet" in member_html
    assert 'id="new-project"' not in member_html


def test_names_are_escaped_on_every_page(as_manager, tenant_a) -> None:
    created = as_manager.post("/api/projects", {"key": "XSS", "name": XSS, "board_name": XSS}).json()
    board_id = created["boards"][0]["id"]
    as_manager.post(f"/api/projects/{created['id']}/labels", {"name": "<b>bold</b>"})
    column = as_manager.get(f"/api/boards/{board_id}").json()["columns"][0]["id"]
    as_manager.patch(f"/api/columns/{column}", {"name": XSS[:100]})

    for path in ("/projects/", f"/projects/{created['id']}/settings/", f"/boards/{board_id}/"):
        html = page(as_manager, path).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>bold</b>" not in html, path
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html, path


def test_the_settings_page_lets_managers_edit_and_others_read(project, as_manager, as_member) -> None:
    path = f"/projects/{project['id']}/settings/"

    manager_html = page(as_manager, path).content.decode()
    assert f'data-api="POST /api/projects/{project["id"]}/labels"' in manager_html
    assert f'data-api="POST /api/projects/{project["id"]}/members"' in manager_html
    assert "data-sortable" in manager_html and "Sortable.min.js" in manager_html
    assert manager_html.count('class="column-item"') == 5
    assert "the only manager" in manager_html  # the last manager has no Remove button

    member_html = page(as_member, path).content.decode()
    assert "its managers can change them" in member_html
    assert '/labels"' not in member_html and "data-sortable" not in member_html
    assert "Add a member" not in member_html
    assert "<fieldset disabled>" in member_html


def test_the_settings_page_costs_the_same_queries_with_more_boards(project, as_manager) -> None:
    counts = []
    for round_ in range(2):
        for index in range(2 + 4 * round_):
            board = as_manager.post(f"/api/projects/{project['id']}/boards", {"name": f"B{round_}{index}"}).json()
            as_manager.post("/api/tasks", {"board": board["id"], "title": "T", "labels": [f"l{round_}{index}"]})
        with CaptureQueriesContext(connection) as queries:
            assert page(as_manager, f"/projects/{project['id']}/settings/").status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]


def test_an_archived_board_page_says_so_and_offers_no_writes(project, as_manager, as_member) -> None:
    board_id = project["boards"][0]["id"]
    as_manager.patch(f"/api/boards/{board_id}", {"archived": True})

    html = page(as_member, f"/boards/{board_id}/").content.decode()
    assert "This board is archived: it is read-only." in html
    assert 'class="quick-add"' not in html
    assert '"mayMove": false' in html and '"mayCreate": false' in html
    manager_html = page(as_manager, f"/boards/{board_id}/").content.decode()
    assert "Restore it in the project settings" in manager_html
    index = page(as_member, "/projects/").content.decode()
    assert f'href="/boards/{board_id}/"' not in index


def test_archived_projects_are_listed_apart_with_restore(project, as_manager, as_member) -> None:
    as_manager.patch(f"/api/projects/{project['id']}", {"archived": True})

    html = page(as_manager, "/projects/").content.decode()
    archived = html[html.index('id="archived-title"') :]
    assert "Website" in archived and "Restore" in archived
    assert "Restore" not in page(as_member, "/projects/").content.decode()


def test_the_label_palette_in_css_is_the_models_palette(tenant_a) -> None:
    css = (ROOT / "static" / "css" / "app.css").read_text()

    assert set(re.findall(r'\[data-colour="(#[0-9a-f]{6})"\]', css)) == set(LABEL_PALETTE)


def test_no_inline_script_or_style_on_the_new_pages(project, as_manager) -> None:
    for path in ("/projects/", f"/projects/{project['id']}/settings/"):
        html = page(as_manager, path).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")", html), path
        assert " style=" not in html and "<style" not in html, path
        assert not re.search(r"\son[a-z]+=", html), path


def test_tasks_counted_per_label_on_the_settings_page(project, as_manager, as_member) -> None:
    board_id = project["boards"][0]["id"]
    for _ in range(2):
        as_member.post("/api/tasks", {"board": board_id, "title": "A", "labels": ["bug"]})

    html = page(as_manager, f"/projects/{project['id']}/settings/").content.decode()
    assert '<span class="label" data-colour="#216e4e">bug</span>' in html
    assert "2 cards" in html
    assert in_tenant(lambda: Task.objects.filter(labels__contains=["bug"]).count()) == 2


def test_an_invitation_lands_on_its_projects_board_once_joined(project, as_member) -> None:
    board_id = project["boards"][0]["id"]
    response = page(as_member, f"/projects/?project={project['id']}")
    assert response.status_code == 302 and response["Location"] == f"/boards/{board_id}/"
    # Not a member (yet): the page says so and looks again shortly, a bounded number of times.
    waiting = page(as_member, "/projects/?project=987654")
    assert waiting.status_code == 200 and b"Adding you to the project" in waiting.content
    assert b'http-equiv="refresh"' in waiting.content and b"attempt=1" in waiting.content
    gave_up = page(as_member, "/projects/?project=987654&attempt=10")
    assert b'http-equiv="refresh"' not in gave_up.content
    assert page(as_member, "/projects/?project=%C2%B2").status_code == 200


def test_an_organizations_address_opens_its_projects(as_member) -> None:
    response = page(as_member, "/")
    assert response.status_code == 302 and response["Location"] == "/projects/"


def test_the_top_bar_names_the_person_and_the_organization(as_member) -> None:
    html = page(as_member, "/projects/").content.decode()
    assert (
        '<a class="brand" href="/projects/"><span class="brand-mark" aria-hidden="true"></span>Tenant proj_a</a>'
        in html
    )
    assert 'action="/logout"' in html and "Sign out" in html
    assert 'href="/admin/"' not in html  # a member is not the organization's admin


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/projects/",
        "/projects/1/settings/",
        "/boards/1/",
        "/boards/1/cards/?ids=1",
        "/boards/1/tasks/1/",
        "/boards/1/archived/",
        "/search/?q=x",
    ],
)
def test_every_page_sends_an_anonymous_visitor_to_sign_in(tenant_a, path: str) -> None:
    from django.test import Client

    response = Client().get(path, HTTP_X_TENANT_ID=tenant_a.tenant_id)
    assert response.status_code == 302 and response["Location"].startswith("/login?next="), (path, response)


def test_every_page_route_is_in_the_sign_in_test() -> None:
    from apps.projects.urls import urlpatterns

    assert len(urlpatterns) == 8, "a new page: add it to test_every_page_sends_an_anonymous_visitor_to_sign_in"
