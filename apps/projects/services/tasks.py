"""Tasks: create, edit, delete, and move between and within columns (fractional ranks, WIP limits)."""

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.common.exceptions import Conflict, Forbidden, NotFound
from apps.projects import live
from apps.projects.db import tenant_db
from apps.projects.errors import InvalidInput, WipLimitReached
from apps.projects.models import LABEL_NAME_LENGTH, Board, Column, Priority, Project, Task
from apps.projects.permissions import READ, Caller, project_actions, require
from apps.projects.ranks import RankError, needs_rebalance, rank_between, spread
from apps.projects.selectors import task_card
from apps.projects.services.labels import labels_ensure
from apps.projects.services.shared import (
    check_version,
    clean_strings,
    full_clean,
    locked_task,
    publish,
    record_activity,
    task_event_data,
)

TASK_FIELDS = ("title", "description", "assignees", "labels", "priority", "due_date", "estimate_minutes")


MAX_LABELS = 20


MAX_ASSIGNEES = 20

# Fields whose before and after values the history keeps (a description is too long to copy).
_HISTORY_VALUES = ("title", "labels", "priority", "due_date", "estimate_minutes")


def _history_value(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date) else value


def _check_wip(column: Column, actions: frozenset[str], override_wip: bool) -> None:
    if column.wip_limit is None:
        return
    if Task.objects.filter(column_id=column.id, archived_at__isnull=True).count() < column.wip_limit:
        return
    if override_wip and "override_wip" in actions:
        return
    raise WipLimitReached(
        f"Column {column.name!r} is at its WIP limit of {column.wip_limit}",
        column=column.id,
        wip_limit=column.wip_limit,
        may_override="override_wip" in actions,
    )


def task_create(
    *,
    caller: Caller,
    board_id: int,
    title: str,
    column_id: int | None = None,
    description: str = "",
    assignees: Iterable[str] = (),
    labels: Iterable[str] = (),
    priority: str = Priority.MEDIUM,
    due_date: dt.date | None = None,
    estimate_minutes: int | None = None,
    on_top: bool = False,
    override_wip: bool = False,
) -> Task:
    with transaction.atomic(using=tenant_db()):
        board = Board.objects.filter(pk=board_id).first()
        if board is None:
            raise NotFound("No such board")
        actions = project_actions(caller=caller, project_id=board.project_id, board_id=board.id)
        require(actions, "create_task", what="board")
        assignees = clean_strings(assignees, what="assignees", limit=MAX_ASSIGNEES, max_length=64)
        if assignees and "assign_task" not in actions:
            raise Forbidden("You may not assign tasks", code="permission_denied")
        columns = Column.objects.select_for_update().filter(board_id=board.id)
        column = (columns.filter(pk=column_id) if column_id is not None else columns.order_by("position", "id")).first()
        if column is None:
            raise InvalidInput("column is not a column of this board", code="invalid_column")
        _check_wip(column, actions, override_wip)
        edge = Task.objects.filter(column_id=column.id).order_by("rank" if on_top else "-rank")
        edge_rank = edge.values_list("rank", flat=True).first()
        rank = rank_between(None, edge_rank) if on_top else rank_between(edge_rank, None)
        project = Project.objects.select_for_update().only("id", "key", "task_counter").get(pk=board.project_id)
        number = project.task_counter + 1
        Project.objects.filter(pk=project.pk).update(task_counter=number)
        task = Task(
            project_id=project.id,
            board_id=board.id,
            column_id=column.id,
            number=number,
            key=f"{project.key}-{number}",
            title=title.strip(),
            description=description,
            rank=rank,
            assignees=assignees,
            labels=labels_ensure(
                project_id=project.id,
                names=clean_strings(labels, what="labels", limit=MAX_LABELS, max_length=LABEL_NAME_LENGTH),
            ),
            reporter_id=caller.user_id,
            priority=priority,
            due_date=due_date,
            estimate_minutes=estimate_minutes,
        )
        full_clean(task, exclude=["project", "board", "column", "rank", "number", "key"])
        task.save()
        record_activity(task.id, caller, "created", column=column.id)
        task_event = task_event_data(task)
        publish(
            "TaskCreated",
            {**task_event, "title": task.title, "reporter_id": caller.user_id},
            caller=caller,
            aggregate_id=task.id,
        )
        if assignees:
            publish(
                "TaskAssigned",
                {**task_event, "assignees": assignees, "added": assignees},
                caller=caller,
                aggregate_id=task.id,
            )
        if needs_rebalance(rank):
            _column_rebalance(column.id)
            task.refresh_from_db(fields=["rank"])
        live.board_broadcast(board_id=board.id, event="task.created", data=task_card(task))
    return task


def task_update(*, caller: Caller, task_id: int, expected_version: int | None = None, **changes: object) -> Task:
    unknown = set(changes) - set(TASK_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}")
    with transaction.atomic(using=tenant_db()):
        task, actions = locked_task(caller, task_id, "edit_task")
        check_version(task.version, expected_version, "task")
        if "assignees" in changes:
            changes["assignees"] = clean_strings(
                changes["assignees"] or [], what="assignees", limit=MAX_ASSIGNEES, max_length=64
            )
            if changes["assignees"] != task.assignees and "assign_task" not in actions:
                raise Forbidden("You may not assign tasks", code="permission_denied")
        if "labels" in changes:
            changes["labels"] = labels_ensure(
                project_id=task.project_id,
                names=clean_strings(
                    changes["labels"] or [], what="labels", limit=MAX_LABELS, max_length=LABEL_NAME_LENGTH
                ),
            )
        if isinstance(changes.get("title"), str):
            changes["title"] = changes["title"].strip()
        previous_assignees = list(task.assignees)
        changed = {name: value for name, value in changes.items() if getattr(task, name) != value}
        if not changed:
            return task
        before = {name: _history_value(getattr(task, name)) for name in changed if name in _HISTORY_VALUES}
        for name, value in changed.items():
            setattr(task, name, value)
        full_clean(task, exclude=["project", "board", "column", "rank", "number", "key"])
        task.version += 1
        task.save(update_fields=[*changed, "version", "updated_at"])
        history = {name: [old, _history_value(getattr(task, name))] for name, old in before.items()}
        if set(changed) - {"assignees"}:
            record_activity(task.id, caller, "updated", fields=sorted(set(changed) - {"assignees"}), changes=history)
        added = [user for user in task.assignees if user not in previous_assignees]
        removed = [user for user in previous_assignees if user not in task.assignees]
        if "assignees" in changed:
            record_activity(task.id, caller, "assigned", assignees=task.assignees, added=added, removed=removed)
            publish(
                "TaskAssigned",
                {**task_event_data(task), "assignees": task.assignees, "added": added},
                caller=caller,
                aggregate_id=task.id,
            )
        live.board_broadcast(board_id=task.board_id, event="task.updated", data=task_card(task))
    return task


def task_delete(*, caller: Caller, task_id: int, expected_version: int | None = None) -> None:
    with transaction.atomic(using=tenant_db()):
        task, actions = locked_task(caller, task_id, READ)
        if "delete_task" not in actions and not (task.reporter_id == caller.user_id and "edit_task" in actions):
            raise Forbidden("You may not delete this task", code="permission_denied")
        check_version(task.version, expected_version, "task")
        board_id, column_id = task.board_id, task.column_id
        task.delete()
        live.board_broadcast(board_id=board_id, event="task.deleted", data={"id": task_id, "column": column_id})


def task_archive(*, caller: Caller, task_id: int, expected_version: int | None = None) -> Task:
    """Take the task off the board (it keeps its column and place, for a restore)."""
    with transaction.atomic(using=tenant_db()):
        task, _ = locked_task(caller, task_id, "edit_task")
        check_version(task.version, expected_version, "task")
        if task.archived_at is not None:
            return task
        task.archived_at = timezone.now()
        task.version += 1
        task.save(update_fields=["archived_at", "version", "updated_at"])
        record_activity(task.id, caller, "archived")
        live.board_broadcast(
            board_id=task.board_id,
            event="task.archived",
            data={"id": task.id, "key": task.key, "column": task.column_id, "version": task.version},
        )
    return task


def task_restore(
    *, caller: Caller, task_id: int, expected_version: int | None = None, override_wip: bool = False
) -> Task:
    """Put an archived task back on the board, in its column and place."""
    with transaction.atomic(using=tenant_db()):
        task, actions = locked_task(caller, task_id, "edit_task")
        check_version(task.version, expected_version, "task")
        if task.archived_at is None:
            return task
        column = Column.objects.select_for_update().get(pk=task.column_id)
        _check_wip(column, actions, override_wip)
        task.archived_at = None
        task.version += 1
        task.save(update_fields=["archived_at", "version", "updated_at"])
        record_activity(task.id, caller, "restored", column=column.id, column_name=column.name)
        live.board_broadcast(board_id=task.board_id, event="task.restored", data=task_card(task))
    return task


def task_move(
    *,
    caller: Caller,
    task_id: int,
    column_id: int,
    before_id: int | None = None,
    after_id: int | None = None,
    index: int | None = None,
    expected_version: int | None = None,
    override_wip: bool = False,
) -> Task:
    """Put the task into `column_id`, ahead of `before_id`, behind `after_id`, at position
    `index`, or (none given) last. Writes the task's row, one activity row and, when the
    column changes, one outbox row, however many tasks the board holds."""
    if sum(place is not None for place in (before_id, after_id, index)) > 1:
        raise InvalidInput("Give at most one of before, after and index")
    if task_id in (before_id, after_id):
        raise InvalidInput("A task cannot be placed next to itself")
    if index is not None and index < 0:
        raise InvalidInput("index must be 0 or more")
    with transaction.atomic(using=tenant_db()):
        task, actions = locked_task(caller, task_id, "move_task")
        check_version(task.version, expected_version, "task")
        if task.archived_at is not None:
            raise Conflict("The task is archived; restore it first", code="task_archived")
        column = Column.objects.select_for_update().filter(pk=column_id, board_id=task.board_id).first()
        if column is None:
            raise InvalidInput("column is not a column of this task's board", code="invalid_column")
        from_column_id = task.column_id
        if column.id != from_column_id:
            _check_wip(column, actions, override_wip)
        try:
            rank = _rank_for_place(task, column.id, before_id=before_id, after_id=after_id, index=index)
        except RankError:
            _column_rebalance(column.id)
            rank = _rank_for_place(task, column.id, before_id=before_id, after_id=after_id, index=index)
        task.column_id, task.rank, task.version = column.id, rank, task.version + 1
        task.updated_at = timezone.now()
        Task.objects.filter(pk=task.pk).update(
            column_id=column.id, rank=rank, version=F("version") + 1, updated_at=task.updated_at
        )
        from_column = column if column.id == from_column_id else Column.objects.get(pk=from_column_id)
        record_activity(
            task.id,
            caller,
            "moved",
            from_column=from_column_id,
            to_column=column.id,
            from_name=from_column.name,
            to_name=column.name,
        )
        if column.id != from_column_id:
            publish(
                "TaskStatusChanged",
                {
                    **task_event_data(task),
                    "from_column_id": str(from_column_id),
                    "to_column_id": str(column.id),
                    "from_status": from_column.category,
                    "to_status": column.category,
                },
                caller=caller,
                aggregate_id=task.id,
            )
        if needs_rebalance(rank):
            _column_rebalance(column.id)
            task.refresh_from_db(fields=["rank"])
        live.board_broadcast(
            board_id=task.board_id,
            event="task.moved",
            data={
                "id": task.id,
                "key": task.key,
                "from_column": from_column_id,
                "column": column.id,
                "rank": task.rank,
                "version": task.version,
            },
        )
    return task


def _rank_for_place(
    task: Task, column_id: int, *, before_id: int | None, after_id: int | None, index: int | None
) -> str:
    others = Task.objects.filter(column_id=column_id, archived_at__isnull=True).exclude(pk=task.pk)
    if before_id is not None:
        anchor = others.filter(pk=before_id).values_list("rank", flat=True).first()
        if anchor is None:
            raise InvalidInput("before is not a task in that column", code="invalid_place")
        previous = others.filter(rank__lt=anchor).order_by("-rank").values_list("rank", flat=True).first()
        return rank_between(previous, anchor)
    if after_id is not None:
        anchor = others.filter(pk=after_id).values_list("rank", flat=True).first()
        if anchor is None:
            raise InvalidInput("after is not a task in that column", code="invalid_place")
        following = others.filter(rank__gt=anchor).order_by("rank").values_list("rank", flat=True).first()
        return rank_between(anchor, following)
    if index is not None:
        start = max(index - 1, 0)
        around = list(others.order_by("rank", "id").values_list("rank", flat=True)[start : index + 1])
        if index == 0:
            return rank_between(None, around[0] if around else None)
        if not around:  # past the end
            last = others.order_by("-rank").values_list("rank", flat=True).first()
            return rank_between(last, None)
        return rank_between(around[0], around[1] if len(around) > 1 else None)
    last = others.order_by("-rank").values_list("rank", flat=True).first()
    return rank_between(last, None)


def _column_rebalance(column_id: int) -> None:
    """Respace a column's ranks evenly; rare (a rank outgrew MAX_RANK_LENGTH, or two collided)."""
    tasks = list(Task.objects.select_for_update().filter(column_id=column_id).order_by("rank", "id").only("id", "rank"))
    for task, rank in zip(tasks, spread(len(tasks)), strict=True):
        task.rank = rank
    Task.objects.bulk_update(tasks, ["rank"], batch_size=500)
    board_id = Column.objects.values_list("board_id", flat=True).get(pk=column_id)
    live.board_broadcast(
        board_id=board_id, event="column.reranked", data={"id": column_id, "ranks": {t.id: t.rank for t in tasks}}
    )
