"""The one question the shortener asks the projects service: may this person share this task?

Asked when a task link is created, listed or changed (never on the redirect), over projects'
internal endpoint (`/internal/tasks/<id>/share-check`, never routed by the gateway).
"""

from dataclasses import dataclass

import httpx
from django.conf import settings

from apps.common.exceptions import NotFound, Unavailable


@dataclass(frozen=True)
class TaskAccess:
    task_id: int
    key: str
    title: str
    project_id: int
    board_id: int | None
    can_read: bool
    can_manage: bool


def task_access(*, tenant_id: str, task_id: int, user_id: str) -> TaskAccess:
    url = f"{settings.SERVICE_URLS['projects'].rstrip('/')}/internal/tasks/{task_id}/share-check"
    try:
        response = httpx.get(
            url,
            params={"user": user_id},
            headers={"X-Internal-Token": settings.INTERNAL_API_TOKEN, "X-Tenant-ID": tenant_id},
            timeout=settings.SHORTENER_PROJECTS_TIMEOUT,
        )
    except httpx.HTTPError as error:
        raise Unavailable("The projects service cannot be reached; try again", retry_after=5) from error
    if response.status_code == 404:
        raise NotFound("No such task", code="task_not_found")
    if response.status_code != 200:
        raise Unavailable(f"The projects service answered {response.status_code}; try again", retry_after=5)
    body = response.json()
    return TaskAccess(
        task_id=int(body["task_id"]),
        key=str(body.get("key") or ""),
        title=str(body.get("title") or ""),
        project_id=int(body["project_id"]),
        board_id=body.get("board_id"),
        can_read=bool(body.get("can_read")),
        can_manage=bool(body.get("can_manage")),
    )
