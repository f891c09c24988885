"""Domain events go to the outbox in the same transaction as the change."""

import pytest
from django.db import transaction

from apps.events.models import OutboxEvent
from apps.projects.services import comments as comment_services
from apps.projects.services import tasks as task_services


def _outbox_types() -> list[str]:
    return list(OutboxEvent.objects.order_by("pk").values_list("event_type", flat=True))


def test_each_change_publishes_its_event(board, member, columns) -> None:
    before = len(_outbox_types())
    task = task_services.task_create(caller=member, board_id=board.id, title="A", assignees=["user-member"])
    task_services.task_move(caller=member, task_id=task.id, column_id=columns[0].id, index=0)  # same column: no event
    task_services.task_move(caller=member, task_id=task.id, column_id=columns[1].id)
    comment_services.comment_add(caller=member, task_id=task.id, body="hi")

    assert _outbox_types()[before:] == ["TaskCreated", "TaskAssigned", "TaskStatusChanged", "TaskCommentAdded"]


def test_project_events(project) -> None:
    types = _outbox_types()

    assert types[:2] == ["ProjectCreated", "ProjectUserAdded"]
    assert types.count("ProjectUserAdded") == 3


def test_a_failed_change_leaves_no_event(board, member) -> None:
    before = len(_outbox_types())
    with pytest.raises(RuntimeError), transaction.atomic():
        task_services.task_create(caller=member, board_id=board.id, title="A")
        raise RuntimeError("rolled back")

    assert len(_outbox_types()) == before
