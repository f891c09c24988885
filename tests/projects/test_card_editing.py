"""Editing a card from its panel, through the API: every field, archive, restore and delete,
comments (their author edits; their author or a manager deletes), subtasks, work logs, image
previews, the history in words, and what an outsider or bad input gets."""

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_tenants.utils import schema_context

from apps.projects.models import Comment, Subtask, Task, WorkLog
from apps.projects.services import comments as comment_services
from apps.projects.services import projects as project_services
from apps.projects.services import tasks as task_services
from tests.projects.conftest import MANAGER_PERMISSIONS, MEMBER_PERMISSIONS, TenantInfo, make_caller
from tests.projects.test_api import PNG, ApiClient, assert_error, in_tenant
from tests.projects.test_live import _communicator, _receive_until


@pytest.fixture
def as_manager(tenant_a: TenantInfo) -> ApiClient:
    return ApiClient(tenant_a, "user-manager", MANAGER_PERMISSIONS, roles=("manager",))


@pytest.fixture
def as_member(tenant_a: TenantInfo) -> ApiClient:
    return ApiClient(tenant_a, "user-member", MEMBER_PERMISSIONS)


@pytest.fixture
def as_other(tenant_a: TenantInfo) -> ApiClient:
    return ApiClient(tenant_a, "user-other", MEMBER_PERMISSIONS)


@pytest.fixture
def as_viewer(tenant_a: TenantInfo) -> ApiClient:
    return ApiClient(tenant_a, "user-viewer", frozenset({"comment"}), roles=("viewer",))


@pytest.fixture
def board(as_manager: ApiClient) -> dict:
    created = as_manager.post("/api/projects", {"key": "DEMO", "name": "Demo"})
    assert created.status_code == 201, created.content
    project = created.json()
    people = (
        ("user-manager", "manager", "Mia Manager"),
        ("user-member", "member", "Ana Member"),
        ("user-other", "member", "Bo Other"),
        ("user-viewer", "viewer", "Vic Viewer"),
    )
    for user, role, name in people:
        added = as_manager.post(
            f"/api/projects/{project['id']}/members", {"user_id": user, "role": role, "display_name": name}
        )
        assert added.status_code == 201, added.content
    return as_manager.get(f"/api/boards/{project['boards'][0]['id']}").json()


@pytest.fixture
def task(board: dict, as_member: ApiClient) -> dict:
    created = as_member.post("/api/tasks", {"board": board["id"], "title": "Write the guide"})
    assert created.status_code == 201, created.content
    return created.json()


def board_task_ids(client: ApiClient, board_id: int) -> list[int]:
    body = client.get(f"/api/boards/{board_id}").json()
    return [card["id"] for column in body["columns"] for card in column["tasks"]]


# Fields ----------------------------------------------------------------------------------------


def test_each_field_is_one_patch_and_the_history_says_it_in_words(board, task, as_member) -> None:
    edits = [
        {"title": "Write the onboarding guide"},
        {"description": "Steps for **new** people"},
        {"assignees": ["user-other"]},
        {"labels": ["docs"]},
        {"priority": "high"},
        {"due_date": "2026-12-24"},
        {"estimate_minutes": 90},
    ]
    version = task["version"]
    for change in edits:
        response = as_member.patch(f"/api/tasks/{task['id']}", {**change, "version": version})
        assert response.status_code == 200, response.content
        assert response.json()["version"] == version + 1
        version += 1
    doing = board["columns"][1]["id"]
    assert as_member.post(f"/api/tasks/{task['id']}/move", {"column": doing}).status_code == 200

    detail = as_member.get(f"/api/tasks/{task['id']}").json()

    assert detail["description_html"] == "<p>Steps for <strong>new</strong> people</p>\n"
    assert detail["column_name"] == "In progress"
    assert [entry["text"] for entry in detail["activity"]] == [
        "Ana Member created DEMO-1 in To do",
        "Ana Member renamed DEMO-1 to “Write the onboarding guide”",
        "Ana Member changed the description of DEMO-1",
        "Ana Member assigned Bo Other to DEMO-1",
        "Ana Member labelled DEMO-1 “docs”",
        "Ana Member set the priority of DEMO-1 to high",
        "Ana Member set DEMO-1 due on 24 Dec 2026",
        "Ana Member estimated DEMO-1 at 1 h 30 min",
        "Ana Member moved DEMO-1 from To do to In progress",
    ]
    assert {person["id"]: person["name"] for person in detail["people"]} == {
        "user-member": "Ana Member",
        "user-other": "Bo Other",
    }
    assert {person["initials"] for person in detail["people"]} == {"AM", "BO"}


def test_a_stale_version_is_a_409_with_the_current_version_and_changes_nothing(task, as_member, as_other) -> None:
    assert as_other.patch(f"/api/tasks/{task['id']}", {"title": "Theirs", "version": 1}).status_code == 200

    error = assert_error(as_member.patch(f"/api/tasks/{task['id']}", {"title": "Mine", "version": 1}), 409)

    assert error["code"] == "version_conflict"
    assert error["current_version"] == 2
    assert in_tenant(lambda: Task.objects.get(pk=task["id"]).title == "Theirs")


def test_a_viewer_reads_the_card_but_cannot_edit_it(task, as_viewer) -> None:
    assert as_viewer.get(f"/api/tasks/{task['id']}").status_code == 200
    assert_error(as_viewer.patch(f"/api/tasks/{task['id']}", {"title": "x"}), 403, "permission_denied")
    assert_error(as_viewer.post(f"/api/tasks/{task['id']}/archive", {}), 403)
    assert_error(as_viewer.post(f"/api/tasks/{task['id']}/subtasks", {"title": "x"}), 403)


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "x" * 301), ("title", ""), ("description", "x" * 100_001), ("estimate_minutes", -1)],
)
def test_huge_or_bad_field_values_are_refused_with_a_message(task, as_member, field: str, value: object) -> None:
    error = assert_error(as_member.patch(f"/api/tasks/{task['id']}", {field: value}), 422)

    assert error["fields"], "the refusal names the field"
    assert in_tenant(lambda: Task.objects.get(pk=task["id"]).version == 1)


# Archive, restore, delete ----------------------------------------------------------------------


def test_archive_takes_the_card_off_the_board_and_restore_puts_it_back(board, task, as_member) -> None:
    archived = as_member.post(f"/api/tasks/{task['id']}/archive", {"version": task["version"]})

    assert archived.status_code == 200, archived.content
    assert archived.json()["archived_at"] is not None
    assert task["id"] not in board_task_ids(as_member, board["id"])
    assert as_member.get(f"/api/tasks?board={board['id']}").json()["total"] == 0
    listed = as_member.get(f"/api/tasks?board={board['id']}&archived=true").json()
    assert [item["id"] for item in listed["items"]] == [task["id"]]
    assert as_member.get(f"/api/tasks/{task['id']}").status_code == 200, "an archived card can still be opened"
    moved = as_member.post(f"/api/tasks/{task['id']}/move", {"column": board["columns"][1]["id"]})
    assert_error(moved, 409, "task_archived")

    restored = as_member.post(f"/api/tasks/{task['id']}/restore", {})

    assert restored.status_code == 200
    assert restored.json()["archived_at"] is None
    assert board_task_ids(as_member, board["id"]) == [task["id"]]
    texts = [entry["text"] for entry in restored.json()["activity"]]
    assert texts[-2:] == ["Ana Member archived DEMO-1", "Ana Member restored DEMO-1 to To do"]


def test_archived_cards_leave_room_under_a_wip_limit_and_a_restore_respects_it(board, as_manager, as_member) -> None:
    todo = board["columns"][0]["id"]
    first = as_member.post("/api/tasks", {"board": board["id"], "title": "A"}).json()
    as_manager.patch(f"/api/columns/{todo}", {"wip_limit": 1})
    as_member.post(f"/api/tasks/{first['id']}/archive", {})

    second = as_member.post("/api/tasks", {"board": board["id"], "title": "B"})
    assert second.status_code == 201, "the archived card does not count against the limit"

    error = assert_error(as_member.post(f"/api/tasks/{first['id']}/restore", {}), 409, "wip_limit_reached")
    assert error["may_override"] is False
    forced = as_manager.post(f"/api/tasks/{first['id']}/restore", {"override_wip": True})
    assert forced.status_code == 200


def test_delete_is_for_managers_and_the_reporter(task, as_member, as_other, as_manager, board) -> None:
    assert_error(as_other.delete(f"/api/tasks/{task['id']}"), 403, "permission_denied")
    assert as_member.delete(f"/api/tasks/{task['id']}").status_code == 204  # the reporter
    other = as_other.post("/api/tasks", {"board": board["id"], "title": "B"}).json()
    assert as_manager.delete(f"/api/tasks/{other['id']}").status_code == 204
    assert in_tenant(lambda: not Task.objects.exists())
    assert_error(as_manager.get(f"/api/tasks/{task['id']}"), 404)


# Comments -------------------------------------------------------------------------------------


def _comment(client: ApiClient, task: dict, body: str = "First!") -> dict:
    response = client.post(f"/api/tasks/{task['id']}/comments", {"body": body})
    assert response.status_code == 201, response.content
    return response.json()


def test_a_comment_is_edited_by_its_author_only_and_marked_edited(task, as_member, as_other, as_manager) -> None:
    comment = _comment(as_member, task)
    assert comment["edited_at"] is None

    edited = as_member.patch(f"/api/comments/{comment['id']}", {"body": "First, *edited*"})

    assert edited.status_code == 200, edited.content
    assert edited.json()["edited_at"] is not None
    assert edited.json()["body_html"] == "<p>First, <em>edited</em></p>\n"
    assert as_other.get(f"/api/comments/{comment['id']}").json()["body"] == "First, *edited*"
    assert_error(as_other.patch(f"/api/comments/{comment['id']}", {"body": "hijacked"}), 403, "permission_denied")
    assert_error(as_manager.patch(f"/api/comments/{comment['id']}", {"body": "moderated"}), 403)
    assert_error(as_member.patch(f"/api/comments/{comment['id']}", {"body": "   "}), 400)
    assert_error(as_member.patch(f"/api/comments/{comment['id']}", {"body": "x" * 20_001}), 422)
    assert in_tenant(lambda: Comment.objects.get(pk=comment["id"]).body == "First, *edited*")


def test_a_comment_is_deleted_by_its_author_or_a_manager_not_by_another_member(
    task, as_member, as_other, as_manager, as_viewer
) -> None:
    mine, theirs, viewers = _comment(as_member, task), _comment(as_other, task), _comment(as_viewer, task)

    assert_error(as_other.delete(f"/api/comments/{mine['id']}"), 403, "permission_denied")
    assert as_member.delete(f"/api/comments/{mine['id']}").status_code == 204
    assert as_manager.delete(f"/api/comments/{theirs['id']}").status_code == 204
    assert as_viewer.patch(f"/api/comments/{viewers['id']}", {"body": "a viewer fixes a typo"}).status_code == 200
    assert as_viewer.delete(f"/api/comments/{viewers['id']}").status_code == 204
    assert_error(as_member.delete(f"/api/comments/{mine['id']}"), 404)
    detail = as_member.get(f"/api/tasks/{task['id']}").json()
    assert detail["comments"] == []
    assert detail["activity"][-2]["text"] == "Mia Manager deleted a comment by Bo Other on DEMO-1"


def test_another_tenants_ids_are_404(tenants, task, as_member) -> None:
    comment = _comment(as_member, task)
    subtask = as_member.post(f"/api/tasks/{task['id']}/subtasks", {"title": "S"}).json()
    worklog = as_member.post(f"/api/tasks/{task['id']}/worklogs", {"minutes": 5}).json()
    outsider = ApiClient(tenants["proj_b"], "user-member", MANAGER_PERMISSIONS, roles=("owner",))

    for path in (
        f"/api/tasks/{task['id']}",
        f"/api/comments/{comment['id']}",
        f"/api/subtasks/{subtask['id']}",
        f"/api/worklogs/{worklog['id']}",
    ):
        assert_error(outsider.get(path), 404)
        assert_error(outsider.patch(path, {"title": "x", "body": "x", "minutes": 1}), 404)
        assert_error(outsider.delete(path), 404)
    assert_error(outsider.post(f"/api/tasks/{task['id']}/archive", {}), 404)
    assert in_tenant(lambda: Comment.objects.filter(pk=comment["id"]).exists())


def test_a_member_outside_the_project_gets_404_not_403(tenant_a, task, as_member) -> None:
    comment = _comment(as_member, task)
    stranger = ApiClient(tenant_a, "user-stranger", MEMBER_PERMISSIONS)

    assert_error(stranger.patch(f"/api/comments/{comment['id']}", {"body": "x"}), 404)
    assert_error(stranger.delete(f"/api/comments/{comment['id']}"), 404)
    assert_error(stranger.post(f"/api/tasks/{task['id']}/restore", {}), 404)


# Subtasks and work logs -----------------------------------------------------------------------


def test_subtasks_are_ticked_renamed_reordered_and_deleted(task, as_member, as_viewer) -> None:
    ids = [as_member.post(f"/api/tasks/{task['id']}/subtasks", {"title": t}).json()["id"] for t in "ABC"]

    assert as_member.patch(f"/api/subtasks/{ids[0]}", {"done": True}).json()["done"] is True
    assert as_member.patch(f"/api/subtasks/{ids[1]}", {"title": "  B, renamed "}).json()["title"] == "B, renamed"
    assert as_member.patch(f"/api/subtasks/{ids[2]}", {"position": 0}).status_code == 200
    assert as_member.get(f"/api/subtasks/{ids[1]}").json()["title"] == "B, renamed"
    assert_error(as_viewer.patch(f"/api/subtasks/{ids[0]}", {"done": False}), 403)
    assert_error(as_member.patch(f"/api/subtasks/{ids[0]}", {"title": "x" * 301}), 422)
    assert as_member.delete(f"/api/subtasks/{ids[0]}").status_code == 204

    detail = as_member.get(f"/api/tasks/{task['id']}").json()
    assert [subtask["title"] for subtask in detail["subtasks"]] == ["C", "B, renamed"]
    assert [entry["text"] for entry in detail["activity"][-3:]] == [
        "Ana Member completed the subtask “A”",
        "Ana Member renamed the subtask “B” to “B, renamed”",
        "Ana Member removed the subtask “A” from DEMO-1",
    ]
    assert in_tenant(lambda: list(Subtask.objects.order_by("position").values_list("title", flat=True))) == [
        "C",
        "B, renamed",
    ]


def test_a_work_log_is_edited_or_deleted_by_who_logged_it_or_a_manager(task, as_member, as_other, as_manager) -> None:
    mine = as_member.post(f"/api/tasks/{task['id']}/worklogs", {"minutes": 30, "note": "draft"}).json()

    edited = as_member.patch(f"/api/worklogs/{mine['id']}", {"minutes": 45, "note": "first draft"})
    assert edited.status_code == 200, edited.content
    assert (edited.json()["minutes"], edited.json()["note"]) == (45, "first draft")
    assert_error(as_other.patch(f"/api/worklogs/{mine['id']}", {"minutes": 1}), 403, "permission_denied")
    assert_error(as_other.delete(f"/api/worklogs/{mine['id']}"), 403)
    assert_error(as_member.patch(f"/api/worklogs/{mine['id']}", {"minutes": 0}), 422)
    assert_error(as_member.patch(f"/api/worklogs/{mine['id']}", {"day": "2999-01-01"}), 400)
    assert as_manager.patch(f"/api/worklogs/{mine['id']}", {"minutes": 40}).status_code == 200
    assert as_manager.delete(f"/api/worklogs/{mine['id']}").status_code == 204

    detail = as_member.get(f"/api/tasks/{task['id']}").json()
    assert detail["worklogs"] == [] and detail["worked_minutes"] == 0
    assert detail["activity"][-1]["text"] == "Mia Manager deleted 40 min of logged work from DEMO-1"
    assert in_tenant(lambda: not WorkLog.objects.exists())


# Attachments ----------------------------------------------------------------------------------


def _upload(client: ApiClient, task: dict, name: str, content: bytes, content_type: str):
    return client.upload(
        f"/api/tasks/{task['id']}/attachments", {"file": SimpleUploadedFile(name, content, content_type=content_type)}
    )


def test_an_image_previews_inline_and_downloads_as_a_file(task, as_member) -> None:
    image = _upload(as_member, task, "shot.png", PNG, "image/png").json()
    assert image["preview"] is True

    preview = as_member.get(f"/api/attachments/{image['id']}/preview")
    download = as_member.get(f"/api/attachments/{image['id']}")

    assert preview.status_code == 200
    assert preview["Content-Type"] == "image/png"
    assert preview["Content-Disposition"].startswith("inline")
    assert preview["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in preview["Content-Security-Policy"]
    assert b"".join(preview.streaming_content) == PNG
    assert download["Content-Disposition"].startswith("attachment")


def test_only_checked_images_preview_and_html_or_svg_is_never_served_as_a_page(task, as_member) -> None:
    page = b"<html><script>alert(document.domain)</script></html>"
    text = _upload(as_member, task, "notes.txt", page, "text/plain").json()
    assert text["preview"] is False

    assert_error(as_member.get(f"/api/attachments/{text['id']}/preview"), 404, "no_preview")
    download = as_member.get(f"/api/attachments/{text['id']}")
    assert download["Content-Type"] == "text/plain"
    assert download["Content-Disposition"].startswith("attachment")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    assert_error(_upload(as_member, task, "x.svg", svg, "image/svg+xml"), 400, "file_type_refused")
    assert_error(_upload(as_member, task, "x.html", page, "text/html"), 400, "file_type_refused")
    assert_error(_upload(as_member, task, "x.png", page, "image/png"), 400, "file_type_mismatch")


def test_a_filename_keeps_no_path_or_control_characters(task, as_member) -> None:
    uploaded = _upload(as_member, task, "..\\evil\r\nSet-Cookie: x=1.png", PNG, "image/png")
    assert uploaded.status_code == 201, uploaded.content

    name = uploaded.json()["filename"]
    assert "\r" not in name and "\n" not in name and "\\" not in name and not name.startswith(".")
    download = as_member.get(f"/api/attachments/{uploaded.json()['id']}")
    assert "\n" not in download["Content-Disposition"]


# Markdown and the panel page ------------------------------------------------------------------


def test_the_markdown_preview_escapes_html_and_drops_script_links(as_member, board) -> None:
    text = '<img src=x onerror="alert(1)"> [click](javascript:alert(1)) **ok**'

    html = as_member.post("/api/markdown/preview", {"text": text}).json()["html"]

    assert "<img" not in html and "&lt;img" in html
    assert "href" not in html, "a javascript: link stays text"
    assert "<strong>ok</strong>" in html
    assert_error(as_member.post("/api/markdown/preview", {"text": "x" * 100_001}), 422)
    assert_error(Client().post("/api/markdown/preview", {"text": "x"}, content_type="application/json"), 401)


def _panel_html(client: ApiClient, board: dict, task: dict) -> str:
    response = client.client.get(f"/boards/{board['id']}/tasks/{task['id']}/", **client.headers)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def test_the_panel_escapes_what_people_typed(board, task, as_member) -> None:
    evil = '<script>alert("t")</script>'
    as_member.patch(f"/api/tasks/{task['id']}", {"title": evil, "description": f"{evil} [x](javascript:alert(1))"})
    _comment(as_member, task, f'{evil} <img src=x onerror="alert(1)">')
    _upload(as_member, task, '"><svg onload=alert(1)>.png', PNG, "image/png")

    html = _panel_html(as_member, board, task)

    assert "<script>alert" not in html
    assert "<svg onload" not in html and "<img src=x" not in html
    assert 'href="javascript' not in html
    assert "&lt;script&gt;alert" in html
    assert 'role="dialog"' in html and 'aria-labelledby="panel-heading-' in html


def test_the_panel_offers_edits_by_role(board, task, as_member, as_other, as_manager, as_viewer) -> None:
    _comment(as_member, task, "mine")

    for_member = _panel_html(as_member, board, task)
    for_other = _panel_html(as_other, board, task)
    for_manager = _panel_html(as_manager, board, task)
    for_viewer = _panel_html(as_viewer, board, task)

    assert 'aria-label="Edit your comment"' in for_member
    assert 'aria-label="Edit your comment"' not in for_other + for_manager
    assert 'aria-label="Delete the comment by Ana Member"' in for_manager
    assert 'aria-label="Delete the comment by Ana Member"' not in for_other
    assert 'data-form="title"' not in for_viewer and 'data-action="archive"' not in for_viewer
    assert 'data-form="comment-add"' in for_viewer
    assert 'data-action="task-delete"' in for_member and 'data-action="task-delete"' not in for_other
    assert for_member.count("Ana Member") >= 2  # reporter and comment author, by name


# Live -----------------------------------------------------------------------------------------


def _live_board(tenant: TenantInfo) -> dict:
    manager = make_caller(tenant, "user-manager", roles=("manager",), permissions=MANAGER_PERMISSIONS)
    member = make_caller(tenant, "user-member", roles=("member",), permissions=MEMBER_PERMISSIONS)
    with schema_context(tenant.schema):
        project = project_services.project_create(caller=manager, key="LIVE", name="Live")
        project_services.project_member_set(caller=manager, project_id=project.id, user_id="user-member", role="member")
        board = project.boards.get()
        task = task_services.task_create(caller=member, board_id=board.id, title="A")
        comment = comment_services.comment_add(caller=member, task_id=task.id, body="hi")
    return {"board": board.id, "task": task.id, "comment": comment.id, "member": member}


def _edit_and_archive(tenant: TenantInfo, live: dict) -> None:
    with schema_context(tenant.schema):
        comment_services.comment_update(caller=live["member"], comment_id=live["comment"], body="hello")
        comment_services.comment_delete(caller=live["member"], comment_id=live["comment"])
        task_services.task_archive(caller=live["member"], task_id=live["task"])
        task_services.task_restore(caller=live["member"], task_id=live["task"])


@pytest.mark.asyncio
async def test_comment_edits_archive_and_restore_reach_an_open_board(committed) -> None:
    tenant = committed["proj_a"]
    live = await sync_to_async(_live_board)(tenant)
    communicator = _communicator(tenant, live["board"])
    connected, _ = await communicator.connect()
    assert connected
    await _receive_until(communicator, "hello")

    await sync_to_async(_edit_and_archive)(tenant, live)

    updated = await _receive_until(communicator, "comment.updated")
    assert updated["data"]["comment"]["body"] == "hello" and updated["data"]["comment"]["edited_at"]
    deleted = await _receive_until(communicator, "comment.deleted")
    assert deleted["data"] == {"task": live["task"], "id": live["comment"]}
    archived = await _receive_until(communicator, "task.archived")
    assert archived["data"]["id"] == live["task"]
    restored = await _receive_until(communicator, "task.restored")
    assert restored["data"]["id"] == live["task"] and restored["data"]["comment_count"] == 0
    await communicator.disconnect()
