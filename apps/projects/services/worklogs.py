"""Time logged on tasks: logged by members, edited and deleted by whoever logged it or a manager."""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from apps.common.exceptions import Forbidden, NotFound
from apps.projects import live, schemas
from apps.projects.db import tenant_db
from apps.projects.errors import InvalidInput
from apps.projects.models import Task, WorkLog
from apps.projects.permissions import Caller, may_moderate
from apps.projects.services.shared import full_clean, locked_task, record_activity

MAX_MINUTES = 24 * 60


def _check(minutes: int, day: dt.date) -> None:
    if minutes < 1 or minutes > MAX_MINUTES:
        raise InvalidInput(f"minutes must be between 1 and {MAX_MINUTES}")
    if day > timezone.localdate() + dt.timedelta(days=1):
        raise InvalidInput("Work cannot be logged in the future")


def worklog_add(*, caller: Caller, task_id: int, minutes: int, day: dt.date | None = None, note: str = "") -> WorkLog:
    day = day or timezone.localdate()
    _check(minutes, day)
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


def _locked_worklog(caller: Caller, worklog_id: int) -> tuple[WorkLog, Task]:
    worklog = WorkLog.objects.filter(pk=worklog_id).first()
    if worklog is None:
        raise NotFound("No such work log")
    task, actions = locked_task(caller, worklog.task_id, "log_work")
    worklog = WorkLog.objects.select_for_update().filter(pk=worklog_id).first()
    if worklog is None:
        raise NotFound("No such work log")
    if worklog.user_id != caller.user_id and not may_moderate(actions):
        raise Forbidden("Only whoever logged it or a project manager may change a work log", code="permission_denied")
    return worklog, task


def worklog_update(
    *, caller: Caller, worklog_id: int, minutes: int | None = None, day: dt.date | None = None, note: str | None = None
) -> WorkLog:
    with transaction.atomic(using=tenant_db()):
        worklog, task = _locked_worklog(caller, worklog_id)
        _check(minutes if minutes is not None else worklog.minutes, day or worklog.day)
        if minutes is not None:
            worklog.minutes = minutes
        if day is not None:
            worklog.day = day
        if note is not None:
            worklog.note = note.strip()
        full_clean(worklog)
        worklog.save()
        record_activity(task.id, caller, "work_edited", minutes=worklog.minutes, day=worklog.day.isoformat())
        live.board_broadcast(
            board_id=task.board_id,
            event="worklog.updated",
            data={"task": task.id, "worklog": schemas.dump(schemas.WorkLogOut, worklog)},
        )
    return worklog


def worklog_delete(*, caller: Caller, worklog_id: int) -> None:
    with transaction.atomic(using=tenant_db()):
        worklog, task = _locked_worklog(caller, worklog_id)
        worklog.delete()
        record_activity(
            task.id, caller, "work_removed", minutes=worklog.minutes, day=worklog.day.isoformat(), user=worklog.user_id
        )
        live.board_broadcast(board_id=task.board_id, event="worklog.deleted", data={"task": task.id, "id": worklog_id})
