"""Projects and boards created from templates, renamed, archived and restored; labels; columns
deleted with their cards moved; members. Through the services, as the pages' API calls reach them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from apps.common.exceptions import Conflict, Forbidden, NotFound
from apps.projects import selectors
from apps.projects.errors import InvalidInput
from apps.projects.models import LABEL_PALETTE, Activity, Board, Column, Label, Project, ProjectMember, Task
from apps.projects.services import boards as board_services
from apps.projects.services import labels as label_services
from apps.projects.services import projects as project_services
from apps.projects.services import tasks as task_services
from tests.projects.conftest import MANAGER_PERMISSIONS, make_caller


def _columns(board: Board) -> list[tuple[str, str]]:
    return list(board.columns.order_by("position", "id").values_list("name", "category"))


def _keys_in(column: Column) -> list[str]:
    return list(Task.objects.filter(column=column).order_by("rank", "id").values_list("title", flat=True))


# Templates ------------------------------------------------------------------------------------


def test_the_kanban_template_makes_three_columns(manager) -> None:
    project = project_services.project_create(caller=manager, key="KAN", name="Kanban", template="kanban")

    board = project.boards.get()
    assert _columns(board) == [("To do", "todo"), ("In progress", "doing"), ("Done", "done")]
    assert ProjectMember.objects.get(project=project, user_id=manager.user_id).role == "manager"


def test_the_longer_flow_template_makes_five_columns_with_categories(manager) -> None:
    project = project_services.project_create(caller=manager, key="FLOW", name="Flow", template="flow")

    assert _columns(project.boards.get()) == [
        ("Backlog", "todo"),
        ("Ready", "todo"),
        ("In progress", "doing"),
        ("Review", "doing"),
        ("Done", "done"),
    ]


def test_a_second_board_takes_a_template_too(project, manager) -> None:
    board = board_services.board_create(caller=manager, project_id=project.id, name="Ops", template="flow")

    assert [name for name, _ in _columns(board)] == ["Backlog", "Ready", "In progress", "Review", "Done"]
    assert board.position > project.boards.exclude(pk=board.pk).get().position


def test_an_unknown_template_is_refused_and_creates_nothing(manager) -> None:
    with pytest.raises(InvalidInput) as refused:
        project_services.project_create(caller=manager, key="BAD", name="Bad", template="waterfall")

    assert refused.value.details["field"] == "template"
    assert not Project.objects.exists()


def test_tenant_admins_create_projects_without_the_permission_code(tenant_a) -> None:
    admin = make_caller(tenant_a, "user-admin", roles=("admin",), permissions=frozenset())

    project = project_services.project_create(caller=admin, key="ADM", name="Admin's")

    assert ProjectMember.objects.get(project=project).user_id == "user-admin"


def test_duplicate_keys_are_refused_whatever_their_case_even_when_archived(project, manager) -> None:
    project_services.project_update(caller=manager, project_id=project.id, archived=True)

    with pytest.raises(Conflict) as refused:
        project_services.project_create(caller=manager, key="demo", name="Again")

    assert refused.value.details["field"] == "key"
    assert Project.objects.count() == 1


# Rename and archive -----------------------------------------------------------------------------


def test_a_manager_renames_and_archives_a_project_and_restores_it(project, manager, member) -> None:
    project_services.project_update(caller=manager, project_id=project.id, name="  Renamed  ")
    project_services.project_update(caller=manager, project_id=project.id, archived=True)

    assert [p["key"] for p in selectors.project_list(caller=member)] == []
    archived = selectors.project_list(caller=member, archived=True)
    assert [(p["key"], p["name"], p["archived"]) for p in archived] == [("DEMO", "Renamed", True)]

    project_services.project_update(caller=manager, project_id=project.id, archived=False)
    assert [p["key"] for p in selectors.project_list(caller=member)] == ["DEMO"]


def test_an_archived_project_is_read_only_until_restored(project, board, manager, member, columns) -> None:
    task = task_services.task_create(caller=member, board_id=board.id, title="Before")
    project_services.project_update(caller=manager, project_id=project.id, archived=True)

    with pytest.raises(Conflict) as refused:
        task_services.task_create(caller=member, board_id=board.id, title="After")
    assert refused.value.code == "archived"
    with pytest.raises(Conflict):
        task_services.task_move(caller=manager, task_id=task.id, column_id=columns[1].id)
    with pytest.raises(Conflict):
        project_services.project_update(caller=manager, project_id=project.id, name="Sneaky rename")
    with pytest.raises(Conflict):
        board_services.column_create(caller=manager, board_id=board.id, name="More")
    # Reading still works, and says what it is.
    read = selectors.board_get(caller=member, board_id=board.id)
    assert read["archived"] is True and read["actions"] == ["archived", "read"]
    assert "restore" in selectors.project_get(caller=manager, project_id=project.id)["actions"]

    project_services.project_update(caller=manager, project_id=project.id, archived=False, name="Back")
    assert task_services.task_create(caller=member, board_id=board.id, title="After").key == "DEMO-2"
    assert Project.objects.get().name == "Back"


def test_an_archived_board_is_hidden_read_only_and_restorable(project, board, manager, member) -> None:
    other = board_services.board_create(caller=manager, project_id=project.id, name="Other")
    board_services.board_update(caller=manager, board_id=board.id, archived=True)

    listed = selectors.project_list(caller=member)[0]
    assert listed["boards"] == [{"id": other.id, "name": "Other"}]
    detail = selectors.project_get(caller=member, project_id=project.id)
    assert detail["archived_boards"] == [{"id": board.id, "name": "Board"}]
    with pytest.raises(Conflict):
        task_services.task_create(caller=member, board_id=board.id, title="Nope")
    with pytest.raises(Conflict):
        board_services.board_update(caller=manager, board_id=board.id, name="Renamed while archived")
    assert task_services.task_create(caller=member, board_id=other.id, title="Fine").key == "DEMO-1"

    restored = board_services.board_update(caller=manager, board_id=board.id, archived=False)
    assert restored.archived_at is None
    assert selectors.board_get(caller=member, board_id=board.id)["archived"] is False


def test_a_board_rename_checks_its_version(board, manager) -> None:
    renamed = board_services.board_update(caller=manager, board_id=board.id, name="Launch", expected_version=1)
    assert (renamed.name, renamed.version) == ("Launch", 2)

    with pytest.raises(Conflict):
        board_services.board_update(caller=manager, board_id=board.id, name="Stale", expected_version=1)
    assert Board.objects.get(pk=board.id).name == "Launch"


def test_members_and_viewers_cannot_rename_archive_or_delete(project, board, member, viewer, columns) -> None:
    for caller in (member, viewer):
        with pytest.raises(Forbidden):
            project_services.project_update(caller=caller, project_id=project.id, name="Mine")
        with pytest.raises(Forbidden):
            project_services.project_update(caller=caller, project_id=project.id, archived=True)
        with pytest.raises(Forbidden):
            board_services.board_update(caller=caller, board_id=board.id, name="Mine")
        with pytest.raises(Forbidden):
            board_services.board_update(caller=caller, board_id=board.id, archived=True)
        with pytest.raises(Forbidden):
            board_services.board_create(caller=caller, project_id=project.id, name="Mine")
        with pytest.raises(Forbidden):
            board_services.column_delete(caller=caller, column_id=columns[0].id)
        with pytest.raises(Forbidden):
            label_services.label_create(caller=caller, project_id=project.id, name="mine")
    assert (Project.objects.get().name, Board.objects.count(), Column.objects.count()) == ("Demo", 1, 3)


def test_another_tenants_ids_are_not_found(project, board, columns, manager, tenants) -> None:
    label = label_services.label_create(caller=manager, project_id=project.id, name="bug")
    with schema_context("proj_b"):
        stranger = make_caller(tenants["proj_b"], "user-manager", roles=("owner",), permissions=MANAGER_PERMISSIONS)
        with pytest.raises(NotFound):
            project_services.project_update(caller=stranger, project_id=project.id, name="Mine")
        with pytest.raises(NotFound):
            board_services.board_update(caller=stranger, board_id=board.id, archived=True)
        with pytest.raises(NotFound):
            board_services.column_delete(caller=stranger, column_id=columns[0].id)
        with pytest.raises(NotFound):
            label_services.label_update(caller=stranger, label_id=label.id, name="mine")
        with pytest.raises(NotFound):
            selectors.project_settings(caller=stranger, project_id=project.id)


# Labels -----------------------------------------------------------------------------------------


def test_labels_get_palette_colours_and_unique_names(project, manager) -> None:
    first = label_services.label_create(caller=manager, project_id=project.id, name="  bug  ")
    second = label_services.label_create(caller=manager, project_id=project.id, name="ui", colour="#C9372C")

    assert (first.name, first.colour) == ("bug", next(iter(LABEL_PALETTE)))
    assert second.colour == "#c9372c"
    with pytest.raises(Conflict) as refused:
        label_services.label_create(caller=manager, project_id=project.id, name="BUG")
    assert refused.value.details["field"] == "name"
    with pytest.raises(InvalidInput) as refused:
        label_services.label_create(caller=manager, project_id=project.id, name="pink", colour="#ff00ff")
    assert refused.value.details["field"] == "colour"
    with pytest.raises(InvalidInput):
        label_services.label_create(caller=manager, project_id=project.id, name="x" * 10_000)
    assert sorted(Label.objects.values_list("name", flat=True)) == ["bug", "ui"]


def test_a_task_with_a_new_label_name_creates_the_label(board, manager, member) -> None:
    label_services.label_create(caller=manager, project_id=board.project_id, name="Bug")

    task = task_services.task_create(caller=member, board_id=board.id, title="A", labels=["bug", "Docs"])

    assert task.labels == ["Bug", "Docs"]  # the project's spelling of an existing label
    assert sorted(Label.objects.values_list("name", flat=True)) == ["Bug", "Docs"]
    assert Label.objects.get(name="Docs").colour in LABEL_PALETTE


def test_renaming_a_label_renames_it_on_every_task(board, manager, member) -> None:
    label = label_services.label_create(caller=manager, project_id=board.project_id, name="bug")
    tagged = [
        task_services.task_create(caller=member, board_id=board.id, title=f"T{index}", labels=["bug", "ui"])
        for index in range(3)
    ]
    untagged = task_services.task_create(caller=member, board_id=board.id, title="U", labels=["ui"])

    label_services.label_update(caller=manager, label_id=label.id, name="defect", colour="#a54800")

    for task in tagged:
        task.refresh_from_db()
        assert task.labels == ["defect", "ui"]
        assert task.version == 2  # a panel holding the old labels is told it is stale
    untagged.refresh_from_db()
    assert (untagged.labels, untagged.version) == (["ui"], 1)
    assert Label.objects.get(pk=label.id).colour == "#a54800"
    board_read = selectors.board_get(caller=member, board_id=board.id)
    assert {"id": label.id, "name": "defect", "colour": "#a54800"} in board_read["labels"]


def test_renaming_a_label_onto_another_is_refused(board, manager) -> None:
    bug = label_services.label_create(caller=manager, project_id=board.project_id, name="bug")
    label_services.label_create(caller=manager, project_id=board.project_id, name="ui")

    with pytest.raises(Conflict):
        label_services.label_update(caller=manager, label_id=bug.id, name="UI")
    assert Label.objects.get(pk=bug.id).name == "bug"


def test_deleting_a_label_takes_it_off_its_tasks(board, manager, member) -> None:
    label = label_services.label_create(caller=manager, project_id=board.project_id, name="bug")
    task = task_services.task_create(caller=member, board_id=board.id, title="A", labels=["ui", "bug", "x"])

    label_services.label_delete(caller=manager, label_id=label.id)

    task.refresh_from_db()
    assert task.labels == ["ui", "x"]
    assert not Label.objects.filter(name="bug").exists()


def test_a_label_rename_is_one_update_however_many_tasks(board, manager, member) -> None:
    label = label_services.label_create(caller=manager, project_id=board.project_id, name="bug")
    statements = []
    for count in (3, 30):
        current = Label.objects.get(pk=label.id).name
        for index in range(count):
            task_services.task_create(caller=member, board_id=board.id, title=f"T{index}", labels=[current])
        with CaptureQueriesContext(connection) as queries:
            label_services.label_update(caller=manager, label_id=label.id, name=f"bug{count}")
        statements.append(len(queries))

    assert statements[0] == statements[1]
    assert Task.objects.filter(labels__contains=["bug30"]).count() == 33


# Columns ----------------------------------------------------------------------------------------


def test_deleting_a_column_moves_its_cards_to_the_end_of_the_chosen_one(board, manager, member, columns) -> None:
    todo, doing, _ = columns
    for title in ("a", "b"):
        task_services.task_create(caller=member, board_id=board.id, column_id=doing.id, title=title)
    for title in ("x", "y", "z"):
        task_services.task_create(caller=member, board_id=board.id, column_id=todo.id, title=title)

    with pytest.raises(Conflict) as refused:
        board_services.column_delete(caller=manager, column_id=todo.id)
    assert refused.value.code == "column_not_empty"
    with pytest.raises(InvalidInput):
        board_services.column_delete(caller=manager, column_id=todo.id, move_to=todo.id)

    board_services.column_delete(caller=manager, column_id=todo.id, move_to=doing.id)

    assert not Column.objects.filter(pk=todo.id).exists()
    assert _keys_in(doing) == ["a", "b", "x", "y", "z"]
    moved = Task.objects.get(title="x")
    assert moved.version == 2
    assert Activity.objects.filter(task=moved, verb="moved", data__to_column=doing.id).exists()


def test_a_column_cannot_move_its_cards_to_another_boards_column(project, board, manager, member, columns) -> None:
    other = board_services.board_create(caller=manager, project_id=project.id, name="Other")
    foreign = other.columns.first()
    task_services.task_create(caller=member, board_id=board.id, column_id=columns[0].id, title="a")

    with pytest.raises(InvalidInput) as refused:
        board_services.column_delete(caller=manager, column_id=columns[0].id, move_to=foreign.id)

    assert refused.value.details["field"] == "move_to"
    assert Task.objects.get().column_id == columns[0].id


def test_deleting_a_column_writes_a_fixed_number_of_statements_per_card(board, manager, member, columns) -> None:
    doing = columns[1]
    counts = []
    for size in (2, 20):
        source = board_services.column_create(caller=manager, board_id=board.id, name=f"Source {size}")
        for index in range(size):
            task_services.task_create(caller=member, board_id=board.id, column_id=source.id, title=f"T{index}")
        with CaptureQueriesContext(connection) as queries:
            board_services.column_delete(caller=manager, column_id=source.id, move_to=doing.id)
        reads = [q for q in queries.captured_queries if q["sql"].startswith("SELECT")]
        counts.append(len(reads))

    assert counts[0] == counts[1]  # reads do not grow with the cards (events are one insert each)
    assert Task.objects.filter(column=doing).count() == 22


def test_a_stale_column_edit_is_refused_and_changes_nothing(board, manager, columns) -> None:
    column = columns[0]
    board_services.column_update(caller=manager, column_id=column.id, name="Inbox", expected_version=1)

    with pytest.raises(Conflict) as refused:
        board_services.column_update(caller=manager, column_id=column.id, name="Stale", expected_version=1)

    assert refused.value.details["current_version"] == 2
    assert Column.objects.get(pk=column.id).name == "Inbox"


# Members ----------------------------------------------------------------------------------------


def test_the_last_manager_can_be_neither_removed_nor_demoted(project, manager, member) -> None:
    with pytest.raises(Conflict):
        project_services.project_member_remove(caller=manager, project_id=project.id, user_id=manager.user_id)
    with pytest.raises(Conflict):
        project_services.project_member_set(
            caller=manager, project_id=project.id, user_id=manager.user_id, role="member"
        )

    project_services.project_member_set(caller=manager, project_id=project.id, user_id=member.user_id, role="manager")
    project_services.project_member_remove(caller=manager, project_id=project.id, user_id=manager.user_id)
    assert list(ProjectMember.objects.filter(role="manager").values_list("user_id", flat=True)) == [member.user_id]


def test_changing_a_role_of_nobody_is_not_found(project, manager) -> None:
    with pytest.raises(NotFound):
        project_services.project_member_set(
            caller=manager, project_id=project.id, user_id="nobody", role="viewer", existing=True
        )
    assert not ProjectMember.objects.filter(user_id="nobody").exists()


def test_a_member_cannot_manage_members(project, member, viewer) -> None:
    with pytest.raises(Forbidden):
        project_services.project_member_set(caller=member, project_id=project.id, user_id="friend", role="manager")
    with pytest.raises(Forbidden):
        project_services.project_member_remove(caller=member, project_id=project.id, user_id=viewer.user_id)


# Reads ------------------------------------------------------------------------------------------


def test_the_settings_read_is_a_fixed_number_of_queries(project, manager, member) -> None:
    counts = []
    for round_ in range(2):
        for index in range(3 * (round_ + 1)):
            board = board_services.board_create(caller=manager, project_id=project.id, name=f"B{round_}{index}")
            task_services.task_create(caller=member, board_id=board.id, title="T", labels=[f"l{round_}{index}"])
        with CaptureQueriesContext(connection) as queries:
            settings = selectors.project_settings(caller=member, project_id=project.id)
        counts.append(len(queries))

    assert counts[0] == counts[1]
    assert len(settings["all_boards"]) == 10
    assert all(label["task_count"] == 1 for label in settings["labels"])
