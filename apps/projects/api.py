"""The projects service's HTTP API (CONTRACT.md), on Django Ninja. Thin: parse, call a
selector or service with the caller's verified claims, shape the answer.

Optimistic concurrency: reads of a task carry an ETag ("<version>"); writes accept the
version back in `If-Match` or as `version` in the body, and answer 409 when it is stale.
"""

import datetime as dt
import json

from django.http import FileResponse, HttpRequest, HttpResponse
from django_tenants.utils import get_public_schema_name
from ninja import Field, File, NinjaAPI, Query, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from apps.common.auth import Claims, NinjaJWTAuth
from apps.common.ninja import INTEGER_MAX, Count, Id, Text
from apps.projects import selectors, services
from apps.projects.db import tenant_connection
from apps.projects.errors import InvalidInput
from apps.projects.models import ColumnCategory, Priority, ProjectRole


class TenantJWTAuth(NinjaJWTAuth):
    """The platform's token check, plus: the request must have been routed to a tenant."""

    def __call__(self, request: HttpRequest) -> object | None:
        principal = super().__call__(request)
        if principal is None:
            return None
        if tenant_connection().schema_name == get_public_schema_name():
            raise HttpError(404, "This API is served on a tenant's host only")
        tenant_uuid = getattr(getattr(request, "tenant", None), "tenant_id", None)
        if tenant_uuid is not None and str(tenant_uuid) != principal.claims.tenant_id:
            raise HttpError(403, "Token belongs to another organization")
        return principal


router = Router(auth=TenantJWTAuth(), tags=["projects"])


def _claims(request: HttpRequest) -> Claims:
    return request.auth.claims


def _expected_version(request: HttpRequest, body_version: int | None) -> int | None:
    header = request.headers.get("If-Match", "").strip()
    if not header or header == "*":
        return body_version
    try:
        return int(header.removeprefix("W/").strip('"'))
    except ValueError:
        raise InvalidInput('If-Match must be an ETag this API gave out, like "3"', code="bad_if_match") from None


# Shapes ---------------------------------------------------------------------------------------


class BoardRef(Schema):
    id: int
    name: str


class ProjectOut(Schema):
    id: int
    key: str
    name: str
    description: str
    version: int
    boards: list[BoardRef]


class MemberOut(Schema):
    user_id: str
    role: str
    display_name: str


class ProjectDetailOut(ProjectOut):
    members: list[MemberOut]
    actions: list[str]


class ProjectIn(Schema):
    key: Text = Field(..., min_length=2, max_length=10, examples=["DEMO"])
    name: Text = Field(..., min_length=1, max_length=200)
    description: Text = ""
    board_name: Text = Field("Board", max_length=200)


# PATCH bodies: a field left out keeps its value; only the fields whose column takes NULL accept
# null (the others default to None without being nullable: an explicit null is a 422, not an
# IntegrityError from a NOT NULL column).


class ProjectPatch(Schema):
    name: Text = Field(None, min_length=1, max_length=200)
    description: Text = None
    version: Count | None = None


class MemberIn(Schema):
    user_id: Text = Field(..., min_length=1, max_length=64)
    role: ProjectRole = ProjectRole.MEMBER
    display_name: Text = Field("", max_length=200)


class BoardIn(Schema):
    name: Text = Field(..., min_length=1, max_length=200)


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


class ColumnOut(Schema):
    id: int
    name: str
    position: int
    wip_limit: int | None
    category: str
    version: int
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
    columns: list[BoardColumnOut]
    members: list[MemberOut]
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


class AttachmentOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int
    uploaded_by: str
    created_at: dt.datetime


class WorkLogOut(Schema):
    id: int
    user: str
    day: dt.date
    minutes: int
    note: str


class ActivityOut(Schema):
    id: int
    actor_id: str
    verb: str
    data: dict
    created_at: dt.datetime


class TaskOut(CardOut):
    project: int
    board: int
    description: str
    description_html: str
    reporter: str
    created_at: dt.datetime
    updated_at: dt.datetime
    subtasks: list[SubtaskOut]
    comments: list[CommentOut]
    attachments: list[AttachmentOut]
    worklogs: list[WorkLogOut]
    worked_minutes: int
    activity: list[ActivityOut]
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


class CommentIn(Schema):
    body: Text = Field(..., min_length=1, max_length=20_000)


class WorkLogIn(Schema):
    minutes: int = Field(..., ge=1, le=1440)
    day: dt.date | None = None
    note: Text = Field("", max_length=500)


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
    # Plain ints with their bounds spelled out: Ninja's query flattening keeps only one Field per parameter.
    limit: int = Field(50, ge=1, le=selectors.MAX_PAGE)
    offset: int = Field(0, ge=0, le=INTEGER_MAX)


# Projects, members, boards, columns ---------------------------------------------------------


@router.get("/projects", response=list[ProjectOut])
def list_projects(request: HttpRequest) -> list[dict]:
    return selectors.project_list(caller=_claims(request))


@router.post("/projects", response={201: ProjectDetailOut})
def create_project(request: HttpRequest, payload: ProjectIn) -> Status:
    project = services.project_create(caller=_claims(request), **payload.dict())
    return Status(201, selectors.project_get(caller=_claims(request), project_id=project.id))


@router.get("/projects/{int:project_id}", response=ProjectDetailOut)
def get_project(request: HttpRequest, project_id: Id) -> dict:
    return selectors.project_get(caller=_claims(request), project_id=project_id)


@router.patch("/projects/{int:project_id}", response=ProjectDetailOut)
def update_project(request: HttpRequest, project_id: Id, payload: ProjectPatch) -> dict:
    changes = payload.dict(exclude_unset=True)
    version = _expected_version(request, changes.pop("version", None))
    services.project_update(caller=_claims(request), project_id=project_id, expected_version=version, **changes)
    return selectors.project_get(caller=_claims(request), project_id=project_id)


@router.get("/projects/{int:project_id}/members", response=list[MemberOut])
def list_members(request: HttpRequest, project_id: Id) -> list[dict]:
    return selectors.project_members(caller=_claims(request), project_id=project_id)


@router.post("/projects/{int:project_id}/members", response={201: MemberOut})
def add_member(request: HttpRequest, project_id: Id, payload: MemberIn) -> Status:
    member = services.project_member_set(caller=_claims(request), project_id=project_id, **payload.dict())
    return Status(201, member)


@router.delete("/projects/{int:project_id}/members/{user_id}", response={204: None})
def remove_member(request: HttpRequest, project_id: Id, user_id: Text) -> Status:
    services.project_member_remove(caller=_claims(request), project_id=project_id, user_id=user_id)
    return Status(204, None)


@router.get("/projects/{int:project_id}/worklogs", response=WorkTotalsOut)
def project_work_totals(request: HttpRequest, project_id: Id) -> dict:
    return selectors.worklog_totals(caller=_claims(request), project_id=project_id)


@router.post("/projects/{int:project_id}/boards", response={201: BoardRef})
def create_board(request: HttpRequest, project_id: Id, payload: BoardIn) -> Status:
    return Status(201, services.board_create(caller=_claims(request), project_id=project_id, name=payload.name))


@router.get("/boards/{int:board_id}", response=BoardOut)
def get_board(request: HttpRequest, board_id: Id, filters: Query[TaskFiltersIn]) -> HttpResponse:
    # The hottest read of the platform: its JSON comes built (by PostgreSQL when unfiltered), not
    # re-validated card by card by Ninja; tests/projects/test_api.py checks the body against BoardOut.
    task_filters = filters.to_filters()
    if task_filters.active:
        body = json.dumps(selectors.board_get(caller=_claims(request), board_id=board_id, filters=task_filters))
    else:
        body = selectors.board_json(caller=_claims(request), board_id=board_id)
    return HttpResponse(body, content_type="application/json")


@router.get("/boards/{int:board_id}/columns", response=list[ColumnOut])
def list_columns(request: HttpRequest, board_id: Id) -> list[dict]:
    return selectors.board_columns(caller=_claims(request), board_id=board_id)


@router.post("/boards/{int:board_id}/columns", response={201: ColumnOut})
def create_column(request: HttpRequest, board_id: Id, payload: ColumnIn) -> Status:
    column = services.column_create(caller=_claims(request), board_id=board_id, **payload.dict())
    return Status(201, {**services._column_out(column), "task_count": 0})


@router.patch("/columns/{int:column_id}", response=ColumnOut)
def update_column(request: HttpRequest, column_id: Id, payload: ColumnPatch) -> dict:
    changes = payload.dict(exclude_unset=True)
    version = _expected_version(request, changes.pop("version", None))
    clear_wip_limit = "wip_limit" in changes and changes["wip_limit"] is None
    if clear_wip_limit:
        changes.pop("wip_limit")
    column = services.column_update(
        caller=_claims(request),
        column_id=column_id,
        expected_version=version,
        clear_wip_limit=clear_wip_limit,
        **changes,
    )
    return {**services._column_out(column), "task_count": column.tasks.count()}


@router.delete("/columns/{int:column_id}", response={204: None})
def delete_column(request: HttpRequest, column_id: Id) -> Status:
    services.column_delete(caller=_claims(request), column_id=column_id)
    return Status(204, None)


# Tasks ------------------------------------------------------------------------------------------


def _task_detail(request: HttpRequest, response: HttpResponse, task_id: Id) -> dict:
    detail = selectors.task_get(caller=_claims(request), task_id=task_id)
    response["ETag"] = f'"{detail["version"]}"'
    return detail


@router.get("/tasks", response=TaskPage)
def list_tasks(request: HttpRequest, query: Query[TaskListQuery]) -> dict:
    return selectors.task_list(
        caller=_claims(request),
        filters=query.to_filters(),
        project_id=query.project,
        board_id=query.board,
        limit=query.limit,
        offset=query.offset,
    )


@router.post("/tasks", response={201: TaskOut})
def create_task(request: HttpRequest, response: HttpResponse, payload: TaskIn) -> Status:
    data = payload.dict()
    task = services.task_create(
        caller=_claims(request), board_id=data.pop("board"), column_id=data.pop("column"), **data
    )
    return Status(201, _task_detail(request, response, task.id))


@router.get("/tasks/{int:task_id}", response=TaskOut)
def get_task(request: HttpRequest, response: HttpResponse, task_id: Id) -> dict:
    return _task_detail(request, response, task_id)


@router.patch("/tasks/{int:task_id}", response=TaskOut)
def update_task(request: HttpRequest, response: HttpResponse, task_id: Id, payload: TaskPatch) -> dict:
    changes = payload.dict(exclude_unset=True)
    version = _expected_version(request, changes.pop("version", None))
    services.task_update(caller=_claims(request), task_id=task_id, expected_version=version, **changes)
    return _task_detail(request, response, task_id)


@router.delete("/tasks/{int:task_id}", response={204: None})
def delete_task(request: HttpRequest, task_id: Id) -> Status:
    version = _expected_version(request, None)
    services.task_delete(caller=_claims(request), task_id=task_id, expected_version=version)
    return Status(204, None)


@router.post("/tasks/{int:task_id}/move", response=CardOut)
def move_task(request: HttpRequest, response: HttpResponse, task_id: Id, payload: MoveIn) -> dict:
    task = services.task_move(
        caller=_claims(request),
        task_id=task_id,
        column_id=payload.column,
        before_id=payload.before,
        after_id=payload.after,
        index=payload.index,
        expected_version=_expected_version(request, payload.version),
        override_wip=payload.override_wip,
    )
    response["ETag"] = f'"{task.version}"'
    return selectors.task_card(task)


@router.get("/tasks/{int:task_id}/subtasks", response=list[SubtaskOut])
def list_subtasks(request: HttpRequest, task_id: Id) -> list[dict]:
    return selectors.task_get(caller=_claims(request), task_id=task_id)["subtasks"]


@router.post("/tasks/{int:task_id}/subtasks", response={201: SubtaskOut})
def create_subtask(request: HttpRequest, task_id: Id, payload: SubtaskIn) -> Status:
    return Status(201, services.subtask_create(caller=_claims(request), task_id=task_id, title=payload.title))


@router.patch("/subtasks/{int:subtask_id}", response=SubtaskOut)
def update_subtask(request: HttpRequest, subtask_id: Id, payload: SubtaskPatch) -> object:
    return services.subtask_update(caller=_claims(request), subtask_id=subtask_id, **payload.dict(exclude_unset=True))


@router.delete("/subtasks/{int:subtask_id}", response={204: None})
def delete_subtask(request: HttpRequest, subtask_id: Id) -> Status:
    services.subtask_delete(caller=_claims(request), subtask_id=subtask_id)
    return Status(204, None)


@router.get("/tasks/{int:task_id}/comments", response=list[CommentOut])
def list_comments(request: HttpRequest, task_id: Id) -> list[dict]:
    return selectors.task_get(caller=_claims(request), task_id=task_id)["comments"]


@router.post("/tasks/{int:task_id}/comments", response={201: CommentOut})
def add_comment(request: HttpRequest, task_id: Id, payload: CommentIn) -> Status:
    comment = services.comment_add(caller=_claims(request), task_id=task_id, body=payload.body)
    return Status(201, selectors.comment_out(comment))


@router.get("/tasks/{int:task_id}/attachments", response=list[AttachmentOut])
def list_attachments(request: HttpRequest, task_id: Id) -> list[dict]:
    return selectors.task_get(caller=_claims(request), task_id=task_id)["attachments"]


@router.post("/tasks/{int:task_id}/attachments", response={201: AttachmentOut})
def add_attachment(request: HttpRequest, task_id: Id, file: File[UploadedFile]) -> Status:
    attachment = services.attachment_add(caller=_claims(request), task_id=task_id, upload=file)
    return Status(201, selectors.attachment_out(attachment))


@router.get("/attachments/{int:attachment_id}")
def download_attachment(request: HttpRequest, attachment_id: Id) -> FileResponse:
    attachment = selectors.attachment_get(caller=_claims(request), attachment_id=attachment_id)
    response = FileResponse(attachment.file.open("rb"), as_attachment=True, filename=attachment.filename)
    response["Content-Type"] = attachment.content_type
    response["X-Content-Type-Options"] = "nosniff"
    return response


@router.delete("/attachments/{int:attachment_id}", response={204: None})
def delete_attachment(request: HttpRequest, attachment_id: Id) -> Status:
    services.attachment_delete(caller=_claims(request), attachment_id=attachment_id)
    return Status(204, None)


@router.get("/tasks/{int:task_id}/worklogs", response=list[WorkLogOut])
def list_worklogs(request: HttpRequest, task_id: Id) -> list[dict]:
    return selectors.task_get(caller=_claims(request), task_id=task_id)["worklogs"]


@router.post("/tasks/{int:task_id}/worklogs", response={201: WorkLogOut})
def add_worklog(request: HttpRequest, task_id: Id, payload: WorkLogIn) -> Status:
    worklog = services.worklog_add(caller=_claims(request), task_id=task_id, **payload.dict())
    return Status(201, selectors.worklog_out(worklog))


@router.delete("/worklogs/{int:worklog_id}", response={204: None})
def delete_worklog(request: HttpRequest, worklog_id: Id) -> Status:
    services.worklog_delete(caller=_claims(request), worklog_id=worklog_id)
    return Status(204, None)


def install(api: NinjaAPI) -> None:
    """Mount the routes on the service's API (apps.common.ninja.platform_api answers ServiceError)."""
    api.add_router("", router)
