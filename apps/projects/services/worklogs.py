"""Time logged on tasks."""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from apps.common.exceptions import Forbidden, NotFound
from apps.projects import live, schemas
from apps.projects.db import tenant_db
from apps.projects.errors import InvalidInput
from apps.projects.models import WorkLog
from apps.projects.permissions import Caller
from apps.projects.services.shared import full_clean, locked_task, record_activity


def worklog_add(*, caller: Caller, task_id: int, minutes: int, day: dt.date | None = None, note: str = "") -> WorkLog:
    day = day or timezone.localdate()
    if minutes < 1 or minutes > 24 * 60:
        raise InvalidInput("minutes must be between 1 and 1440")
    if day > timezone.localdate() + dt.timedelta(days=1):
        raise InvalidInput("Work cannot be logged in the future")
    with transaction.atomic(using=tenant_db()):
        task, _ = locked_task(caller, task_id, "log_work")
        worklog = WorkLog(task=task, user_id=caller.user_id, day=day, minutes=minutes, note=note.strip())
        full_clean(worklog)
        worklog.save()
        record_activity(task.id, caller, "work_logged", minutes=minutes, day=day.isoformat())
        live.board_broadcast(
            board_id=task.board_id,
            event="worklog.added",
            data={"task": task.id, "worklog": schemas.dump(schemas.WorkLogOut, worklog)},
        )
    return worklog


def worklog_delete(*, caller: Caller, worklog_id: int) -> None:
    with transaction.atomic(using=tenant_db()):
        worklog = WorkLog.objects.filter(pk=worklog_id).first()
        if worklog is None:
            raise NotFound("No such work log")
        _, actions = locked_task(caller, worklog.task_id, "log_work")
        if worklog.user_id != caller.user_id and "manage_members" not in actions:
            raise Forbidden("You may only remove your own work logs", code="permission_denied")
        worklog.delete()
