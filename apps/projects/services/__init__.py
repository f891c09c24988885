"""Writes of the board domain, one module per sub-domain (projects, boards and columns, tasks,
subtasks, comments, attachments, worklogs, presence; `shared` holds what several need).

Each function is one transaction (callers may nest them), checks the caller's permission,
records the task's activity, publishes the domain event through the outbox and queues the live
update (live.board_broadcast) for after commit. Import the module you need:
`from apps.projects.services import tasks as task_services`.
"""
