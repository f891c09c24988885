"""The search rows of tasks (models.TaskSearch; apps/projects/search.py says what they hold).

Not a database trigger: tenant schemas are cloned from a template that holds only tables,
constraints and indexes (tenants/cloning.py). So every write that changes what a task is found
by (its title or description; a comment added, edited or deleted) calls `task_search_refresh`
in its own transaction; moves, assignees and labels leave the row alone. A deleted task's row
goes with it (a cascade).
"""

from collections.abc import Iterable

from apps.projects.db import tenant_connection
from apps.projects.models import Task
from apps.projects.search import REFRESH_ALL_SQL, REFRESH_SQL


def task_search_refresh(*, task: Task | int) -> None:
    """Rebuild one task's search vector from its saved key, title, description and comments (call
    it after the write, in its transaction). One statement. `task` is the task or its id."""
    tasks_search_refresh(task_ids=[task.pk if isinstance(task, Task) else task])


def tasks_search_refresh(*, task_ids: Iterable[int] | None = None) -> int:
    """Rebuild the vectors of these tasks, or of every task of the tenant (None): a backfill, or
    tasks written in bulk. Returns how many it wrote."""
    with tenant_connection().cursor() as cursor:
        if task_ids is None:
            cursor.execute(REFRESH_ALL_SQL)
        else:
            cursor.execute(REFRESH_SQL, {"ids": list(task_ids)})
        return cursor.rowcount
