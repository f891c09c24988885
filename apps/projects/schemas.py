"""The shapes of the projects API, in and out: the Ninja schemas.

Selectors and services return models or plain data; the API answers through these schemas, and
the live board messages (live.board_broadcast) carry the same shapes where they carry the same
thing (`dump`). The board's own JSON is built by PostgreSQL (selectors.board_json) for speed;
tests/projects/test_api.py keeps its keys those of BoardOut.
"""

import datetime as dt
from enum import StrEnum

from ninja import Field, Schema

from apps.common.ninja import INTEGER_MAX, Count, Id, Text
from apps.projects import selectors
from apps.projects.models import LABEL_NAME_LENGTH, Board, ColumnCategory, Comment, Priority, ProjectRole, WorkLog


def dump(schema: type[Schema], obj: object) -> dict:
    """`obj` (a model or a dict) in `schema`'s shape, as a dict for a live message (its dates and
    times are encoded as the API encodes them, by DjangoJSONEncoder)."""
    return schema.from_orm(obj).model_dump()


class BoardRef(Schema):
    id: int
    name: str


class LabelOut(Schema):
    id: int
    name: str
    colour: str = Field(..., description="a hex colour of the fixed palette, like #216e4e", examples=["#216e4e"])


class ProjectOut(Schema):
    id: int
    key: str
    name: str
    description: str
    version: int
    archived: bool
    boards: list[BoardRef] = Field(..., description="the boards in use (not archived)")
    labels: list[LabelOut]


class PersonOut(Schema):
    """Someone of the organization as the board shows them (apps/projects/people.py)."""

    id: str
    name: str
    initials: str
    colour: str = Field(..., description="a hex colour, stable for the person")
    palette: int = Field(..., description="the colour's index; the pages' CSS class avatar-c<palette>")


class PersonFound(PersonOut):
    email: str


class PeoplePage(Schema):
    items: list[PersonFound]


class MemberOut(Schema):
    user_id: str
    role: str
    display_name: str
    name: str
    initials: str
    colour: str
    palette: int


class ProjectDetailOut(ProjectOut):
    archived_boards: list[BoardRef]
    members: list[MemberOut]
    actions: list[str]


class BoardTemplate(StrEnum):
    """The columns a new board starts with: `kanban` To do, In progress, Done; `flow` Backlog,
    Ready, In progress, Review, Done."""

    KANBAN = "kanban"
    FLOW = "flow"


class ProjectIn(Schema):
    key: Text = Field(..., min_length=2, max_length=10, examples=["DEMO"])
    name: Text = Field(..., min_length=1, max_length=200)
    description: Text = Field("", max_length=10_000)
    board_name: Text = Field("Board", max_length=200)
    template: BoardTemplate = BoardTemplate.KANBAN


# PATCH bodies: a field left out keeps its value; only the fields whose column takes NULL accept
# null (the others default to None without being nullable: an explicit null is a 422, not an
# IntegrityError from a NOT NULL column).


class ProjectPatch(Schema):
    name: Text = Field(None, min_length=1, max_length=200)
    description: Text = Field(None, max_length=10_000)
    archived: bool = Field(None, description="true archives (hidden from lists, read-only), false restores")
    version: Count | None = None


class ProjectListQuery(Schema):
    archived: bool = Field(False, description="true lists the archived projects instead")


class MemberIn(Schema):
    user_id: Text = Field(..., min_length=1, max_length=64)
    role: ProjectRole = ProjectRole.MEMBER
    display_name: Text = Field("", max_length=200)


class MemberPatch(Schema):
    role: ProjectRole


class BoardIn(Schema):
    name: Text = Field(..., min_length=1, max_length=200)
    template: BoardTemplate = BoardTemplate.KANBAN


class BoardPatch(Schema):
    name: Text = Field(None, min_length=1, max_length=200)
    archived: bool = Field(None, description="true archives (hidden from lists, read-only), false restores")
    version: Count | None = None


class BoardSummaryOut(Schema):
    """A board without its cards: the answer to a board write."""

    id: int
    name: str
    project: int
    archived: bool
    version: int

    @staticmethod
    def resolve_project(board: Board) -> int:
        return board.project_id

    @staticmethod
    def resolve_archived(board: Board) -> bool:
        return board.archived_at is not None


class LabelIn(Schema):
    name: Text = Field(..., min_length=1, max_length=LABEL_NAME_LENGTH)
    colour: Text | None = Field(None, max_length=7, description="a palette colour; left out, the next one")


class LabelPatch(Schema):
    name: Text = Field(None, min_length=1, max_length=LABEL_NAME_LENGTH)
    colour: Text = Field(None, max_length=7)


class ColumnDeleteQuery(Schema):
    move_to: Id | None = Field(None, description="the column of the same board that receives the cards")


class CardOut(Schema):
    id: int
    key: str
    title: str
    column: int
    rank: str
    assignees: list[str]
    labels: list[str]
    priority: str
    due_date: dt.date | None
    estimate_minutes: int | None
    version: int
    subtasks_total: int
    subtasks_done: int
    comment_count: int


class ColumnFields(Schema):
    """A column without its task count: what the live column.created/updated messages carry."""

    id: int
    name: str
    position: int
    wip_limit: int | None
    category: str
    version: int


class ColumnOut(ColumnFields):
    task_count: int


class BoardColumnOut(ColumnOut):
    tasks: list[CardOut]


class ProjectRef(Schema):
    id: int
    key: str
    name: str


class BoardOut(Schema):
    id: int
    name: str
    project: ProjectRef
    archived: bool = Field(..., description="the board or its project is archived: read-only")
    columns: list[BoardColumnOut]
    labels: list[LabelOut] = Field(..., description="the project's labels, for coloured chips")
    members: list[MemberOut]
    people: list[PersonOut] = Field(..., description="everyone the board names: members and assignees")
    actions: list[str]


class ColumnIn(Schema):
    name: Text = Field(..., min_length=1, max_length=100)
    category: ColumnCategory = ColumnCategory.TODO
    wip_limit: int | None = Field(None, ge=1, le=INTEGER_MAX)


class ColumnPatch(Schema):
    name: Text = Field(None, min_length=1, max_length=100)
    category: ColumnCategory = None
    wip_limit: int | None = Field(None, ge=1, le=INTEGER_MAX, description="null removes the limit")
    position: Count = None
    version: Count | None = None


class TaskIn(Schema):
    board: Id
    column: Id | None = None
    title: Text = Field(..., min_length=1, max_length=300)
    description: Text = Field("", max_length=100_000)
    assignees: list[Text] = []
    labels: list[Text] = []
    priority: Priority = Priority.MEDIUM
    due_date: dt.date | None = None
    estimate_minutes: Count | None = None
    on_top: bool = False
    override_wip: bool = False


class TaskPatch(Schema):
    title: Text = Field(None, min_length=1, max_length=300)
    description: Text = Field(None, max_length=100_000)
    assignees: list[Text] = None
    labels: list[Text] = None
    priority: Priority = None
    due_date: dt.date | None = None
    estimate_minutes: Count | None = None
    version: Count | None = None


class MoveIn(Schema):
    column: Id
    before: Id | None = Field(None, description="place the task ahead of this task")
    after: Id | None = Field(None, description="place the task behind this task")
    index: Count | None = Field(None, description="0-based place among the column's other tasks")
    version: Count | None = None
    override_wip: bool = False


class SubtaskOut(Schema):
    id: int
    title: str
    done: bool
    position: int


class CommentOut(Schema):
    id: int
    author: str
    body: str
    body_html: str
    created_at: dt.datetime
    edited_at: dt.datetime | None = Field(None, description="when its author last changed it; null if never")

    @staticmethod
    def resolve_author(comment: Comment) -> str:
        return comment.author_id

    @staticmethod
    def resolve_body_html(comment: Comment) -> str:
        return selectors.markdown_html(comment.body)


class AttachmentOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int
    uploaded_by: str
    created_at: dt.datetime
    preview: bool = Field(False, description="an image GET /api/attachments/<id>/preview shows inline")

    @staticmethod
    def resolve_preview(attachment: object) -> bool:
        return selectors.attachment_previewable(attachment)


class WorkLogOut(Schema):
    id: int
    user: str
    day: dt.date
    minutes: int
    note: str

    @staticmethod
    def resolve_user(worklog: WorkLog) -> str:
        return worklog.user_id


class ActivityOut(Schema):
    id: int
    actor_id: str
    verb: str
    data: dict
    text: str = Field(..., description='the entry in words, with names: "Ana moved DEMO-4 from To do to Done"')
    created_at: dt.datetime


class TaskOut(CardOut):
    project: int
    board: int
    column_name: str
    description: str
    description_html: str
    reporter: str
    archived_at: dt.datetime | None = Field(None, description="set while the task is archived (off the board)")
    created_at: dt.datetime
    updated_at: dt.datetime
    subtasks: list[SubtaskOut]
    comments: list[CommentOut]
    attachments: list[AttachmentOut]
    worklogs: list[WorkLogOut]
    worked_minutes: int
    activity: list[ActivityOut]
    people: list[PersonOut] = Field(..., description="everyone the task mentions (comments, history...), by name")
    actions: list[str]


class TaskPage(Schema):
    items: list[CardOut]
    total: int
    limit: int
    offset: int


class SubtaskIn(Schema):
    title: Text = Field(..., min_length=1, max_length=300)


class SubtaskPatch(Schema):
    title: Text = Field(None, min_length=1, max_length=300)
    done: bool = None
    position: Count = Field(None, description="0-based place in the task's checklist")


class CommentIn(Schema):
    body: Text = Field(..., min_length=1, max_length=20_000)


class WorkLogIn(Schema):
    minutes: int = Field(..., ge=1, le=1440)
    day: dt.date | None = None
    note: Text = Field("", max_length=500)


class WorkLogPatch(Schema):
    minutes: int = Field(None, ge=1, le=1440)
    day: dt.date = None
    note: Text = Field(None, max_length=500)


class ArchiveIn(Schema):
    version: Count | None = None


class RestoreIn(Schema):
    version: Count | None = None
    override_wip: bool = False


class MarkdownIn(Schema):
    text: Text = Field(..., max_length=100_000)


class MarkdownOut(Schema):
    html: str = Field(
        ..., description="the text rendered as the panel shows it: raw HTML escaped, unsafe links dropped"
    )


class TotalsByUser(Schema):
    user: str
    minutes: int


class TotalsByUserDay(TotalsByUser):
    day: dt.date


class TotalsByTask(Schema):
    task: int
    key: str
    minutes: int


class WorkTotalsOut(Schema):
    total_minutes: int
    by_user: list[TotalsByUser]
    by_user_day: list[TotalsByUserDay]
    by_task: list[TotalsByTask]


class TaskFiltersIn(Schema):
    assignee: Text | None = None
    label: Text | None = None
    q: Text | None = Field(None, max_length=200, description="text in the title, description or key")
    due_before: dt.date | None = None
    due_after: dt.date | None = None

    def to_filters(self) -> selectors.TaskFilters:
        return selectors.TaskFilters(
            assignee=self.assignee,
            label=self.label,
            text=self.q,
            due_before=self.due_before,
            due_after=self.due_after,
        )


class TaskListQuery(TaskFiltersIn):
    project: Id | None = None
    board: Id | None = None
    archived: bool = Field(False, description="the archived tasks instead, most recently archived first")
    # Plain ints with their bounds spelled out: Ninja's query flattening keeps only one Field per parameter.
    limit: int = Field(50, ge=1, le=selectors.MAX_PAGE)
    offset: int = Field(0, ge=0, le=INTEGER_MAX)
