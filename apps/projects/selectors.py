"""Reads of the board domain. Every function runs a fixed number of queries, whatever the
number of cards (tests assert it), and returns models or plain data; the API and the pages
shape them through apps/projects/schemas.py.
"""

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from django.db import transaction
from django.db.models import Count, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from markdown_it import MarkdownIt

from apps.common.exceptions import NotFound
from apps.projects import history, search
from apps.projects.db import tenant_connection, tenant_db
from apps.projects.errors import InvalidInput
from apps.projects.models import (
    Activity,
    Attachment,
    Board,
    Column,
    Comment,
    Label,
    Person,
    Project,
    ProjectMember,
    SharedLinkEnd,
    Subtask,
    Task,
    WorkLog,
)
from apps.projects.people import UNKNOWN_NAME, UNKNOWN_PERSON, initials_for
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


def _card(row: dict) -> dict:
    """A card from a task row annotated by `_with_counts`."""
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
        "subtasks_total": row["subtasks_total"],
        "subtasks_done": row["subtasks_done"],
        "comment_count": row["comment_count"],
    }


def _count_per_task(queryset: QuerySet) -> Coalesce:
    """How many rows of `queryset` belong to the outer task: a correlated subquery, so a page
    of cards costs one query, not one per card or per part."""
    counted = queryset.filter(task_id=OuterRef("pk")).order_by().values("task_id").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _with_counts(tasks: QuerySet) -> QuerySet:
    return tasks.annotate(
        subtasks_total=_count_per_task(Subtask.objects.all()),
        subtasks_done=_count_per_task(Subtask.objects.filter(done=True)),
        comment_count=_count_per_task(Comment.objects.all()),
    )


CARD_VALUES = (*CARD_FIELDS, "subtasks_total", "subtasks_done", "comment_count")


def task_card(task: Task) -> dict:
    """One card, as the board shows it (for live updates after a write)."""
    return _card(_with_counts(Task.objects.filter(pk=task.pk)).values(*CARD_VALUES).get())


def _readable_project_ids(caller: Caller) -> "list[int] | None":
    """None means every project (tenant admins)."""
    if is_tenant_admin(caller):
        return None
    return list(ProjectMember.objects.filter(user_id=caller.user_id).values_list("project_id", flat=True))


PEOPLE_SEARCH_MAX = 50


def _person(row: dict) -> dict:
    name = row["name"] or row["email"].split("@", 1)[0] or UNKNOWN_NAME
    return {
        "id": row["user_id"],
        "name": name,
        "initials": row["initials"],
        "colour": row["colour"],
        "palette": row["palette"],
    }


def people_get(*, user_ids: Iterable[str]) -> dict[str, dict]:
    """Each id's name, initials and colour (an id the directory does not know yet shows as
    "Unknown user"), ordered by name. One query."""
    wanted = {str(user_id) for user_id in user_ids if user_id}
    rows = Person.objects.filter(user_id__in=wanted).values("user_id", "name", "email", "initials", "colour", "palette")
    people = {row["user_id"]: _person(row) for row in rows}
    for user_id in wanted - people.keys():
        people[user_id] = {**UNKNOWN_PERSON, "id": user_id}
    return dict(sorted(people.items(), key=lambda item: (item[1]["name"], item[0])))


def people_search(*, caller: Caller, text: str = "", limit: int = 20) -> list[dict]:
    """The organization's current members whose name or email contains `text`, for pickers: with
    their email, which only members of the organization see."""
    if not 1 <= limit <= PEOPLE_SEARCH_MAX:
        raise InvalidInput(f"limit must be between 1 and {PEOPLE_SEARCH_MAX}")
    text = text.strip()
    people = Person.objects.filter(is_member=True)
    if text:
        people = people.filter(Q(name__icontains=text) | Q(email__icontains=text))
    rows = people.order_by("name", "user_id").values("user_id", "name", "email", "initials", "colour", "palette")[
        :limit
    ]
    return [{**_person(row), "email": row["email"]} for row in rows]


def member_named(*, member: ProjectMember) -> dict:
    row = {"user_id": member.user_id, "role": member.role, "display_name": member.display_name}
    return _members_named([row], people_get(user_ids=[member.user_id]))[0]


def _members_named(members: list[dict], people: dict[str, dict]) -> list[dict]:
    return [
        {**member, **{k: people[member["user_id"]][k] for k in ("name", "initials", "colour", "palette")}}
        for member in members
    ]


PROJECT_FIELDS = ("id", "key", "name", "description", "version", "archived_at")


def _project_row(project: dict) -> dict:
    archived_at = project.pop("archived_at")
    return {**project, "archived": archived_at is not None}


def labels_by_project(project_ids: list[int]) -> dict[int, list[dict]]:
    """Each project's labels, by name: `{"id", "name", "colour"}` (colour a hex from the palette)."""
    found: dict[int, list[dict]] = {project_id: [] for project_id in project_ids}
    for label in (
        Label.objects.filter(project_id__in=project_ids)
        .order_by("name", "id")
        .values("id", "name", "colour", "project_id")
    ):
        found[label.pop("project_id")].append(label)
    return found


def project_list(*, caller: Caller, archived: bool = False) -> list[dict]:
    """The projects the caller reads (the archived ones instead, with `archived`), each with its
    boards that are not archived and its labels. Three queries (four for a project member)."""
    projects = Project.objects.filter(archived_at__isnull=not archived).order_by("key")
    roles: dict[int, str] = {}
    if not is_tenant_admin(caller):
        roles = dict(ProjectMember.objects.filter(user_id=caller.user_id).values_list("project_id", "role"))
        projects = projects.filter(id__in=list(roles))
    projects = [_project_row(project) for project in projects.values(*PROJECT_FIELDS)]
    for project in projects:
        project["actions"] = sorted(actions_for_role(caller, roles.get(project["id"]), archived=project["archived"]))
    project_ids = [project["id"] for project in projects]
    boards: dict[int, list[dict]] = {}
    for board in Board.objects.filter(project_id__in=project_ids, archived_at__isnull=True).values(
        "id", "name", "project_id"
    ):
        boards.setdefault(board["project_id"], []).append({"id": board["id"], "name": board["name"]})
    labels = labels_by_project(project_ids) if project_ids else {}
    return [
        {**project, "boards": boards.get(project["id"], []), "labels": labels.get(project["id"], [])}
        for project in projects
    ]


def project_get(*, caller: Caller, project_id: int) -> dict:
    """A project with its boards (`boards` those in use, `archived_boards` the others), members,
    labels and the caller's actions."""
    project = Project.objects.filter(pk=project_id).values(*PROJECT_FIELDS).first()
    if project is None:
        raise NotFound("No such project")
    project = _project_row(project)
    members = list(
        ProjectMember.objects.filter(project_id=project_id).order_by("id").values("user_id", "role", "display_name")
    )
    role = next((member["role"] for member in members if member["user_id"] == caller.user_id), None)
    actions = actions_for_role(caller, role, archived=project["archived"])
    require(actions, READ)
    boards = list(Board.objects.filter(project_id=project_id).values("id", "name", "archived_at"))
    people = people_get(user_ids=[member["user_id"] for member in members])
    return {
        **project,
        "boards": [{"id": b["id"], "name": b["name"]} for b in boards if b["archived_at"] is None],
        "archived_boards": [{"id": b["id"], "name": b["name"]} for b in boards if b["archived_at"] is not None],
        "labels": labels_by_project([project_id])[project_id],
        "members": _members_named(members, people),
        "actions": sorted(actions),
    }


def project_settings(*, caller: Caller, project_id: int) -> dict:
    """What the project's settings page shows: `project_get`, plus every board (archived ones
    too) with its columns and their card counts, and how many tasks carry each label. Seven
    queries, whatever the number of boards, columns, labels or tasks."""
    project = project_get(caller=caller, project_id=project_id)
    boards = list(
        Board.objects.filter(project_id=project_id)
        .order_by("position", "id")
        .values("id", "name", "version", "archived_at")
    )
    columns: dict[int, list[dict]] = {board["id"]: [] for board in boards}
    for column in (
        Column.objects.filter(board__project_id=project_id)
        .order_by("board_id", "position", "id")
        .annotate(task_count=Count("tasks"))
        .values("id", "board_id", "name", "position", "wip_limit", "category", "version", "task_count")
    ):
        columns[column.pop("board_id")].append(column)
    with tenant_connection().cursor() as cursor:
        cursor.execute(
            "SELECT label, count(*) FROM projects_task, unnest(labels) AS label WHERE project_id = %s GROUP BY label",
            [project_id],
        )
        uses = dict(cursor.fetchall())
    return {
        **project,
        "labels": [{**label, "task_count": uses.get(label["name"], 0)} for label in project["labels"]],
        "all_boards": [
            {
                "id": board["id"],
                "name": board["name"],
                "version": board["version"],
                "archived": board["archived_at"] is not None,
                "columns": columns[board["id"]],
            }
            for board in boards
        ],
    }


def project_members(*, caller: Caller, project_id: int) -> list[dict]:
    return project_get(caller=caller, project_id=project_id)["members"]


def board_get(*, caller: Caller, board_id: int, filters: TaskFilters | None = None) -> dict:
    """A whole board: columns in order, each with its cards in order. Four queries (five filtered)."""
    board = (
        Board.objects.filter(pk=board_id)
        .values("id", "name", "project_id", "project__key", "project__name", "archived_at", "project__archived_at")
        .first()
    )
    if board is None:
        raise NotFound("No such board")
    members = list(
        ProjectMember.objects.filter(project_id=board["project_id"])
        .order_by("id")
        .values("user_id", "role", "display_name")
    )
    role = next((member["role"] for member in members if member["user_id"] == caller.user_id), None)
    archived = board["archived_at"] is not None or board["project__archived_at"] is not None
    actions = actions_for_role(caller, role, archived=archived)
    require(actions, READ, what="board")
    columns = list(
        Column.objects.filter(board_id=board_id)
        .order_by("position", "id")
        .values("id", "name", "position", "wip_limit", "category", "version")
    )
    tasks = Task.objects.filter(board_id=board_id, archived_at__isnull=True)
    if filters is not None:
        tasks = filters.apply(tasks)
    rows = _with_counts(tasks).order_by("column_id", "rank", "id").values(*CARD_VALUES)
    by_column: dict[int, list[dict]] = {column["id"]: [] for column in columns}
    for row in rows:
        by_column[row["column_id"]].append(_card(row))
    counts = (
        dict(
            Task.objects.filter(board_id=board_id, archived_at__isnull=True)
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
    # Members and whoever a card names (someone assigned who has since left the project).
    mentioned = {member["user_id"] for member in members}
    mentioned.update(
        Task.objects.filter(board_id=board_id)
        .annotate(user_id=Func(F("assignees"), function="unnest"))
        .values_list("user_id", flat=True)
        .distinct()
    )
    people = people_get(user_ids=mentioned)
    return {
        "id": board["id"],
        "name": board["name"],
        "project": {"id": board["project_id"], "key": board["project__key"], "name": board["project__name"]},
        "archived": archived,
        "columns": columns,
        "labels": labels_by_project([board["project_id"]])[board["project_id"]],
        "members": _members_named(members, people),
        "people": list(people.values()),
        "actions": sorted(actions),
    }


# The whole unfiltered board as JSON text, built by PostgreSQL in one statement: what `board_get`
# returns, without compiling four ORM queries and building a dict per card in Python (the board
# read was two thirds ORM and serialization; docs/benchmarks.md). Keep the two in step:
# tests/projects/test_api.py compares them on the same board.
_BOARD_JSON_SQL = """
SELECT b.id, b.name, p.id, p.key, p.name, b.archived_at IS NOT NULL OR p.archived_at IS NOT NULL,
  (SELECT m.role FROM projects_projectmember m WHERE m.project_id = b.project_id AND m.user_id = %(user_id)s),
  (SELECT coalesce(json_agg(json_build_object('id', l.id, 'name', l.name, 'colour', l.colour)
            ORDER BY l.name, l.id), '[]')
     FROM projects_label l WHERE l.project_id = b.project_id)::text,
  (SELECT coalesce(json_agg(json_build_object(
            'user_id', m.user_id, 'role', m.role, 'display_name', m.display_name, %(person)s) ORDER BY m.id), '[]')
     FROM projects_projectmember m LEFT JOIN projects_person pp ON pp.user_id = m.user_id
     WHERE m.project_id = b.project_id)::text,
  (SELECT coalesce(json_agg(json_build_object('id', ids.user_id, %(person)s)
            ORDER BY %(person_name)s COLLATE "C", ids.user_id COLLATE "C"), '[]')
     FROM (SELECT m.user_id FROM projects_projectmember m WHERE m.project_id = b.project_id
           UNION SELECT unnest(t.assignees) FROM projects_task t WHERE t.board_id = b.id) ids
     LEFT JOIN projects_person pp ON pp.user_id = ids.user_id)::text,
  (SELECT coalesce(json_agg(json_build_object(
            'id', c.id, 'name', c.name, 'position', c.position, 'wip_limit', c.wip_limit,
            'category', c.category, 'version', c.version, 'task_count', cards.n, 'tasks', cards.tasks)
            ORDER BY c.position, c.id), '[]')
     FROM projects_column c
     CROSS JOIN LATERAL (
       SELECT count(*) AS n, coalesce(json_agg(json_build_object(
                'id', t.id, 'key', t.key, 'title', t.title, 'column', t.column_id, 'rank', t.rank,
                'assignees', t.assignees, 'labels', t.labels, 'priority', t.priority,
                'due_date', t.due_date, 'estimate_minutes', t.estimate_minutes, 'version', t.version,
                'subtasks_total', (SELECT count(*) FROM projects_subtask s WHERE s.task_id = t.id),
                'subtasks_done', (SELECT count(*) FROM projects_subtask s WHERE s.task_id = t.id AND s.done),
                'comment_count', (SELECT count(*) FROM projects_comment k WHERE k.task_id = t.id))
                ORDER BY t.rank, t.id), '[]') AS tasks
         FROM projects_task t WHERE t.column_id = c.id AND t.board_id = c.board_id AND t.archived_at IS NULL
     ) cards
     WHERE c.board_id = b.id)::text
FROM projects_board b JOIN projects_project p ON p.id = b.project_id
WHERE b.id = %(board_id)s
"""


# A person's fields from `projects_person pp` (LEFT JOINed: NULL for someone not in the directory
# yet), as _person and UNKNOWN_PERSON give them.
_PERSON_NAME_SQL = f"coalesce(nullif(pp.name, ''), nullif(split_part(pp.email, '@', 1), ''), '{UNKNOWN_NAME}')"
_PERSON_SQL = (
    f"'name', {_PERSON_NAME_SQL}, 'initials', coalesce(pp.initials, '{UNKNOWN_PERSON['initials']}'), "
    f"'colour', coalesce(pp.colour, '{UNKNOWN_PERSON['colour']}'), "
    f"'palette', coalesce(pp.palette, {UNKNOWN_PERSON['palette']})"
)
_BOARD_JSON_SQL = _BOARD_JSON_SQL % {
    "person": _PERSON_SQL,
    "person_name": _PERSON_NAME_SQL,
    "board_id": "%(board_id)s",
    "user_id": "%(user_id)s",
}


def board_json(*, caller: Caller, board_id: int) -> bytes:
    """`board_get` without filters, as the JSON bytes of the API's answer. One query."""
    with tenant_connection().cursor() as cursor:
        cursor.execute(_BOARD_JSON_SQL, {"board_id": board_id, "user_id": caller.user_id})
        row = cursor.fetchone()
    if row is None:
        raise NotFound("No such board")
    board_id, name, project_id, project_key, project_name, archived, role, labels, members, people, columns = row
    actions = actions_for_role(caller, role, archived=archived)
    require(actions, READ, what="board")
    head = json.dumps(
        {
            "id": board_id,
            "name": name,
            "project": {"id": project_id, "key": project_key, "name": project_name},
            "archived": archived,
        }
    )
    tail = (
        f',"columns":{columns},"labels":{labels},"members":{members},"people":{people},'
        f'"actions":{json.dumps(sorted(actions))}}}'
    )
    return (head[:-1] + tail).encode()


def board_summary(*, caller: Caller, board_id: int) -> dict:
    """A board's name and what the caller may do on it, without its cards."""
    board = Board.objects.filter(pk=board_id).values("id", "name", "project_id").first()
    if board is None:
        raise NotFound("No such board")
    actions = project_actions(caller=caller, project_id=board["project_id"])
    require(actions, READ, what="board")
    return {**board, "actions": sorted(actions)}


def board_readable(*, caller: Caller, board_id: int) -> bool:
    project_id = Board.objects.filter(pk=board_id).values_list("project_id", flat=True).first()
    return project_id is not None and READ in project_actions(caller=caller, project_id=project_id)


MAX_CARDS_ASKED = 100


def board_cards(*, caller: Caller, board_id: int, task_ids: list[int], filters: TaskFilters) -> list[dict]:
    """Those of the board's cards `task_ids` that `filters` shows, as the board page renders them
    (one query, two with the permission check). A filtered board asks this of the cards that
    changed live, so a card enters or leaves the view just as a reload with the same filters
    would show it."""
    if len(task_ids) > MAX_CARDS_ASKED:
        raise InvalidInput(f"ask for at most {MAX_CARDS_ASKED} cards at a time")
    if not board_readable(caller=caller, board_id=board_id):
        raise NotFound("No such board")
    tasks = filters.apply(Task.objects.filter(board_id=board_id, id__in=task_ids))
    return [_card(row) for row in _with_counts(tasks).order_by("column_id", "rank", "id").values(*CARD_VALUES)]


def board_viewer(*, user_id: str) -> dict:
    """Who a board's viewer is, as presence lists them: `{"user_id", "name"}`, with the initials
    and colour of their avatar (the people directory's; "Unknown user" until it knows them)."""
    person = people_get(user_ids=[user_id])[user_id]
    return {"user_id": user_id, "name": person["name"], "initials": person["initials"], "palette": person["palette"]}


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


def column_counted(*, column_id: int) -> Column:
    """A column with its `task_count` (the answer to a column write; the write checked the caller)."""
    return Column.objects.annotate(task_count=Count("tasks")).get(pk=column_id)


def task_list(
    *,
    caller: Caller,
    filters: TaskFilters,
    project_id: int | None = None,
    board_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    archived: bool = False,
) -> dict:
    """Tasks on boards (or, `archived`, the archived ones, most recently archived first)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise InvalidInput("offset must be 0 or more")
    tasks = filters.apply(Task.objects.filter(archived_at__isnull=not archived))
    readable = _readable_project_ids(caller)
    if readable is not None:
        tasks = tasks.filter(project_id__in=readable)
    if project_id is not None:
        tasks = tasks.filter(project_id=project_id)
    if board_id is not None:
        tasks = tasks.filter(board_id=board_id)
    total = tasks.count()
    order = ("-archived_at", "id") if archived else ("board_id", "column_id", "rank", "id")
    rows = _with_counts(tasks).order_by(*order).values(*CARD_VALUES)
    items = [_card(row) for row in rows[offset : offset + limit]]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def task_get(*, caller: Caller, task_id: int) -> dict:
    """A task with all its parts (comments, attachments and work logs as models), for the card
    panel and GET /api/tasks/<id>: the shape of schemas.TaskOut."""
    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        raise NotFound("No such task")
    actions = project_actions(caller=caller, project_id=task.project_id, board_id=task.board_id)
    require(actions, READ, what="task")
    subtasks = list(task.subtasks.order_by("position", "id").values("id", "title", "done", "position"))
    comments = list(task.comments.order_by("created_at", "id"))
    attachments = list(task.attachments.order_by("created_at", "id"))
    worklogs = list(task.worklogs.order_by("day", "id"))
    activity = list(task.activities.order_by("created_at", "id").values("id", "actor_id", "verb", "data", "created_at"))
    user_ids = {
        task.reporter_id,
        *task.assignees,
        *(comment.author_id for comment in comments),
        *(attachment.uploaded_by for attachment in attachments),
        *(worklog.user_id for worklog in worklogs),
        *(entry["actor_id"] for entry in activity),
        *(user for entry in activity for user in _activity_users(entry)),
    }
    people = _task_people(project_id=task.project_id, user_ids=user_ids)
    columns = dict(Column.objects.filter(board_id=task.board_id).values_list("id", "name"))

    def name(user_id: str) -> str:
        return people[user_id]["name"] if user_id in people else UNKNOWN_NAME

    def column_name(column_id: object) -> str:
        return columns.get(column_id, "a removed column") if isinstance(column_id, int) else "a column"

    for entry in activity:
        entry["text"] = history.activity_text(entry, key=task.key, name=name, column_name=column_name)
    card = _card(
        {
            **{name: getattr(task, name) for name in CARD_FIELDS},
            "subtasks_total": len(subtasks),
            "subtasks_done": sum(1 for subtask in subtasks if subtask["done"]),
            "comment_count": len(comments),
        }
    )
    return {
        **card,
        "project": task.project_id,
        "board": task.board_id,
        "description": task.description,
        "description_html": markdown_html(task.description),
        "reporter": task.reporter_id,
        "archived_at": task.archived_at,
        "column_name": columns.get(task.column_id, ""),
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "subtasks": subtasks,
        "comments": comments,
        "attachments": attachments,
        "worklogs": worklogs,
        "worked_minutes": sum(worklog.minutes for worklog in worklogs),
        "activity": activity,
        "people": list(people.values()),
        "actions": sorted(actions),
    }


def _activity_users(entry: dict) -> list[str]:
    data = entry.get("data") or {}
    users = [*(data.get("added") or []), *(data.get("removed") or [])]
    users += [data[name] for name in ("author", "user") if data.get(name)]
    return [user for user in users if isinstance(user, str)]


def _task_people(*, project_id: int, user_ids: set[str]) -> dict[str, dict]:
    """people_get, and for someone the directory does not know yet, their name as a member of the
    project (what the project was told when they joined), so the panel still says who did what."""
    people = people_get(user_ids=user_ids)
    unknown = [user_id for user_id, person in people.items() if person["name"] == UNKNOWN_NAME]
    if unknown:
        members = ProjectMember.objects.filter(project_id=project_id, user_id__in=unknown).exclude(display_name="")
        for user_id, display_name in members.values_list("user_id", "display_name"):
            people[user_id] = {
                **people[user_id],
                "name": display_name,
                "initials": initials_for(name=display_name),
            }
    return people


def project_people(*, project_id: int) -> list[dict]:
    """The project's members by name, for the panel's people picker before a search."""
    members = list(ProjectMember.objects.filter(project_id=project_id).values_list("user_id", flat=True))
    people = _task_people(project_id=project_id, user_ids=set(members))
    return sorted(people.values(), key=lambda person: (person["name"].lower(), person["id"]))


def project_label_names(*, project_id: int) -> list[str]:
    """The labels the project's tasks carry, for the panel's label picker."""
    with tenant_connection().cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT label FROM projects_task, unnest(labels) AS label WHERE project_id = %s ORDER BY label",
            [project_id],
        )
        return [row[0] for row in cursor.fetchall()]


_Part = TypeVar("_Part", Comment, WorkLog, Subtask, Attachment)


def _task_part_get(model: type[_Part], *, caller: Caller, pk: int, what: str) -> _Part:
    """One part of a task (with its task), if the caller may read the task's project."""
    part = model.objects.select_related("task").filter(pk=pk).first()
    if part is None:
        raise NotFound(f"No such {what}")
    require(project_actions(caller=caller, project_id=part.task.project_id), READ, what=what)
    return part


def comment_get(*, caller: Caller, comment_id: int) -> Comment:
    return _task_part_get(Comment, caller=caller, pk=comment_id, what="comment")


def worklog_get(*, caller: Caller, worklog_id: int) -> WorkLog:
    return _task_part_get(WorkLog, caller=caller, pk=worklog_id, what="work log")


def subtask_get(*, caller: Caller, subtask_id: int) -> Subtask:
    return _task_part_get(Subtask, caller=caller, pk=subtask_id, what="subtask")


def task_version(*, task_id: int) -> int | None:
    return Task.objects.filter(pk=task_id).values_list("version", flat=True).first()


# Shown inline in the card panel: raster images whose bytes were checked against their type at
# upload (services/attachments.py). Never SVG (it runs scripts) nor anything a browser renders as a page.
PREVIEW_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def attachment_previewable(attachment: object) -> bool:
    content_type = attachment["content_type"] if isinstance(attachment, dict) else attachment.content_type
    return content_type in PREVIEW_TYPES


def attachment_get(*, caller: Caller, attachment_id: int) -> Attachment:
    return _task_part_get(Attachment, caller=caller, pk=attachment_id, what="attachment")


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


def task_search(*, caller: Caller, text: str, limit: int = search.DEFAULT_LIMIT) -> list[dict]:
    """The tasks the caller may read that match `text` (apps/projects/search.py), best first: an
    exact key first, then by rank. One statement (and its planner setting), whatever the number of
    tasks or hits. A text that
    ends with a space has no word being typed (no prefix match)."""
    typed = text
    text = text.strip()
    if not text:
        raise InvalidInput("Type a word or a task key to search for", code="query_required")
    if len(text) > search.MAX_QUERY_LENGTH:
        raise InvalidInput(f"A search is at most {search.MAX_QUERY_LENGTH} characters", code="query_too_long")
    if not 1 <= limit <= search.MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {search.MAX_LIMIT}")
    query = search.SearchQuery.parse(f"{text} " if typed[-1:].isspace() else text)
    if query.empty:  # only operators and punctuation: nothing can match
        return []
    every_project = is_tenant_admin(caller)
    with transaction.atomic(using=tenant_db()), tenant_connection().cursor() as cursor:
        # The planner prices `@@` as if it cost nothing, and scans the whole table rather than the
        # GIN index for any word in a few percent of the tasks; a scan pays `@@` on every vector
        # (3-4 times the index's cost on 10,000 tasks, docs/benchmarks.md). Only for this statement.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            search.search_sql(query, every_project=every_project),
            search.search_params(query, user_id=caller.user_id, limit=limit),
        )
        return [search.search_hit(row) for row in cursor.fetchall()]


# Sharing (issue 11): what the shortener asks before it makes a task link, and the shared view.


def task_share_check(*, task_id: int, user_id: str) -> dict:
    """Whether `user_id` may share the task (read it) and manage its links (manage its project, or
    own or administer the organization), by the project's membership and the people directory's
    roles: the shortener asks this without the person's token. Someone who left the organization
    may do neither. Two queries."""
    row = (
        Task.objects.filter(pk=task_id)
        .annotate(
            role=Subquery(
                ProjectMember.objects.filter(project_id=OuterRef("project_id"), user_id=user_id).values("role")[:1]
            )
        )
        .values("id", "key", "title", "project_id", "board_id", "role")
        .first()
    )
    if row is None:
        raise NotFound("No such task")
    person = Person.objects.filter(user_id=user_id).values("is_member", "roles").first()
    left = person is not None and not person["is_member"]
    admin = person is not None and person["is_member"] and bool({"owner", "admin"} & set(person["roles"]))
    return {
        "task_id": row["id"],
        "key": row["key"],
        "title": row["title"],
        "project_id": row["project_id"],
        "board_id": row["board_id"],
        "can_read": not left and (admin or row["role"] is not None),
        "can_manage": not left and (admin or row["role"] == "manager"),
    }


def shared_link_ended(*, code: str) -> str | None:
    """Why the link `code` ended (its URLExpired's reason), or None while it has not."""
    return SharedLinkEnd.objects.filter(code=code).values_list("reason", flat=True).first()


def shared_task(*, task_id: int) -> dict | None:
    """What a shared view shows of a task, and nothing else: no people, comments, files, labels,
    history or other task. None when the task is gone. Two queries."""
    task = (
        Task.objects.filter(pk=task_id)
        .select_related("column")
        .only(
            "id", "key", "title", "description", "priority", "due_date", "archived_at", "version", "board_id",
            "column__id", "column__name", "column__category",
        )
        .first()
    )  # fmt: skip
    if task is None:
        return None
    subtasks = list(Subtask.objects.filter(task_id=task_id).order_by("position", "id").values("title", "done"))
    return {
        "id": task.id,
        "key": task.key,
        "title": task.title,
        "board_id": task.board_id,
        "column_id": task.column_id,
        "column": task.column.name,
        "category": task.column.category,
        "description_html": markdown_html(task.description) if task.description else "",
        "priority": task.priority,
        "due_date": task.due_date,
        "archived": task.archived_at is not None,
        "subtasks": subtasks,
        "subtasks_done": sum(1 for subtask in subtasks if subtask["done"]),
        "version": task.version,
    }
