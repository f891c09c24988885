"""What several write services need: the outbox, the activity log, version checks, model
validation, and the locked rows a write starts from."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError

from apps.common.exceptions import NotFound
from apps.projects.db import tenant_db
from apps.projects.errors import InvalidInput, VersionConflict
from apps.projects.models import Activity, Project, Task
from apps.projects.permissions import Caller, project_actions, require


def publish(event_type: str, data: dict, *, caller: Caller, aggregate_id: object) -> None:
    from apps.events.outbox import publish
    from apps.projects.tenants.context import current_tenant
    from apps.projects.tenants.outbox import tenant_outbox_move_after_commit

    using = tenant_db()
    publish(
        event_type,
        data,
        tenant_id=caller.tenant_id,
        actor_id=caller.user_id,
        aggregate_id=str(aggregate_id),
        using=using,
    )
    if using != "default":
        # A database-mode tenant: the event is in its own database's outbox, committed with the change;
        # it moves to the service's outbox after the commit (apps/projects/tenants/outbox.py, ADR 0001).
        tenant_outbox_move_after_commit(current_tenant(), using=using)


def record_activity(task_id: int, caller: Caller, verb: str, **data: object) -> None:
    Activity.objects.create(task_id=task_id, actor_id=caller.user_id, verb=verb, data=data)


def check_version(current: int, expected: int | None, what: str) -> None:
    if expected is not None and expected != current:
        raise VersionConflict(
            f"The {what} changed since you read it (version {expected}, now {current}); reload and retry",
            current_version=current,
        )


def full_clean(instance: object, *, exclude: Iterable[str] = ()) -> None:
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput("The request is invalid", code="validation_error", fields=exc.message_dict) from None


def clean_strings(values: Iterable[str], *, what: str, limit: int, max_length: int) -> list[str]:
    cleaned = list(dict.fromkeys(value.strip() for value in values if value and value.strip()))
    if len(cleaned) > limit:
        raise InvalidInput(f"At most {limit} {what}")
    if any(len(value) > max_length for value in cleaned):
        raise InvalidInput(f"Each of {what} is at most {max_length} characters")
    return cleaned


def locked_project(project_id: int) -> Project:
    project = Project.objects.select_for_update().filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project")
    return project


def locked_task(caller: Caller, task_id: int, action: str) -> tuple[Task, frozenset[str]]:
    task = Task.objects.select_for_update().filter(pk=task_id).first()
    if task is None:
        raise NotFound("No such task")
    actions = project_actions(caller=caller, project_id=task.project_id, board_id=task.board_id)
    require(actions, action, what="task")
    return task, actions


def task_event_data(task: Task) -> dict:
    return {
        "task_id": str(task.id),
        "key": task.key,
        "project_id": str(task.project_id),
        "board_id": str(task.board_id),
        "column_id": str(task.column_id),
    }
