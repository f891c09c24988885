"""Who may see and change a link: one answer for the reads and the writes."""

from dataclasses import dataclass

from apps.shortener import projects_client
from apps.shortener.models import Link


@dataclass(frozen=True)
class Caller:
    user_id: str
    tenant_id: str
    tenant_slug: str
    roles: tuple[str, ...]
    permissions: frozenset[str]

    @property
    def is_org_admin(self) -> bool:
        return bool({"owner", "admin"} & set(self.roles))


@dataclass(frozen=True)
class LinkRights:
    can_see: bool
    can_change: bool


def link_rights(caller: Caller, link: Link) -> LinkRights:
    """The creator, owners and admins see and change a link; for a task link, whoever can read the
    task sees it and the project's managers change it (asked of the projects service)."""
    if link.tenant_id != caller.tenant_id:
        return LinkRights(False, False)
    if link.created_by == caller.user_id or caller.is_org_admin:
        return LinkRights(True, True)
    if link.task_id is None:
        return LinkRights(False, False)
    access = projects_client.task_access(tenant_id=caller.tenant_id, task_id=link.task_id, user_id=caller.user_id)
    return LinkRights(access.can_read or access.can_manage, access.can_manage)
