"""Comments on tasks."""

from django.db import transaction

from apps.projects import live, schemas
from apps.projects.db import tenant_db
from apps.projects.errors import InvalidInput
from apps.projects.models import Comment
from apps.projects.permissions import Caller
from apps.projects.services.search import task_search_refresh
from apps.projects.services.shared import locked_task, publish, record_activity, task_event_data


def comment_add(*, caller: Caller, task_id: int, body: str) -> Comment:
    body = body.strip()
    if not body:
        raise InvalidInput("A comment needs a body")
    if len(body) > 20_000:
        raise InvalidInput("A comment is at most 20000 characters")
    with transaction.atomic(using=tenant_db()):
        task, _ = locked_task(caller, task_id, "comment")
        comment = Comment.objects.create(task=task, author_id=caller.user_id, body=body)
        task_search_refresh(task=task)
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
    return comment
