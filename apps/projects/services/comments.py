"""Comments on tasks: written by anyone who may comment, edited by their author only, deleted by
their author or by a project manager."""

from django.db import transaction
from django.utils import timezone

from apps.common.exceptions import Forbidden, NotFound
from apps.projects import live, schemas
from apps.projects.db import tenant_db
from apps.projects.errors import InvalidInput
from apps.projects.models import Comment, Task
from apps.projects.permissions import READ, Caller, may_moderate
from apps.projects.selectors import task_card
from apps.projects.services.shared import locked_task, publish, record_activity, task_event_data

MAX_BODY = 20_000


def _clean_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise InvalidInput("A comment needs a body")
    if len(body) > MAX_BODY:
        raise InvalidInput(f"A comment is at most {MAX_BODY} characters")
    return body


def comment_add(*, caller: Caller, task_id: int, body: str) -> Comment:
    body = _clean_body(body)
    with transaction.atomic(using=tenant_db()):
        task, _ = locked_task(caller, task_id, "comment")
        comment = Comment.objects.create(task=task, author_id=caller.user_id, body=body)
        record_activity(task.id, caller, "commented", comment=comment.id)
        publish(
            "TaskCommentAdded",
            {**task_event_data(task), "comment_id": str(comment.id), "author_id": caller.user_id},
            caller=caller,
            aggregate_id=task.id,
        )
        live.board_broadcast(
            board_id=task.board_id,
            event="comment.added",
            data={"task": task.id, "comment": schemas.dump(schemas.CommentOut, comment)},
        )
        live.board_broadcast(board_id=task.board_id, event="task.updated", data=task_card(task))
    return comment


def _locked_comment(caller: Caller, comment_id: int, action: str) -> tuple[Comment, Task, frozenset[str]]:
    comment = Comment.objects.filter(pk=comment_id).first()
    if comment is None:
        raise NotFound("No such comment")
    task, actions = locked_task(caller, comment.task_id, action)
    comment = Comment.objects.select_for_update().filter(pk=comment_id).first()
    if comment is None:
        raise NotFound("No such comment")
    return comment, task, actions


def comment_update(*, caller: Caller, comment_id: int, body: str) -> Comment:
    body = _clean_body(body)
    with transaction.atomic(using=tenant_db()):
        comment, task, _ = _locked_comment(caller, comment_id, "comment")
        if comment.author_id != caller.user_id:
            raise Forbidden("Only its author may edit a comment", code="permission_denied")
        if body == comment.body:
            return comment
        comment.body = body
        comment.edited_at = timezone.now()
        comment.save(update_fields=["body", "edited_at"])
        live.board_broadcast(
            board_id=task.board_id,
            event="comment.updated",
            data={"task": task.id, "comment": schemas.dump(schemas.CommentOut, comment)},
        )
    return comment


def comment_delete(*, caller: Caller, comment_id: int) -> None:
    with transaction.atomic(using=tenant_db()):
        # Reading is enough to reach your own comment: a viewer may delete what they wrote.
        comment, task, actions = _locked_comment(caller, comment_id, READ)
        if comment.author_id != caller.user_id and not may_moderate(actions):
            raise Forbidden("Only its author or a project manager may delete a comment", code="permission_denied")
        comment.delete()
        record_activity(task.id, caller, "comment_deleted", author=comment.author_id)
        live.board_broadcast(board_id=task.board_id, event="comment.deleted", data={"task": task.id, "id": comment_id})
        live.board_broadcast(board_id=task.board_id, event="task.updated", data=task_card(task))
