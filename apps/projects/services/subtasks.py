"""A task's checklist."""

from django.db import transaction
from django.db.models import Max

from apps.common.exceptions import NotFound
from apps.projects import live
from apps.projects.db import tenant_db
from apps.projects.models import Subtask
from apps.projects.permissions import Caller
from apps.projects.selectors import task_card
from apps.projects.services.shared import full_clean, locked_task, record_activity


def subtask_create(*, caller: Caller, task_id: int, title: str) -> Subtask:
    with transaction.atomic(using=tenant_db()):
        task, _ = locked_task(caller, task_id, "edit_task")
        position = (task.subtasks.aggregate(top=Max("position"))["top"] or 0) + 1
        subtask = Subtask(task=task, title=title.strip(), position=position)
        full_clean(subtask)
        subtask.save()
        record_activity(task.id, caller, "subtask_added", subtask=subtask.id, title=subtask.title)
        live.board_broadcast(board_id=task.board_id, event="task.updated", data=task_card(task))
    return subtask


def subtask_update(*, caller: Caller, subtask_id: int, title: str | None = None, done: bool | None = None) -> Subtask:
    with transaction.atomic(using=tenant_db()):
        subtask = Subtask.objects.select_related("task").filter(pk=subtask_id).first()
        if subtask is None:
            raise NotFound("No such subtask")
        task, _ = locked_task(caller, subtask.task_id, "edit_task")
        if title is not None:
            subtask.title = title.strip()
        if done is not None and done != subtask.done:
            subtask.done = done
            record_activity(task.id, caller, "subtask_done" if done else "subtask_reopened", subtask=subtask.id)
        full_clean(subtask)
        subtask.save()
        live.board_broadcast(board_id=task.board_id, event="task.updated", data=task_card(task))
    return subtask


def subtask_delete(*, caller: Caller, subtask_id: int) -> None:
    with transaction.atomic(using=tenant_db()):
        subtask = Subtask.objects.filter(pk=subtask_id).first()
        if subtask is None:
            raise NotFound("No such subtask")
        task, _ = locked_task(caller, subtask.task_id, "edit_task")
        subtask.delete()
        live.board_broadcast(board_id=task.board_id, event="task.updated", data=task_card(task))
