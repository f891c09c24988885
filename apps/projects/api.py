"""The projects service's HTTP API (CONTRACT.md), on Django Ninja. Thin: parse, call a
selector or service with the caller's verified claims, shape the answer.

Optimistic concurrency: reads of a task carry an ETag ("<version>"); writes accept the
version back in `If-Match` or as `version` in the body, and answer 409 when it is stale.
"""

import json

from django.http import FileResponse, HttpRequest, HttpResponse
from django_tenants.utils import get_public_schema_name
from ninja import File, NinjaAPI, Query, Router, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from apps.common.auth import Claims, NinjaJWTAuth
from apps.common.exceptions import NotFound
from apps.common.ninja import Id, Text
from apps.projects import selectors
from apps.projects.db import tenant_connection
from apps.projects.errors import InvalidInput
from apps.projects.schemas import (
    ArchiveIn,
    AttachmentOut,
    BoardIn,
    BoardOut,
    BoardPatch,
    BoardSummaryOut,
    CardOut,
    ColumnDeleteQuery,
    ColumnIn,
    ColumnOut,
    ColumnPatch,
    CommentIn,
    CommentOut,
    LabelIn,
    LabelOut,
    LabelPatch,
    MarkdownIn,
    MarkdownOut,
    MemberIn,
    MemberOut,
    MemberPatch,
    MoveIn,
    PeoplePage,
    ProjectDetailOut,
    ProjectIn,
    ProjectListQuery,
    ProjectOut,
    ProjectPatch,
    RestoreIn,
    SubtaskIn,
    SubtaskOut,
    SubtaskPatch,
    TaskFiltersIn,
    TaskIn,
    TaskListQuery,
    TaskOut,
    TaskPage,
    TaskPatch,
    WorkLogIn,
    WorkLogOut,
    WorkLogPatch,
    WorkTotalsOut,
)
from apps.projects.services import attachments as attachment_services
from apps.projects.services import boards as board_services
from apps.projects.services import comments as comment_services
from apps.projects.services import labels as label_services
from apps.projects.services import projects as project_services
from apps.projects.services import subtasks as subtask_services
from apps.projects.services import tasks as task_services
from apps.projects.services import worklogs as worklog_services


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


# People, projects, members, boards, columns -------------------------------------------------


@router.get("/people", response=PeoplePage)
def search_people(
    request: HttpRequest,
    q: str = Query("", max_length=200, description="words of a name or an email"),
    limit: int = Query(20, ge=1, le=selectors.PEOPLE_SEARCH_MAX),
) -> dict:
    """The organization's members whose name or email contains `q` (for people pickers)."""
    return {"items": selectors.people_search(caller=_claims(request), text=q, limit=limit)}


@router.get("/projects", response=list[ProjectOut])
def list_projects(request: HttpRequest, query: Query[ProjectListQuery]) -> list[dict]:
    return selectors.project_list(caller=_claims(request), archived=query.archived)


@router.post("/projects", response={201: ProjectDetailOut})
def create_project(request: HttpRequest, payload: ProjectIn) -> Status:
    project = project_services.project_create(caller=_claims(request), **payload.dict())
    return Status(201, selectors.project_get(caller=_claims(request), project_id=project.id))


@router.get("/projects/{int:project_id}", response=ProjectDetailOut)
def get_project(request: HttpRequest, project_id: Id) -> dict:
    return selectors.project_get(caller=_claims(request), project_id=project_id)


@router.patch("/projects/{int:project_id}", response=ProjectDetailOut)
def update_project(request: HttpRequest, project_id: Id, payload: ProjectPatch) -> dict:
    changes = payload.dict(exclude_unset=True)
    version = _expected_version(request, changes.pop("version", None))
    project_services.project_update(caller=_claims(request), project_id=project_id, expected_version=version, **changes)
    return selectors.project_get(caller=_claims(request), project_id=project_id)


@router.get("/projects/{int:project_id}/members", response=list[MemberOut])
def list_members(request: HttpRequest, project_id: Id) -> list[dict]:
    return selectors.project_members(caller=_claims(request), project_id=project_id)


@router.post("/projects/{int:project_id}/members", response={201: MemberOut})
def add_member(request: HttpRequest, project_id: Id, payload: MemberIn) -> Status:
    member = project_services.project_member_set(caller=_claims(request), project_id=project_id, **payload.dict())
    return Status(201, selectors.member_named(member=member))


@router.patch("/projects/{int:project_id}/members/{user_id}", response=MemberOut)
def update_member(request: HttpRequest, project_id: Id, user_id: Text, payload: MemberPatch) -> object:
    member = project_services.project_member_set(
        caller=_claims(request), project_id=project_id, user_id=user_id, role=payload.role, existing=True
    )
    return selectors.member_named(member=member)


@router.delete("/projects/{int:project_id}/members/{user_id}", response={204: None})
def remove_member(request: HttpRequest, project_id: Id, user_id: Text) -> Status:
    project_services.project_member_remove(caller=_claims(request), project_id=project_id, user_id=user_id)
    return Status(204, None)


@router.get("/projects/{int:project_id}/worklogs", response=WorkTotalsOut)
def project_work_totals(request: HttpRequest, project_id: Id) -> dict:
    return selectors.worklog_totals(caller=_claims(request), project_id=project_id)


@router.post("/projects/{int:project_id}/boards", response={201: BoardSummaryOut})
def create_board(request: HttpRequest, project_id: Id, payload: BoardIn) -> Status:
    board = board_services.board_create(
        caller=_claims(request), project_id=project_id, name=payload.name, template=payload.template
    )
    return Status(201, board)


@router.patch("/boards/{int:board_id}", response=BoardSummaryOut)
def update_board(request: HttpRequest, board_id: Id, payload: BoardPatch) -> object:
    changes = payload.dict(exclude_unset=True)
    version = _expected_version(request, changes.pop("version", None))
    return board_services.board_update(caller=_claims(request), board_id=board_id, expected_version=version, **changes)


@router.get("/projects/{int:project_id}/labels", response=list[LabelOut])
def list_labels(request: HttpRequest, project_id: Id) -> list[dict]:
    return selectors.project_get(caller=_claims(request), project_id=project_id)["labels"]


@router.post("/projects/{int:project_id}/labels", response={201: LabelOut})
def create_label(request: HttpRequest, project_id: Id, payload: LabelIn) -> Status:
    label = label_services.label_create(
        caller=_claims(request), project_id=project_id, name=payload.name, colour=payload.colour
    )
    return Status(201, label)


@router.patch("/labels/{int:label_id}", response=LabelOut)
def update_label(request: HttpRequest, label_id: Id, payload: LabelPatch) -> object:
    return label_services.label_update(caller=_claims(request), label_id=label_id, **payload.dict(exclude_unset=True))


@router.delete("/labels/{int:label_id}", response={204: None})
def delete_label(request: HttpRequest, label_id: Id) -> Status:
    label_services.label_delete(caller=_claims(request), label_id=label_id)
    return Status(204, None)


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
    column = board_services.column_create(caller=_claims(request), board_id=board_id, **payload.dict())
    return Status(201, selectors.column_counted(column_id=column.id))


@router.patch("/columns/{int:column_id}", response=ColumnOut)
def update_column(request: HttpRequest, column_id: Id, payload: ColumnPatch) -> dict:
    changes = payload.dict(exclude_unset=True)
    version = _expected_version(request, changes.pop("version", None))
    clear_wip_limit = "wip_limit" in changes and changes["wip_limit"] is None
    if clear_wip_limit:
        changes.pop("wip_limit")
    column = board_services.column_update(
        caller=_claims(request),
        column_id=column_id,
        expected_version=version,
        clear_wip_limit=clear_wip_limit,
        **changes,
    )
    return selectors.column_counted(column_id=column.id)


@router.delete("/columns/{int:column_id}", response={204: None})
def delete_column(request: HttpRequest, column_id: Id, query: Query[ColumnDeleteQuery]) -> Status:
    board_services.column_delete(caller=_claims(request), column_id=column_id, move_to=query.move_to)
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
        archived=query.archived,
    )


@router.post("/tasks", response={201: TaskOut})
def create_task(request: HttpRequest, response: HttpResponse, payload: TaskIn) -> Status:
    data = payload.dict()
    task = task_services.task_create(
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
    task_services.task_update(caller=_claims(request), task_id=task_id, expected_version=version, **changes)
    return _task_detail(request, response, task_id)


@router.delete("/tasks/{int:task_id}", response={204: None})
def delete_task(request: HttpRequest, task_id: Id) -> Status:
    version = _expected_version(request, None)
    task_services.task_delete(caller=_claims(request), task_id=task_id, expected_version=version)
    return Status(204, None)


@router.post("/tasks/{int:task_id}/archive", response=TaskOut)
def archive_task(request: HttpRequest, response: HttpResponse, task_id: Id, payload: ArchiveIn) -> dict:
    version = _expected_version(request, payload.version)
    task_services.task_archive(caller=_claims(request), task_id=task_id, expected_version=version)
    return _task_detail(request, response, task_id)


@router.post("/tasks/{int:task_id}/restore", response=TaskOut)
def restore_task(request: HttpRequest, response: HttpResponse, task_id: Id, payload: RestoreIn) -> dict:
    version = _expected_version(request, payload.version)
    task_services.task_restore(
        caller=_claims(request), task_id=task_id, expected_version=version, override_wip=payload.override_wip
    )
    return _task_detail(request, response, task_id)


@router.post("/tasks/{int:task_id}/move", response=CardOut)
def move_task(request: HttpRequest, response: HttpResponse, task_id: Id, payload: MoveIn) -> dict:
    task = task_services.task_move(
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
    return Status(201, subtask_services.subtask_create(caller=_claims(request), task_id=task_id, title=payload.title))


@router.get("/subtasks/{int:subtask_id}", response=SubtaskOut)
def get_subtask(request: HttpRequest, subtask_id: Id) -> object:
    return selectors.subtask_get(caller=_claims(request), subtask_id=subtask_id)


@router.patch("/subtasks/{int:subtask_id}", response=SubtaskOut)
def update_subtask(request: HttpRequest, subtask_id: Id, payload: SubtaskPatch) -> object:
    return subtask_services.subtask_update(
        caller=_claims(request), subtask_id=subtask_id, **payload.dict(exclude_unset=True)
    )


@router.delete("/subtasks/{int:subtask_id}", response={204: None})
def delete_subtask(request: HttpRequest, subtask_id: Id) -> Status:
    subtask_services.subtask_delete(caller=_claims(request), subtask_id=subtask_id)
    return Status(204, None)


@router.get("/tasks/{int:task_id}/comments", response=list[CommentOut])
def list_comments(request: HttpRequest, task_id: Id) -> list[dict]:
    return selectors.task_get(caller=_claims(request), task_id=task_id)["comments"]


@router.post("/tasks/{int:task_id}/comments", response={201: CommentOut})
def add_comment(request: HttpRequest, task_id: Id, payload: CommentIn) -> Status:
    comment = comment_services.comment_add(caller=_claims(request), task_id=task_id, body=payload.body)
    return Status(201, comment)


@router.get("/comments/{int:comment_id}", response=CommentOut)
def get_comment(request: HttpRequest, comment_id: Id) -> object:
    return selectors.comment_get(caller=_claims(request), comment_id=comment_id)


@router.patch("/comments/{int:comment_id}", response=CommentOut)
def update_comment(request: HttpRequest, comment_id: Id, payload: CommentIn) -> object:
    return comment_services.comment_update(caller=_claims(request), comment_id=comment_id, body=payload.body)


@router.delete("/comments/{int:comment_id}", response={204: None})
def delete_comment(request: HttpRequest, comment_id: Id) -> Status:
    comment_services.comment_delete(caller=_claims(request), comment_id=comment_id)
    return Status(204, None)


@router.get("/tasks/{int:task_id}/attachments", response=list[AttachmentOut])
def list_attachments(request: HttpRequest, task_id: Id) -> list[dict]:
    return selectors.task_get(caller=_claims(request), task_id=task_id)["attachments"]


@router.post("/tasks/{int:task_id}/attachments", response={201: AttachmentOut})
def add_attachment(request: HttpRequest, task_id: Id, file: File[UploadedFile]) -> Status:
    attachment = attachment_services.attachment_add(caller=_claims(request), task_id=task_id, upload=file)
    return Status(201, attachment)


def _file_response(attachment: object, *, inline: bool) -> FileResponse:
    response = FileResponse(attachment.file.open("rb"), as_attachment=not inline, filename=attachment.filename)
    response["Content-Type"] = attachment.content_type
    response["X-Content-Type-Options"] = "nosniff"
    # Whatever a file holds, it is never a page of this origin: no script, no form, no frame.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response["Cache-Control"] = "private, max-age=300"
    return response


@router.get("/attachments/{int:attachment_id}")
def download_attachment(request: HttpRequest, attachment_id: Id) -> FileResponse:
    attachment = selectors.attachment_get(caller=_claims(request), attachment_id=attachment_id)
    return _file_response(attachment, inline=False)


@router.get("/attachments/{int:attachment_id}/preview")
def preview_attachment(request: HttpRequest, attachment_id: Id) -> FileResponse:
    """An image attachment shown inline (PNG, JPEG, GIF, WebP whose bytes matched at upload); others: 404."""
    attachment = selectors.attachment_get(caller=_claims(request), attachment_id=attachment_id)
    if not selectors.attachment_previewable(attachment):
        raise NotFound("This attachment has no preview; download it instead", code="no_preview")
    return _file_response(attachment, inline=True)


@router.delete("/attachments/{int:attachment_id}", response={204: None})
def delete_attachment(request: HttpRequest, attachment_id: Id) -> Status:
    attachment_services.attachment_delete(caller=_claims(request), attachment_id=attachment_id)
    return Status(204, None)


@router.get("/tasks/{int:task_id}/worklogs", response=list[WorkLogOut])
def list_worklogs(request: HttpRequest, task_id: Id) -> list[dict]:
    return selectors.task_get(caller=_claims(request), task_id=task_id)["worklogs"]


@router.post("/tasks/{int:task_id}/worklogs", response={201: WorkLogOut})
def add_worklog(request: HttpRequest, task_id: Id, payload: WorkLogIn) -> Status:
    worklog = worklog_services.worklog_add(caller=_claims(request), task_id=task_id, **payload.dict())
    return Status(201, worklog)


@router.get("/worklogs/{int:worklog_id}", response=WorkLogOut)
def get_worklog(request: HttpRequest, worklog_id: Id) -> object:
    return selectors.worklog_get(caller=_claims(request), worklog_id=worklog_id)


@router.patch("/worklogs/{int:worklog_id}", response=WorkLogOut)
def update_worklog(request: HttpRequest, worklog_id: Id, payload: WorkLogPatch) -> object:
    return worklog_services.worklog_update(
        caller=_claims(request), worklog_id=worklog_id, **payload.dict(exclude_unset=True)
    )


@router.delete("/worklogs/{int:worklog_id}", response={204: None})
def delete_worklog(request: HttpRequest, worklog_id: Id) -> Status:
    worklog_services.worklog_delete(caller=_claims(request), worklog_id=worklog_id)
    return Status(204, None)


@router.post("/markdown/preview", response=MarkdownOut)
def preview_markdown(request: HttpRequest, payload: MarkdownIn) -> dict:
    """Markdown as the card panel shows a description or a comment (its Preview tab)."""
    return {"html": selectors.markdown_html(payload.text)}


def install(api: NinjaAPI) -> None:
    """Mount the routes on the service's API (apps.common.ninja.platform_api answers ServiceError)."""
    api.add_router("", router)
