"""Reads of the board domain. Every function runs a fixed number of queries, whatever the
number of cards (tests assert it), and returns plain dicts ready for JSON or templates.
"""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q, Sum
from markdown_it import MarkdownIt

from apps.projects.errors import InvalidInput, NotFound
from apps.projects.models import (
    Activity,
    Attachment,
    Board,
    Column,
    Comment,
    Project,
    ProjectMember,
    Subtask,
    Task,
    WorkLog,
)
from apps.projects.permissions import READ, Caller, actions_for_role, is_tenant_admin, project_actions, require

# Raw HTML is escaped and javascript: links refused, so rendered markdown is safe to show.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")

CARD_FIELDS = (
    "id",
    "key",
    "title",
    "column_id",
    "rank",
    "assignees",
    "labels",
    "priority",
    "due_date",
    "estimate_minutes",
    "version",
)
MAX_PAGE = 200


def markdown_html(text: str) -> str:
    return _markdown.render(text or "")


@dataclass(frozen=True)
class TaskFilters:
    assignee: str | None = None
    label: str | None = None
    text: str | None = None
    due_before: dt.date | None = None
    due_after: dt.date | None = None
    column: int | None = None

    def apply(self, tasks: "Task.objects") -> "Task.objects":  # type: ignore[name-defined]
        if self.assignee:
            tasks = tasks.filter(assignees__contains=[self.assignee])
        if self.label:
            tasks = tasks.filter(labels__contains=[self.label])
        if self.text:
            tasks = tasks.filter(
                Q(title__icontains=self.text) | Q(description__icontains=self.text) | Q(key=self.text.upper())
            )
        if self.due_before:
            tasks = tasks.filter(due_date__lte=self.due_before)
        if self.due_after:
            tasks = tasks.filter(due_date__gte=self.due_after)
        if self.column:
            tasks = tasks.filter(column_id=self.column)
        return tasks

    @property
    def active(self) -> bool:
        return any(value not in (None, "") for value in vars(self).values())


def _card(row: dict, subtasks: dict[int, tuple[int, int]], comments: dict[int, int]) -> dict:
    total, done = subtasks.get(row["id"], (0, 0))
    return {
        "id": row["id"],
        "key": row["key"],
        "title": row["title"],
        "column": row["column_id"],
        "rank": row["rank"],
        "assignees": row["assignees"],
        "labels": row["labels"],
        "priority": row["priority"],
        "due_date": row["due_date"].isoformat() if row["due_date"] else None,
        "estimate_minutes": row["estimate_minutes"],
        "version": row["version"],
        "subtasks_total": total,
        "subtasks_done": done,
        "comment_count": comments.get(row["id"], 0),
    }


def _subtask_counts(**task_filter: object) -> dict[int, tuple[int, int]]:
    rows = (
        Subtask.objects.filter(**task_filter)
        .values("task_id")
        .annotate(total=Count("id"), done=Count("id", filter=Q(done=True)))
        .values_list("task_id", "total", "done")
    )
    return {task_id: (total, done) for task_id, total, done in rows}


def _comment_counts(**task_filter: object) -> dict[int, int]:
    rows = Comment.objects.filter(**task_filter).values("task_id").annotate(n=Count("id")).values_list("task_id", "n")
    return dict(rows)


def task_card(task: Task) -> dict:
    """One card, as the board shows it (for live updates after a write)."""
    row = {name: getattr(task, name) for name in CARD_FIELDS}
    return _card(row, _subtask_counts(task_id=task.id), _comment_counts(task_id=task.id))


def comment_out(comment: Comment) -> dict:
    return {
        "id": comment.id,
        "author": comment.author_id,
        "body": comment.body,
        "body_html": markdown_html(comment.body),
        "created_at": comment.created_at.isoformat(),
    }


def attachment_out(attachment: Attachment) -> dict:
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "uploaded_by": attachment.uploaded_by,
        "created_at": attachment.created_at.isoformat(),
    }


def worklog_out(worklog: WorkLog) -> dict:
    return {
        "id": worklog.id,
        "user": worklog.user_id,
        "day": worklog.day.isoformat(),
        "minutes": worklog.minutes,
        "note": worklog.note,
    }


def _readable_project_ids(caller: Caller) -> "list[int] | None":
    """None means every project (tenant admins)."""
    if is_tenant_admin(caller):
        return None
    return list(ProjectMember.objects.filter(user_id=caller.user_id).values_list("project_id", flat=True))


def project_list(*, caller: Caller) -> list[dict]:
    projects = Project.objects.order_by("key")
    readable = _readable_project_ids(caller)
    if readable is not None:
        projects = projects.filter(id__in=readable)
    projects = list(projects.values("id", "key", "name", "description", "version"))
    boards: dict[int, list[dict]] = {}
    for board in Board.objects.filter(project_id__in=[p["id"] for p in projects]).values("id", "name", "project_id"):
        boards.setdefault(board["project_id"], []).append({"id": board["id"], "name": board["name"]})
    return [{**project, "boards": boards.get(project["id"], [])} for project in projects]


def project_get(*, caller: Caller, project_id: int) -> dict:
    project = Project.objects.filter(pk=project_id).values("id", "key", "name", "description", "version").first()
    if project is None:
        raise NotFound("No such project")
    members = list(ProjectMember.objects.filter(project_id=project_id).values("user_id", "role", "display_name"))
    role = next((member["role"] for member in members if member["user_id"] == caller.user_id), None)
    actions = actions_for_role(caller, role)
    require(actions, READ)
    boards = list(Board.objects.filter(project_id=project_id).values("id", "name"))
    return {**project, "boards": boards, "members": members, "actions": sorted(actions)}


def project_members(*, caller: Caller, project_id: int) -> list[dict]:
    return project_get(caller=caller, project_id=project_id)["members"]


def board_get(*, caller: Caller, board_id: int, filters: TaskFilters | None = None) -> dict:
    """A whole board: columns in order, each with its cards in order. Seven queries."""
    board = (
        Board.objects.filter(pk=board_id).values("id", "name", "project_id", "project__key", "project__name").first()
    )
    if board is None:
        raise NotFound("No such board")
    members = list(
        ProjectMember.objects.filter(project_id=board["project_id"]).values("user_id", "role", "display_name")
    )
    role = next((member["role"] for member in members if member["user_id"] == caller.user_id), None)
    actions = actions_for_role(caller, role)
    require(actions, READ, what="board")
    columns = list(
        Column.objects.filter(board_id=board_id)
        .order_by("position", "id")
        .values("id", "name", "position", "wip_limit", "category", "version")
    )
    tasks = Task.objects.filter(board_id=board_id)
    if filters is not None:
        tasks = filters.apply(tasks)
    rows = tasks.order_by("column_id", "rank", "id").values(*CARD_FIELDS, "due_date")
    subtasks = _subtask_counts(task__board_id=board_id)
    comments = _comment_counts(task__board_id=board_id)
    by_column: dict[int, list[dict]] = {column["id"]: [] for column in columns}
    for row in rows:
        by_column[row["column_id"]].append(_card(row, subtasks, comments))
    counts = (
        dict(
            Task.objects.filter(board_id=board_id)
            .values("column_id")
            .annotate(n=Count("id"))
            .values_list("column_id", "n")
        )
        if filters is not None and filters.active
        else None
    )
    for column in columns:
        column["tasks"] = by_column[column["id"]]
        column["task_count"] = counts.get(column["id"], 0) if counts is not None else len(column["tasks"])
    return {
        "id": board["id"],
        "name": board["name"],
        "project": {"id": board["project_id"], "key": board["project__key"], "name": board["project__name"]},
        "columns": columns,
        "members": members,
        "actions": sorted(actions),
    }


def board_readable(*, caller: Caller, board_id: int) -> bool:
    project_id = Board.objects.filter(pk=board_id).values_list("project_id", flat=True).first()
    return project_id is not None and READ in project_actions(caller=caller, project_id=project_id)


def board_columns(*, caller: Caller, board_id: int) -> list[dict]:
    board = Board.objects.filter(pk=board_id).values("project_id").first()
    if board is None:
        raise NotFound("No such board")
    require(project_actions(caller=caller, project_id=board["project_id"]), READ, what="board")
    return list(
        Column.objects.filter(board_id=board_id)
        .order_by("position", "id")
        .annotate(task_count=Count("tasks"))
        .values("id", "name", "position", "wip_limit", "category", "version", "task_count")
    )


def task_list(
    *,
    caller: Caller,
    filters: TaskFilters,
    project_id: int | None = None,
    board_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise InvalidInput("offset must be 0 or more")
    tasks = filters.apply(Task.objects.all())
    readable = _readable_project_ids(caller)
    if readable is not None:
        tasks = tasks.filter(project_id__in=readable)
    if project_id is not None:
        tasks = tasks.filter(project_id=project_id)
    if board_id is not None:
        tasks = tasks.filter(board_id=board_id)
    total = tasks.count()
    rows = list(tasks.order_by("board_id", "column_id", "rank", "id").values(*CARD_FIELDS)[offset : offset + limit])
    ids = [row["id"] for row in rows]
    items = [_card(row, _subtask_counts(task_id__in=ids), _comment_counts(task_id__in=ids)) for row in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def task_get(*, caller: Caller, task_id: int) -> dict:
    """A task with all its parts, for the card panel and GET /api/tasks/<id>."""
    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        raise NotFound("No such task")
    actions = project_actions(caller=caller, project_id=task.project_id)
    require(actions, READ, what="task")
    subtasks = list(task.subtasks.order_by("position", "id").values("id", "title", "done", "position"))
    comments = [comment_out(comment) for comment in task.comments.order_by("created_at", "id")]
    attachments = [attachment_out(attachment) for attachment in task.attachments.order_by("created_at", "id")]
    worklogs = [worklog_out(worklog) for worklog in task.worklogs.order_by("day", "id")]
    activity = list(task.activities.order_by("created_at", "id").values("id", "actor_id", "verb", "data", "created_at"))
    card = _card(
        {name: getattr(task, name) for name in CARD_FIELDS},
        {task.id: (len(subtasks), sum(1 for subtask in subtasks if subtask["done"]))},
        {task.id: len(comments)},
    )
    return {
        **card,
        "project": task.project_id,
        "board": task.board_id,
        "description": task.description,
        "description_html": markdown_html(task.description),
        "reporter": task.reporter_id,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
        "subtasks": subtasks,
        "comments": comments,
        "attachments": attachments,
        "worklogs": worklogs,
        "worked_minutes": sum(worklog["minutes"] for worklog in worklogs),
        "activity": [{**entry, "created_at": entry["created_at"].isoformat()} for entry in activity],
        "actions": sorted(actions),
    }


def task_version(*, task_id: int) -> int | None:
    return Task.objects.filter(pk=task_id).values_list("version", flat=True).first()


def attachment_get(*, caller: Caller, attachment_id: int) -> Attachment:
    attachment = Attachment.objects.select_related("task").filter(pk=attachment_id).first()
    if attachment is None:
        raise NotFound("No such attachment")
    require(project_actions(caller=caller, project_id=attachment.task.project_id), READ, what="attachment")
    return attachment


def worklog_totals(*, caller: Caller, project_id: int, task_id: int | None = None) -> dict:
    """Time spent in a project (or one of its tasks): in all, per person, per person and day."""
    require(project_actions(caller=caller, project_id=project_id), READ)
    logs = WorkLog.objects.filter(task__project_id=project_id)
    if task_id is not None:
        logs = logs.filter(task_id=task_id)
    per_user_day = list(logs.values("user_id", "day").annotate(minutes=Sum("minutes")).order_by("day", "user_id"))
    per_user: dict[str, int] = {}
    for entry in per_user_day:
        per_user[entry["user_id"]] = per_user.get(entry["user_id"], 0) + entry["minutes"]
    per_task = list(logs.values("task_id", "task__key").annotate(minutes=Sum("minutes")).order_by("task__key"))
    return {
        "total_minutes": sum(per_user.values()),
        "by_user": [{"user": user, "minutes": minutes} for user, minutes in sorted(per_user.items())],
        "by_user_day": [
            {"user": entry["user_id"], "day": entry["day"].isoformat(), "minutes": entry["minutes"]}
            for entry in per_user_day
        ],
        "by_task": [
            {"task": entry["task_id"], "key": entry["task__key"], "minutes": entry["minutes"]} for entry in per_task
        ],
    }


def activity_for_task(*, task_id: int) -> list[dict]:
    return list(Activity.objects.filter(task_id=task_id).values("verb", "actor_id", "data", "created_at"))
