"""Writes of the board domain. Each function is one transaction (callers may nest them),
checks the caller's permission, records the task's activity, publishes the domain event
through the outbox and queues the live update (live.board_broadcast) for after commit.
"""

import datetime as dt
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from apps.common.exceptions import Conflict, Forbidden, NotFound
from apps.projects import live
from apps.projects.db import tenant_connection, tenant_db
from apps.projects.errors import InvalidInput, VersionConflict, WipLimitReached
from apps.projects.models import (
    Activity,
    Attachment,
    Board,
    Column,
    ColumnCategory,
    Comment,
    Priority,
    Project,
    ProjectMember,
    ProjectRole,
    Subtask,
    Task,
    WorkLog,
)
from apps.projects.permissions import READ, Caller, project_actions, require
from apps.projects.ranks import RankError, needs_rebalance, rank_between, spread
from apps.projects.selectors import attachment_out, comment_out, task_card, worklog_out

DEFAULT_COLUMNS = (
    ("To do", ColumnCategory.TODO, None),
    ("In progress", ColumnCategory.DOING, None),
    ("Done", ColumnCategory.DONE, None),
)
TASK_FIELDS = ("title", "description", "assignees", "labels", "priority", "due_date", "estimate_minutes")
MAX_LABELS = 20
MAX_ASSIGNEES = 20


def _publish(event_type: str, data: dict, *, caller: Caller, aggregate_id: object) -> None:
    from apps.events.outbox import publish
    from apps.projects.tenants.context import current_tenant
    from apps.projects.tenants.outbox import tenant_outbox_move_after_commit

    using = tenant_db()
    publish(
        event_type,
        data,
        tenant_id=caller.tenant_id,
        actor_id=caller.user_id,
        aggregate_id=str(aggregate_id),
        using=using,
    )
    if using != "default":
        # A database-mode tenant: the event is in its own database's outbox, committed with the change;
        # it moves to the service's outbox after the commit (apps/projects/tenants/outbox.py, ADR 0001).
        tenant_outbox_move_after_commit(current_tenant(), using=using)


def _activity(task_id: int, caller: Caller, verb: str, **data: object) -> None:
    Activity.objects.create(task_id=task_id, actor_id=caller.user_id, verb=verb, data=data)


def _check_version(current: int, expected: int | None, what: str) -> None:
    if expected is not None and expected != current:
        raise VersionConflict(
            f"The {what} changed since you read it (version {expected}, now {current}); reload and retry",
            current_version=current,
        )


def _full_clean(instance: object, *, exclude: Iterable[str] = ()) -> None:
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput("The request is invalid", code="validation_error", fields=exc.message_dict) from None


def _clean_strings(values: Iterable[str], *, what: str, limit: int, max_length: int) -> list[str]:
    cleaned = list(dict.fromkeys(value.strip() for value in values if value and value.strip()))
    if len(cleaned) > limit:
        raise InvalidInput(f"At most {limit} {what}")
    if any(len(value) > max_length for value in cleaned):
        raise InvalidInput(f"Each of {what} is at most {max_length} characters")
    return cleaned


# Projects, members, boards, columns ------------------------------------------------------


def project_create(*, caller: Caller, key: str, name: str, description: str = "", board_name: str = "Board") -> Project:
    if "create_project" not in caller.permissions:
        raise Forbidden("You may not create projects", code="permission_denied")
    project = Project(key=key.strip().upper(), name=name.strip(), description=description, created_by=caller.user_id)
    _full_clean(project, exclude=["task_counter", "version"])
    with transaction.atomic(using=tenant_db()):
        if Project.objects.filter(key=project.key).exists():
            raise Conflict(f"A project with key {project.key} exists", code="duplicate_key")
        project.save()
        ProjectMember.objects.create(
            project=project, user_id=caller.user_id, role=ProjectRole.MANAGER, display_name=_caller_name(caller)
        )
        board = Board.objects.create(project=project, name=board_name.strip() or "Board")
        Column.objects.bulk_create(
            Column(board=board, name=name, category=category, wip_limit=wip, position=index)
            for index, (name, category, wip) in enumerate(DEFAULT_COLUMNS)
        )
        _publish(
            "ProjectCreated",
            {"project_id": str(project.id), "key": project.key, "name": project.name, "created_by": caller.user_id},
            caller=caller,
            aggregate_id=project.id,
        )
        _publish(
            "ProjectUserAdded",
            {"project_id": str(project.id), "user_id": caller.user_id, "role": ProjectRole.MANAGER},
            caller=caller,
            aggregate_id=project.id,
        )
    return project


def _caller_name(caller: Caller) -> str:
    return str(getattr(caller, "name", "") or getattr(caller, "email", "") or "")[:200]


def _locked_project(project_id: int) -> Project:
    project = Project.objects.select_for_update().filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project")
    return project


def project_update(
    *,
    caller: Caller,
    project_id: int,
    expected_version: int | None = None,
    name: str | None = None,
    description: str | None = None,
) -> Project:
    with transaction.atomic(using=tenant_db()):
        project = _locked_project(project_id)
        require(project_actions(caller=caller, project_id=project.id), "edit_columns")
        _check_version(project.version, expected_version, "project")
        changed = {}
        if name is not None and name.strip() != project.name:
            changed["name"] = project.name = name.strip()
        if description is not None and description != project.description:
            changed["description"] = project.description = description
        if not changed:
            return project
        _full_clean(project)
        project.version += 1
        project.save()
        _publish(
            "ProjectUpdated",
            {"project_id": str(project.id), "key": project.key, "changes": sorted(changed)},
            caller=caller,
            aggregate_id=project.id,
        )
    return project


def project_member_set(
    *, caller: Caller, project_id: int, user_id: str, role: str, display_name: str = ""
) -> ProjectMember:
    """Add a member, or change an existing member's role."""
    if role not in ProjectRole.values:
        raise InvalidInput(f"role must be one of {', '.join(ProjectRole.values)}")
    user_id = user_id.strip()
    if not user_id or len(user_id) > 64:
        raise InvalidInput("user_id must be 1-64 characters")
    with transaction.atomic(using=tenant_db()):
        project = _locked_project(project_id)
        require(project_actions(caller=caller, project_id=project.id), "manage_members")
        member, created = ProjectMember.objects.get_or_create(
            project=project, user_id=user_id, defaults={"role": role, "display_name": display_name[:200]}
        )
        if not created:
            if member.role == ProjectRole.MANAGER and role != ProjectRole.MANAGER:
                _ensure_another_manager(project.id, user_id)
            member.role = role
            if display_name:
                member.display_name = display_name[:200]
            member.save(update_fields=["role", "display_name"])
        _publish(
            "ProjectUserAdded",
            {"project_id": str(project.id), "user_id": user_id, "role": role},
            caller=caller,
            aggregate_id=project.id,
        )
    return member


def _ensure_another_manager(project_id: int, leaving_user_id: str) -> None:
    others = ProjectMember.objects.filter(project_id=project_id, role=ProjectRole.MANAGER).exclude(
        user_id=leaving_user_id
    )
    if not others.exists():
        raise Conflict("A project keeps at least one manager", code="last_manager")


def project_member_remove(*, caller: Caller, project_id: int, user_id: str) -> None:
    with transaction.atomic(using=tenant_db()):
        project = _locked_project(project_id)
        require(project_actions(caller=caller, project_id=project.id), "manage_members")
        member = ProjectMember.objects.filter(project=project, user_id=user_id).first()
        if member is None:
            raise NotFound("No such member")
        if member.role == ProjectRole.MANAGER:
            _ensure_another_manager(project.id, user_id)
        member.delete()


def board_create(*, caller: Caller, project_id: int, name: str) -> Board:
    with transaction.atomic(using=tenant_db()):
        project = _locked_project(project_id)
        require(project_actions(caller=caller, project_id=project.id), "edit_columns")
        position = (project.boards.aggregate(top=Max("position"))["top"] or 0) + 1
        board = Board(project=project, name=name.strip(), position=position)
        _full_clean(board)
        board.save()
        Column.objects.bulk_create(
            Column(board=board, name=column_name, category=category, wip_limit=wip, position=index)
            for index, (column_name, category, wip) in enumerate(DEFAULT_COLUMNS)
        )
    return board


def _board_for(caller: Caller, board_id: int, action: str, *, lock: bool = False) -> tuple[Board, frozenset[str]]:
    boards = Board.objects.select_for_update() if lock else Board.objects
    board = boards.filter(pk=board_id).first()
    if board is None:
        raise NotFound("No such board")
    actions = project_actions(caller=caller, project_id=board.project_id)
    require(actions, action, what="board")
    return board, actions


def _column_out(column: Column) -> dict:
    return {
        "id": column.id,
        "name": column.name,
        "position": column.position,
        "wip_limit": column.wip_limit,
        "category": column.category,
        "version": column.version,
    }


def column_create(
    *, caller: Caller, board_id: int, name: str, category: str = ColumnCategory.TODO, wip_limit: int | None = None
) -> Column:
    with transaction.atomic(using=tenant_db()):
        board, _ = _board_for(caller, board_id, "edit_columns", lock=True)
        position = (board.columns.aggregate(top=Max("position"))["top"] or 0) + 1
        column = Column(board=board, name=name.strip(), category=category, wip_limit=wip_limit, position=position)
        _full_clean(column)
        column.save()
        live.board_broadcast(board_id=board.id, event="column.created", data=_column_out(column))
    return column


def column_update(
    *,
    caller: Caller,
    column_id: int,
    expected_version: int | None = None,
    name: str | None = None,
    category: str | None = None,
    wip_limit: int | None = None,
    clear_wip_limit: bool = False,
    position: int | None = None,
) -> Column:
    with transaction.atomic(using=tenant_db()):
        column = Column.objects.select_for_update().filter(pk=column_id).first()
        if column is None:
            raise NotFound("No such column")
        _board_for(caller, column.board_id, "edit_columns")
        _check_version(column.version, expected_version, "column")
        if name is not None:
            column.name = name.strip()
        if category is not None:
            column.category = category
        if clear_wip_limit:
            column.wip_limit = None
        elif wip_limit is not None:
            column.wip_limit = wip_limit
        _full_clean(column)
        column.version += 1
        column.save()
        if position is not None:
            _column_reposition(column, position)
        live.board_broadcast(board_id=column.board_id, event="column.updated", data=_column_out(column))
    return column


def _column_reposition(column: Column, position: int) -> None:
    # A board has a handful of columns: renumbering them all is cheap and keeps order simple.
    siblings = list(Column.objects.filter(board_id=column.board_id).exclude(pk=column.pk).order_by("position", "id"))
    siblings.insert(max(0, min(position, len(siblings))), column)
    for index, sibling in enumerate(siblings):
        sibling.position = index
    Column.objects.bulk_update(siblings, ["position"])


def column_delete(*, caller: Caller, column_id: int) -> None:
    with transaction.atomic(using=tenant_db()):
        column = Column.objects.select_for_update().filter(pk=column_id).first()
        if column is None:
            raise NotFound("No such column")
        _board_for(caller, column.board_id, "edit_columns")
        if column.tasks.exists():
            raise Conflict("Move or delete the column's tasks first", code="column_not_empty")
        if Column.objects.filter(board_id=column.board_id).count() == 1:
            raise Conflict("A board keeps at least one column", code="last_column")
        board_id = column.board_id
        column.delete()
        live.board_broadcast(board_id=board_id, event="column.deleted", data={"id": column_id})


# Tasks -------------------------------------------------------------------------------------


def _check_wip(column: Column, actions: frozenset[str], override_wip: bool) -> None:
    if column.wip_limit is None:
        return
    if Task.objects.filter(column_id=column.id).count() < column.wip_limit:
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
        actions = project_actions(caller=caller, project_id=board.project_id)
        require(actions, "create_task", what="board")
        assignees = _clean_strings(assignees, what="assignees", limit=MAX_ASSIGNEES, max_length=64)
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
            labels=_clean_strings(labels, what="labels", limit=MAX_LABELS, max_length=40),
            reporter_id=caller.user_id,
            priority=priority,
            due_date=due_date,
            estimate_minutes=estimate_minutes,
        )
        _full_clean(task, exclude=["project", "board", "column", "rank", "number", "key"])
        task.save()
        _activity(task.id, caller, "created", column=column.id)
        task_event = _task_event_data(task)
        _publish(
            "TaskCreated",
            {**task_event, "title": task.title, "reporter_id": caller.user_id},
            caller=caller,
            aggregate_id=task.id,
        )
        if assignees:
            _publish(
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


def _task_event_data(task: Task) -> dict:
    return {
        "task_id": str(task.id),
        "key": task.key,
        "project_id": str(task.project_id),
        "board_id": str(task.board_id),
        "column_id": str(task.column_id),
    }


def _locked_task(caller: Caller, task_id: int, action: str) -> tuple[Task, frozenset[str]]:
    task = Task.objects.select_for_update().filter(pk=task_id).first()
    if task is None:
        raise NotFound("No such task")
    actions = project_actions(caller=caller, project_id=task.project_id)
    require(actions, action, what="task")
    return task, actions


def task_update(*, caller: Caller, task_id: int, expected_version: int | None = None, **changes: object) -> Task:
    unknown = set(changes) - set(TASK_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}")
    with transaction.atomic(using=tenant_db()):
        task, actions = _locked_task(caller, task_id, "edit_task")
        _check_version(task.version, expected_version, "task")
        if "assignees" in changes:
            changes["assignees"] = _clean_strings(
                changes["assignees"] or [], what="assignees", limit=MAX_ASSIGNEES, max_length=64
            )
            if changes["assignees"] != task.assignees and "assign_task" not in actions:
                raise Forbidden("You may not assign tasks", code="permission_denied")
        if "labels" in changes:
            changes["labels"] = _clean_strings(changes["labels"] or [], what="labels", limit=MAX_LABELS, max_length=40)
        if isinstance(changes.get("title"), str):
            changes["title"] = changes["title"].strip()
        previous_assignees = list(task.assignees)
        changed = {name: value for name, value in changes.items() if getattr(task, name) != value}
        if not changed:
            return task
        for name, value in changed.items():
            setattr(task, name, value)
        _full_clean(task, exclude=["project", "board", "column", "rank", "number", "key"])
        task.version += 1
        task.save(update_fields=[*changed, "version", "updated_at"])
        _activity(task.id, caller, "updated", fields=sorted(changed))
        added = [user for user in task.assignees if user not in previous_assignees]
        if "assignees" in changed:
            _activity(task.id, caller, "assigned", assignees=task.assignees, added=added)
            _publish(
                "TaskAssigned",
                {**_task_event_data(task), "assignees": task.assignees, "added": added},
                caller=caller,
                aggregate_id=task.id,
            )
        live.board_broadcast(board_id=task.board_id, event="task.updated", data=task_card(task))
    return task


def task_delete(*, caller: Caller, task_id: int, expected_version: int | None = None) -> None:
    with transaction.atomic(using=tenant_db()):
        task, actions = _locked_task(caller, task_id, READ)
        if "delete_task" not in actions and not (task.reporter_id == caller.user_id and "edit_task" in actions):
            raise Forbidden("You may not delete this task", code="permission_denied")
        _check_version(task.version, expected_version, "task")
        board_id, column_id = task.board_id, task.column_id
        task.delete()
        live.board_broadcast(board_id=board_id, event="task.deleted", data={"id": task_id, "column": column_id})


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
        task, actions = _locked_task(caller, task_id, "move_task")
        _check_version(task.version, expected_version, "task")
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
        _activity(task.id, caller, "moved", from_column=from_column_id, to_column=column.id)
        if column.id != from_column_id:
            from_column = Column.objects.only("name", "category").get(pk=from_column_id)
            _publish(
                "TaskStatusChanged",
                {
                    **_task_event_data(task),
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
    others = Task.objects.filter(column_id=column_id).exclude(pk=task.pk)
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


# Task parts ----------------------------------------------------------------------------------


def _task_changed(task: Task) -> None:
    Task.objects.filter(pk=task.pk).update(updated_at=timezone.now())


def subtask_create(*, caller: Caller, task_id: int, title: str) -> Subtask:
    with transaction.atomic(using=tenant_db()):
        task, _ = _locked_task(caller, task_id, "edit_task")
        position = (task.subtasks.aggregate(top=Max("position"))["top"] or 0) + 1
        subtask = Subtask(task=task, title=title.strip(), position=position)
        _full_clean(subtask)
        subtask.save()
        _activity(task.id, caller, "subtask_added", subtask=subtask.id, title=subtask.title)
        live.board_broadcast(board_id=task.board_id, event="task.updated", data=task_card(task))
    return subtask


def subtask_update(*, caller: Caller, subtask_id: int, title: str | None = None, done: bool | None = None) -> Subtask:
    with transaction.atomic(using=tenant_db()):
        subtask = Subtask.objects.select_related("task").filter(pk=subtask_id).first()
        if subtask is None:
            raise NotFound("No such subtask")
        task, _ = _locked_task(caller, subtask.task_id, "edit_task")
        if title is not None:
            subtask.title = title.strip()
        if done is not None and done != subtask.done:
            subtask.done = done
            _activity(task.id, caller, "subtask_done" if done else "subtask_reopened", subtask=subtask.id)
        _full_clean(subtask)
        subtask.save()
        live.board_broadcast(board_id=task.board_id, event="task.updated", data=task_card(task))
    return subtask


def subtask_delete(*, caller: Caller, subtask_id: int) -> None:
    with transaction.atomic(using=tenant_db()):
        subtask = Subtask.objects.filter(pk=subtask_id).first()
        if subtask is None:
            raise NotFound("No such subtask")
        task, _ = _locked_task(caller, subtask.task_id, "edit_task")
        subtask.delete()
        live.board_broadcast(board_id=task.board_id, event="task.updated", data=task_card(task))


def comment_add(*, caller: Caller, task_id: int, body: str) -> Comment:
    body = body.strip()
    if not body:
        raise InvalidInput("A comment needs a body")
    if len(body) > 20_000:
        raise InvalidInput("A comment is at most 20000 characters")
    with transaction.atomic(using=tenant_db()):
        task, _ = _locked_task(caller, task_id, "comment")
        comment = Comment.objects.create(task=task, author_id=caller.user_id, body=body)
        _activity(task.id, caller, "commented", comment=comment.id)
        _publish(
            "TaskCommentAdded",
            {**_task_event_data(task), "comment_id": str(comment.id), "author_id": caller.user_id},
            caller=caller,
            aggregate_id=task.id,
        )
        live.board_broadcast(
            board_id=task.board_id, event="comment.added", data={"task": task.id, "comment": comment_out(comment)}
        )
    return comment


def _sniffed_type(head: bytes) -> str | None:
    signatures = {
        b"\x89PNG\r\n\x1a\n": "image/png",
        b"\xff\xd8\xff": "image/jpeg",
        b"GIF87a": "image/gif",
        b"GIF89a": "image/gif",
        b"%PDF-": "application/pdf",
        b"PK\x03\x04": "application/zip",
    }
    for signature, content_type in signatures.items():
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


BINARY_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "application/zip"})


def attachment_add(*, caller: Caller, task_id: int, upload: UploadedFile) -> Attachment:
    max_bytes = settings.PROJECTS_ATTACHMENT_MAX_BYTES
    allowed = frozenset(settings.PROJECTS_ATTACHMENT_TYPES)
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if upload.size is None or upload.size <= 0:
        raise InvalidInput("The file is empty", code="empty_file")
    if upload.size > max_bytes:
        raise InvalidInput(f"Files are at most {max_bytes} bytes", code="file_too_large", max_bytes=max_bytes)
    if content_type not in allowed:
        raise InvalidInput(
            f"Files of type {content_type or 'unknown'} are not accepted",
            code="file_type_refused",
            allowed=sorted(allowed),
        )
    head = upload.read(16)
    upload.seek(0)
    sniffed = _sniffed_type(head)
    if (content_type in BINARY_TYPES and sniffed != content_type) or (
        content_type not in BINARY_TYPES and sniffed is not None
    ):
        raise InvalidInput("The file's content does not match its type", code="file_type_mismatch")
    filename = (upload.name or "file").replace("/", "_").replace("\\", "_")[-255:]
    with transaction.atomic(using=tenant_db()):
        task, _ = _locked_task(caller, task_id, "edit_task")
        attachment = Attachment(
            task=task, filename=filename, content_type=content_type, size=upload.size, uploaded_by=caller.user_id
        )
        attachment.file.save(filename, upload, save=False)
        try:
            attachment.save()
            _activity(task.id, caller, "attachment_added", attachment=attachment.id, filename=filename)
            live.board_broadcast(
                board_id=task.board_id,
                event="attachment.added",
                data={"task": task.id, "attachment": attachment_out(attachment)},
            )
        except BaseException:
            # The row is rolled back with the transaction; the stored file must go too.
            attachment.file.delete(save=False)
            raise
    return attachment


def attachment_delete(*, caller: Caller, attachment_id: int) -> None:
    with transaction.atomic(using=tenant_db()):
        attachment = Attachment.objects.filter(pk=attachment_id).first()
        if attachment is None:
            raise NotFound("No such attachment")
        task, _ = _locked_task(caller, attachment.task_id, "edit_task")
        stored = attachment.file.name
        storage = attachment.file.storage
        attachment.delete()
        _activity(task.id, caller, "attachment_removed", filename=attachment.filename)
        transaction.on_commit(lambda: storage.delete(stored), using=tenant_db())


def worklog_add(*, caller: Caller, task_id: int, minutes: int, day: dt.date | None = None, note: str = "") -> WorkLog:
    day = day or timezone.localdate()
    if minutes < 1 or minutes > 24 * 60:
        raise InvalidInput("minutes must be between 1 and 1440")
    if day > timezone.localdate() + dt.timedelta(days=1):
        raise InvalidInput("Work cannot be logged in the future")
    with transaction.atomic(using=tenant_db()):
        task, _ = _locked_task(caller, task_id, "log_work")
        worklog = WorkLog(task=task, user_id=caller.user_id, day=day, minutes=minutes, note=note.strip())
        _full_clean(worklog)
        worklog.save()
        _activity(task.id, caller, "work_logged", minutes=minutes, day=day.isoformat())
        live.board_broadcast(
            board_id=task.board_id, event="worklog.added", data={"task": task.id, "worklog": worklog_out(worklog)}
        )
    return worklog


def worklog_delete(*, caller: Caller, worklog_id: int) -> None:
    with transaction.atomic(using=tenant_db()):
        worklog = WorkLog.objects.filter(pk=worklog_id).first()
        if worklog is None:
            raise NotFound("No such work log")
        _, actions = _locked_task(caller, worklog.task_id, "log_work")
        if worklog.user_id != caller.user_id and "manage_members" not in actions:
            raise Forbidden("You may only remove your own work logs", code="permission_denied")
        worklog.delete()


def board_presence(*, board_id: int, channel_name: str, viewer: dict | None) -> list[dict]:
    """Record that someone opened (viewer) or closed (None) the board; tell its viewers."""
    viewers = live.presence_set(
        schema=tenant_connection().schema_name, board_id=board_id, channel_name=channel_name, viewer=viewer
    )
    live.board_broadcast(board_id=board_id, event="presence", data={"viewers": viewers}, sequenced=False)
    return viewers
