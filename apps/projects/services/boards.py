"""Boards and their columns."""

from django.db import transaction
from django.db.models import Max

from apps.common.exceptions import Conflict, NotFound
from apps.projects import live, schemas
from apps.projects.db import tenant_db
from apps.projects.models import Board, Column, ColumnCategory
from apps.projects.permissions import Caller, project_actions, require
from apps.projects.services.shared import check_version, full_clean, locked_project

DEFAULT_COLUMNS = (
    ("To do", ColumnCategory.TODO, None),
    ("In progress", ColumnCategory.DOING, None),
    ("Done", ColumnCategory.DONE, None),
)


def board_create(*, caller: Caller, project_id: int, name: str) -> Board:
    with transaction.atomic(using=tenant_db()):
        project = locked_project(project_id)
        require(project_actions(caller=caller, project_id=project.id), "edit_columns")
        position = (project.boards.aggregate(top=Max("position"))["top"] or 0) + 1
        board = Board(project=project, name=name.strip(), position=position)
        full_clean(board)
        board.save()
        default_columns_create(board=board)
    return board


def default_columns_create(*, board: Board) -> None:
    """The columns a new board starts with (inside the caller's transaction)."""
    Column.objects.bulk_create(
        Column(board=board, name=name, category=category, wip_limit=wip, position=index)
        for index, (name, category, wip) in enumerate(DEFAULT_COLUMNS)
    )


def _board_for(caller: Caller, board_id: int, action: str, *, lock: bool = False) -> tuple[Board, frozenset[str]]:
    boards = Board.objects.select_for_update() if lock else Board.objects
    board = boards.filter(pk=board_id).first()
    if board is None:
        raise NotFound("No such board")
    actions = project_actions(caller=caller, project_id=board.project_id)
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
