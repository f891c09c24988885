"""Boards and their columns: create from a template, rename, archive and restore; columns added,
renamed, reordered, limited and deleted (their cards moved to another column first)."""

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.common.exceptions import Conflict, NotFound
from apps.projects import live, schemas
from apps.projects.db import tenant_db
from apps.projects.errors import InvalidInput
from apps.projects.models import Activity, Board, Column, ColumnCategory, Task
from apps.projects.permissions import Caller, project_actions, require
from apps.projects.ranks import spread
from apps.projects.services.shared import check_version, full_clean, locked_project, publish, task_event_data

# The columns a new board starts with, by template: (name, category, WIP limit).
BOARD_TEMPLATES: dict[str, tuple[tuple[str, str, int | None], ...]] = {
    "kanban": (
        ("To do", ColumnCategory.TODO, None),
        ("In progress", ColumnCategory.DOING, None),
        ("Done", ColumnCategory.DONE, None),
    ),
    "flow": (
        ("Backlog", ColumnCategory.TODO, None),
        ("Ready", ColumnCategory.TODO, None),
        ("In progress", ColumnCategory.DOING, None),
        ("Review", ColumnCategory.DOING, None),
        ("Done", ColumnCategory.DONE, None),
    ),
}
DEFAULT_TEMPLATE = "kanban"
DEFAULT_COLUMNS = BOARD_TEMPLATES[DEFAULT_TEMPLATE]


def template_columns(template: str) -> tuple[tuple[str, str, int | None], ...]:
    if template not in BOARD_TEMPLATES:
        raise InvalidInput(
            f"template must be one of {', '.join(BOARD_TEMPLATES)}", code="invalid_template", field="template"
        )
    return BOARD_TEMPLATES[template]


def board_create(*, caller: Caller, project_id: int, name: str, template: str = DEFAULT_TEMPLATE) -> Board:
    columns = template_columns(template)
    with transaction.atomic(using=tenant_db()):
        project = locked_project(project_id)
        require(project_actions(caller=caller, project_id=project.id), "edit_columns")
        position = (project.boards.aggregate(top=Max("position"))["top"] or 0) + 1
        board = Board(project=project, name=name.strip(), position=position)
        full_clean(board)
        board.save()
        default_columns_create(board=board, template=template, columns=columns)
    return board


def default_columns_create(
    *, board: Board, template: str = DEFAULT_TEMPLATE, columns: tuple[tuple[str, str, int | None], ...] | None = None
) -> None:
    """The columns a new board starts with (inside the caller's transaction)."""
    Column.objects.bulk_create(
        Column(board=board, name=name, category=category, wip_limit=wip, position=index)
        for index, (name, category, wip) in enumerate(columns or template_columns(template))
    )


def board_update(
    *,
    caller: Caller,
    board_id: int,
    expected_version: int | None = None,
    name: str | None = None,
    archived: bool | None = None,
) -> Board:
    """Rename, archive or restore a board. An archived board is read-only: only restoring it
    (archived=False, alone or with a new name) is accepted."""
    with transaction.atomic(using=tenant_db()):
        board = Board.objects.select_for_update().filter(pk=board_id).first()
        if board is None:
            raise NotFound("No such board")
        # Restoring needs the right to edit the board as if it were not archived (its project's
        # archive still counts); anything else needs the board as it is.
        restoring = archived is False and board.archived_at is not None
        actions = project_actions(caller=caller, project_id=board.project_id, board_id=None if restoring else board.id)
        require(actions, "edit_columns", what="board")
        check_version(board.version, expected_version, "board")
        changed = []
        if name is not None and name.strip() != board.name:
            board.name = name.strip()
            changed.append("name")
        if archived is not None and archived != (board.archived_at is not None):
            board.archived_at = timezone.now() if archived else None
            changed.append("archived")
        if not changed:
            return board
        full_clean(board)
        board.version += 1
        board.save(update_fields=["name", "archived_at", "version"])
        live.board_broadcast(
            board_id=board.id,
            event="board.updated",
            data={
                "id": board.id,
                "name": board.name,
                "archived": board.archived_at is not None,
                "version": board.version,
            },
        )
    return board


def _board_for(caller: Caller, board_id: int, action: str, *, lock: bool = False) -> tuple[Board, frozenset[str]]:
    boards = Board.objects.select_for_update() if lock else Board.objects
    board = boards.filter(pk=board_id).first()
    if board is None:
        raise NotFound("No such board")
    actions = project_actions(caller=caller, project_id=board.project_id, board_id=board.id)
    require(actions, action, what="board")
    return board, actions


def column_create(
    *, caller: Caller, board_id: int, name: str, category: str = ColumnCategory.TODO, wip_limit: int | None = None
) -> Column:
    with transaction.atomic(using=tenant_db()):
        board, _ = _board_for(caller, board_id, "edit_columns", lock=True)
        position = (board.columns.aggregate(top=Max("position"))["top"] or 0) + 1
        column = Column(board=board, name=name.strip(), category=category, wip_limit=wip_limit, position=position)
        full_clean(column)
        column.save()
        live.board_broadcast(board_id=board.id, event="column.created", data=schemas.dump(schemas.ColumnFields, column))
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
        check_version(column.version, expected_version, "column")
        if name is not None:
            column.name = name.strip()
        if category is not None:
            column.category = category
        if clear_wip_limit:
            column.wip_limit = None
        elif wip_limit is not None:
            column.wip_limit = wip_limit
        full_clean(column)
        column.version += 1
        column.save()
        if position is not None:
            _column_reposition(column, position)
        live.board_broadcast(
            board_id=column.board_id, event="column.updated", data=schemas.dump(schemas.ColumnFields, column)
        )
    return column


def _column_reposition(column: Column, position: int) -> None:
    # A board has a handful of columns: renumbering them all is cheap and keeps order simple.
    siblings = list(Column.objects.filter(board_id=column.board_id).exclude(pk=column.pk).order_by("position", "id"))
    siblings.insert(max(0, min(position, len(siblings))), column)
    for index, sibling in enumerate(siblings):
        sibling.position = index
    Column.objects.bulk_update(siblings, ["position"])


def column_delete(*, caller: Caller, column_id: int, move_to: int | None = None) -> None:
    """Delete a column; its cards first go to the end of column `move_to` (of the same board),
    in their order. A column that still has cards and no `move_to` is refused. The target's WIP
    limit does not stop the move: whoever may delete columns may override limits."""
    with transaction.atomic(using=tenant_db()):
        column = Column.objects.select_for_update().filter(pk=column_id).first()
        if column is None:
            raise NotFound("No such column")
        _board_for(caller, column.board_id, "edit_columns", lock=True)
        if Column.objects.filter(board_id=column.board_id).count() == 1:
            raise Conflict("A board keeps at least one column", code="last_column")
        if move_to is not None:
            target = Column.objects.select_for_update().filter(pk=move_to, board_id=column.board_id).first()
            if target is None or target.id == column.id:
                raise InvalidInput(
                    "move_to must be another column of this board", code="invalid_column", field="move_to"
                )
            _column_tasks_move(caller, column, target)
        elif column.tasks.exists():
            raise Conflict("The column has cards: say which column they move to (move_to)", code="column_not_empty")
        board_id = column.board_id
        column.delete()
        live.board_broadcast(board_id=board_id, event="column.deleted", data={"id": column_id, "moved_to": move_to})


def _column_tasks_move(caller: Caller, column: Column, target: Column) -> None:
    """Every task of `column` to the end of `target`, keeping both orders; the target's ranks are
    spread afresh (one bulk update), each moved task gets its history line and its event."""
    staying = list(Task.objects.select_for_update().filter(column_id=target.id).order_by("rank", "id"))
    moving = list(Task.objects.select_for_update().filter(column_id=column.id).order_by("rank", "id"))
    if not moving:
        return
    now = timezone.now()
    for task, rank in zip([*staying, *moving], spread(len(staying) + len(moving)), strict=True):
        task.rank = rank
    for task in moving:
        task.column_id, task.version, task.updated_at = target.id, task.version + 1, now
    Task.objects.bulk_update(staying, ["rank"], batch_size=500)
    Task.objects.bulk_update(moving, ["column_id", "rank", "version", "updated_at"], batch_size=500)
    Activity.objects.bulk_create(
        Activity(
            task_id=task.id,
            actor_id=caller.user_id,
            verb="moved",
            data={
                "from_column": column.id,
                "to_column": target.id,
                "from_column_name": column.name,
                "to_column_name": target.name,
                "column_deleted": True,
            },
        )
        for task in moving
    )
    for task in moving:
        publish(
            "TaskStatusChanged",
            {
                **task_event_data(task),
                "from_column_id": str(column.id),
                "to_column_id": str(target.id),
                "from_status": column.category,
                "to_status": target.category,
            },
            caller=caller,
            aggregate_id=task.id,
        )
