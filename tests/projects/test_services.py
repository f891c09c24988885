import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from apps.common.exceptions import Conflict, Forbidden, NotFound
from apps.projects import selectors
from apps.projects.errors import InvalidInput, VersionConflict, WipLimitReached
from apps.projects.models import Activity, Column, Project, ProjectMember, Task
from apps.projects.schemas import TaskOut
from apps.projects.services import boards as board_services
from apps.projects.services import comments as comment_services
from apps.projects.services import projects as project_services
from apps.projects.services import subtasks as subtask_services
from apps.projects.services import tasks as task_services
from apps.projects.services import worklogs as worklog_services
from tests.projects.conftest import MANAGER_PERMISSIONS, make_caller


def _titles_in(column: Column) -> list[str]:
    return list(Task.objects.filter(column=column).order_by("rank", "id").values_list("title", flat=True))


def test_project_create_makes_manager_board_and_columns(project: Project, manager) -> None:
    assert project.key == "DEMO"
    assert ProjectMember.objects.get(project=project, user_id=manager.user_id).role == "manager"
    board = project.boards.get()
    assert [column.category for column in board.columns.order_by("position")] == ["todo", "doing", "done"]


def test_project_key_must_be_unique_and_well_formed(project: Project, manager) -> None:
    with pytest.raises(Conflict):
        project_services.project_create(caller=manager, key="demo", name="Again")
    with pytest.raises(InvalidInput):
        project_services.project_create(caller=manager, key="1BAD", name="Bad")
    assert Project.objects.count() == 1


def test_member_cannot_create_projects(member, tenant_a) -> None:
    with pytest.raises(Forbidden):
        project_services.project_create(caller=member, key="NOPE", name="Nope")
    assert not Project.objects.exists()


def test_task_keys_count_up_per_project(board, member) -> None:
    first = task_services.task_create(caller=member, board_id=board.id, title="One")
    second = task_services.task_create(caller=member, board_id=board.id, title="Two")

    assert (first.key, second.key) == ("DEMO-1", "DEMO-2")
    assert Activity.objects.filter(task=first, verb="created").exists()


def test_viewer_reads_but_cannot_create_or_move(board, viewer, member, columns) -> None:
    task = task_services.task_create(caller=member, board_id=board.id, title="One")

    with pytest.raises(Forbidden):
        task_services.task_create(caller=viewer, board_id=board.id, title="Nope")
    with pytest.raises(Forbidden):
        task_services.task_move(caller=viewer, task_id=task.id, column_id=columns[1].id)
    assert selectors.board_get(caller=viewer, board_id=board.id)["columns"][0]["tasks"][0]["key"] == "DEMO-1"


def test_outsider_gets_not_found(board, tenant_a) -> None:
    outsider = make_caller(tenant_a, "stranger", roles=("member",), permissions=MANAGER_PERMISSIONS)

    with pytest.raises(NotFound):
        selectors.board_get(caller=outsider, board_id=board.id)
    with pytest.raises(NotFound):
        task_services.task_create(caller=outsider, board_id=board.id, title="Sneaky")


def test_move_within_and_between_columns(board, member, columns) -> None:
    todo, doing = columns[0], columns[1]
    a, b, c = (task_services.task_create(caller=member, board_id=board.id, title=title) for title in "ABC")

    task_services.task_move(caller=member, task_id=c.id, column_id=todo.id, index=0)
    assert _titles_in(todo) == ["C", "A", "B"]
    task_services.task_move(caller=member, task_id=c.id, column_id=todo.id, after_id=a.id)
    assert _titles_in(todo) == ["A", "C", "B"]
    task_services.task_move(caller=member, task_id=a.id, column_id=todo.id, before_id=b.id)
    assert _titles_in(todo) == ["C", "A", "B"]
    task_services.task_move(caller=member, task_id=b.id, column_id=doing.id)
    task_services.task_move(caller=member, task_id=c.id, column_id=doing.id, before_id=b.id)
    assert _titles_in(doing) == ["C", "B"]
    task_services.task_move(caller=member, task_id=a.id, column_id=doing.id, index=99)
    assert _titles_in(doing) == ["C", "B", "A"]
    assert Task.objects.get(pk=a.id).version == 3


def test_bad_places_are_refused_and_change_nothing(board, member, manager, columns) -> None:
    a = task_services.task_create(caller=member, board_id=board.id, title="A")
    b = task_services.task_create(caller=member, board_id=board.id, title="B")
    other = board_services.board_create(caller=manager, project_id=board.project_id, name="Other")
    foreign_column = other.columns.first()

    for kwargs in (
        {"column_id": columns[1].id, "before_id": b.id},  # b is not in that column
        {"column_id": columns[0].id, "before_id": a.id},  # next to itself
        {"column_id": columns[0].id, "index": -1},
        {"column_id": columns[0].id, "index": 0, "after_id": b.id},
        {"column_id": foreign_column.id},
    ):
        with pytest.raises(InvalidInput):
            task_services.task_move(caller=member, task_id=a.id, **kwargs)
    assert Task.objects.get(pk=a.id).version == 1
    assert _titles_in(columns[0]) == ["A", "B"]


def test_stale_version_is_a_conflict_and_changes_nothing(board, member, columns) -> None:
    task = task_services.task_create(caller=member, board_id=board.id, title="A")
    task_services.task_update(caller=member, task_id=task.id, expected_version=1, title="A2")

    with pytest.raises(VersionConflict):
        task_services.task_update(caller=member, task_id=task.id, expected_version=1, title="A3")
    with pytest.raises(VersionConflict):
        task_services.task_move(caller=member, task_id=task.id, column_id=columns[1].id, expected_version=1)
    task.refresh_from_db()
    assert (task.title, task.column_id, task.version) == ("A2", columns[0].id, 2)


def test_move_into_full_column_is_refused(board, member, manager, columns) -> None:
    todo, doing = columns[0], columns[1]
    board_services.column_update(caller=manager, column_id=doing.id, wip_limit=1)
    a = task_services.task_create(caller=member, board_id=board.id, title="A")
    b = task_services.task_create(caller=member, board_id=board.id, title="B")
    task_services.task_move(caller=member, task_id=a.id, column_id=doing.id)

    with pytest.raises(WipLimitReached) as refused:
        task_services.task_move(caller=member, task_id=b.id, column_id=doing.id, override_wip=True)
    assert refused.value.status == 409
    assert Task.objects.get(pk=b.id).column_id == todo.id
    # Moving within the full column is not an arrival.
    task_services.task_move(caller=member, task_id=a.id, column_id=doing.id, index=0)


def test_manager_may_override_the_wip_limit(board, member, manager, columns) -> None:
    doing = columns[1]
    board_services.column_update(caller=manager, column_id=doing.id, wip_limit=1)
    task_services.task_create(caller=member, board_id=board.id, column_id=doing.id, title="A")

    with pytest.raises(WipLimitReached):
        task_services.task_create(caller=manager, board_id=board.id, column_id=doing.id, title="B")
    task = task_services.task_create(
        caller=manager, board_id=board.id, column_id=doing.id, title="B", override_wip=True
    )
    assert task.column_id == doing.id


def _write_statements(context: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in context.captured_queries
        if query["sql"].split(None, 1)[0] in ("INSERT", "UPDATE", "DELETE")
    ]


def _fill(board, member, count: int) -> list[Task]:
    return [task_services.task_create(caller=member, board_id=board.id, title=f"T{i}") for i in range(count)]


def test_a_move_writes_the_same_few_rows_however_big_the_board(board, member, columns) -> None:
    todo, doing = columns[0], columns[1]
    writes = []
    for size in (5, 200):
        tasks = _fill(board, member, size)
        with CaptureQueriesContext(connection) as context:
            task_services.task_move(caller=member, task_id=tasks[-1].id, column_id=todo.id, index=1)
            task_services.task_move(caller=member, task_id=tasks[0].id, column_id=doing.id)
        writes.append(_write_statements(context))

    assert len(writes[0]) == len(writes[1])
    # Per move: the task row, one activity row; plus one outbox row for the change of column.
    assert len(writes[1]) <= 5
    task_updates = [sql for sql in writes[1] if sql.startswith('UPDATE "projects_task"')]
    assert len(task_updates) == 2
    assert all('WHERE "projects_task"."id" = ' in sql for sql in task_updates)


def test_overlong_ranks_trigger_a_rebalance_that_keeps_order(board, member, columns) -> None:
    todo = columns[0]
    first = task_services.task_create(caller=member, board_id=board.id, title="first")
    task_services.task_create(caller=member, board_id=board.id, title="second")
    mover = task_services.task_create(caller=member, board_id=board.id, title="mover")
    # Squeeze tasks in right behind `first`, again and again, so ranks grow past the limit.
    for _ in range(60):
        task_services.task_move(caller=member, task_id=mover.id, column_id=todo.id, after_id=first.id)
        mover = task_services.task_create(caller=member, board_id=board.id, title="mover")

    ranks = list(Task.objects.filter(column=todo).order_by("rank", "id").values_list("rank", flat=True))
    assert len(set(ranks)) == len(ranks)
    assert max(map(len, ranks)) <= 48
    titles = _titles_in(todo)
    assert titles[0] == "first"
    assert titles[-2:] == ["second", "mover"]


def test_task_update_assigns_and_records_history(board, member) -> None:
    task = task_services.task_create(caller=member, board_id=board.id, title="A", labels=["bug", "bug", " ui "])
    assert task.labels == ["bug", "ui"]

    task = task_services.task_update(caller=member, task_id=task.id, assignees=["user-member", "user-x"])

    assert task.assignees == ["user-member", "user-x"]
    # One entry for the change of people ("assigned"), not a second, vaguer "updated" beside it.
    verbs = list(Activity.objects.filter(task=task).values_list("verb", flat=True))
    assert verbs == ["created", "assigned"]


def test_task_update_refuses_unknown_and_invalid_fields(board, member) -> None:
    task = task_services.task_create(caller=member, board_id=board.id, title="A")

    with pytest.raises(InvalidInput):
        task_services.task_update(caller=member, task_id=task.id, rank="0")
    with pytest.raises(InvalidInput):
        task_services.task_update(caller=member, task_id=task.id, priority="whenever")
    with pytest.raises(InvalidInput):
        task_services.task_update(caller=member, task_id=task.id, title="")
    task.refresh_from_db()
    assert (task.title, task.priority, task.version) == ("A", "medium", 1)


def test_parts_comments_subtasks_worklogs(board, member, viewer) -> None:
    task = task_services.task_create(caller=member, board_id=board.id, title="A")
    subtask = subtask_services.subtask_create(caller=member, task_id=task.id, title="step")
    subtask_services.subtask_update(caller=member, subtask_id=subtask.id, done=True)
    comment_services.comment_add(caller=viewer, task_id=task.id, body="**looks** <script>x</script>")
    worklog_services.worklog_add(caller=member, task_id=task.id, minutes=30)
    worklog_services.worklog_add(caller=member, task_id=task.id, minutes=15)

    detail = TaskOut.from_orm(selectors.task_get(caller=viewer, task_id=task.id)).model_dump()

    assert (detail["subtasks_total"], detail["subtasks_done"]) == (1, 1)
    assert "<strong>looks</strong>" in detail["comments"][0]["body_html"]
    assert "<script>" not in detail["comments"][0]["body_html"]
    assert detail["worked_minutes"] == 45
    totals = selectors.worklog_totals(caller=viewer, project_id=board.project_id)
    assert totals["total_minutes"] == 45
    assert totals["by_user"] == [{"user": "user-member", "minutes": 45}]
    with pytest.raises(Forbidden):
        worklog_services.worklog_add(caller=viewer, task_id=task.id, minutes=5)
    with pytest.raises(InvalidInput):
        worklog_services.worklog_add(caller=member, task_id=task.id, minutes=0)
    with pytest.raises(InvalidInput):
        comment_services.comment_add(caller=member, task_id=task.id, body="   ")


def test_last_manager_cannot_be_demoted_or_removed(project, manager) -> None:
    with pytest.raises(Conflict):
        project_services.project_member_set(
            caller=manager, project_id=project.id, user_id=manager.user_id, role="member"
        )
    with pytest.raises(Conflict):
        project_services.project_member_remove(caller=manager, project_id=project.id, user_id=manager.user_id)


def test_columns_cannot_be_deleted_while_holding_tasks(board, member, manager, columns) -> None:
    task_services.task_create(caller=member, board_id=board.id, title="A")

    with pytest.raises(Conflict):
        board_services.column_delete(caller=manager, column_id=columns[0].id)
    board_services.column_delete(caller=manager, column_id=columns[2].id)
    assert board.columns.count() == 2


def test_concurrent_moves_into_a_column_with_one_free_place(committed, tenants) -> None:
    tenant = tenants["proj_a"]
    manager = make_caller(tenant, "user-manager", roles=("manager",), permissions=MANAGER_PERMISSIONS)
    with schema_context(tenant.schema):
        project = project_services.project_create(caller=manager, key="RACE", name="Race")
        board = project.boards.get()
        todo, doing, _ = board.columns.order_by("position")
        board_services.column_update(caller=manager, column_id=doing.id, wip_limit=1)
        tasks = [task_services.task_create(caller=manager, board_id=board.id, title=f"T{i}") for i in range(6)]
    barrier = threading.Barrier(len(tasks))
    outcomes: list[str] = []

    def move(task_id: int) -> None:
        try:
            with schema_context(tenant.schema):
                barrier.wait()
                task_services.task_move(caller=manager, task_id=task_id, column_id=doing.id)
                outcomes.append("moved")
        except WipLimitReached:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=move, args=(task.id,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["moved"] + ["refused"] * 5
    with schema_context(tenant.schema):
        assert Task.objects.filter(column=doing).count() == 1
        assert Task.objects.filter(column=todo).count() == 5


def test_service_calls_group_in_the_callers_transaction(board, member) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        task_services.task_create(caller=member, board_id=board.id, title="A")
        raise RuntimeError("caller changes its mind")
    assert not Task.objects.exists()
