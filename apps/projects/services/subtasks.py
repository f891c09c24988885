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


def subtask_update(
    *,
    caller: Caller,
    subtask_id: int,
    title: str | None = None,
    done: bool | None = None,
    position: int | None = None,
) -> Subtask:
    """Rename, tick or untick, or move the subtask to `position` (0-based) in its task's list."""
    with transaction.atomic(using=tenant_db()):
        subtask = Subtask.objects.filter(pk=subtask_id).first()
        if subtask is None:
            raise NotFound("No such subtask")
        task, _ = locked_task(caller, subtask.task_id, "edit_task")
        subtask = Subtask.objects.get(pk=subtask_id)  # read again under the task's lock
        if title is not None and title.strip() != subtask.title:
            previous, subtask.title = subtask.title, title.strip()
            record_activity(task.id, caller, "subtask_renamed", subtask=subtask.id, title=subtask.title, old=previous)
        if done is not None and done != subtask.done:
            subtask.done = done
            record_activity(
                task.id, caller, "subtask_done" if done else "subtask_reopened", subtask=subtask.id, title=subtask.title
            )
        full_clean(subtask)
        subtask.save()
        if position is not None:
            _subtask_reposition(subtask, position)
        live.board_broadcast(board_id=task.board_id, event="task.updated", data=task_card(task))
    return subtask


def _subtask_reposition(subtask: Subtask, position: int) -> None:
    # A checklist holds a handful of items: renumbering them all keeps the order simple.
    siblings = list(Subtask.objects.filter(task_id=subtask.task_id).exclude(pk=subtask.pk).order_by("position", "id"))
    siblings.insert(max(0, min(position, len(siblings))), subtask)
    for index, sibling in enumerate(siblings):
        sibling.position = index
    Subtask.objects.bulk_update(siblings, ["position"])


def subtask_delete(*, caller: Caller, subtask_id: int) -> None:
    with transaction.atomic(using=tenant_db()):
        subtask = Subtask.objects.filter(pk=subtask_id).first()
        if subtask is None:
            raise NotFound("No such subtask")
        task, _ = locked_task(caller, subtask.task_id, "edit_task")
        subtask.delete()
        record_activity(task.id, caller, "subtask_removed", title=subtask.title)
        live.board_broadcast(board_id=task.board_id, event="task.updated", data=task_card(task))
