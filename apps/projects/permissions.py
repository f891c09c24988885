"""Who may do what in a project.

A caller's token carries tenant-wide permission codes; their role in the project caps
them. Tenant owners and admins need no project membership. What a caller may do in a
project is the set of actions below that both allow.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from apps.common.exceptions import Forbidden, NotFound
from apps.projects.models import ProjectMember, ProjectRole


class Caller(Protocol):
    """What services need from a verified token (apps.common.auth.Claims fits)."""

    user_id: str
    tenant_id: str
    roles: Collection[str]
    permissions: Collection[str]


@dataclass(frozen=True)
class CallerClaims:
    """A Caller built by hand, for internal callers (seeding, benchmarks)."""

    user_id: str
    tenant_id: str
    roles: tuple[str, ...] = ()
    permissions: frozenset[str] = field(default_factory=frozenset)


READ = "read"
# action -> token permission codes that grant it (identity's codes and this names).
ACTION_GRANTED_BY: dict[str, frozenset[str]] = {
    "create_task": frozenset({"create_task", "edit_task"}),
    "edit_task": frozenset({"edit_task", "create_task"}),
    "assign_task": frozenset({"assign_task", "edit_task", "create_task"}),
    "delete_task": frozenset({"delete_task"}),
    "move_task": frozenset({"move_task"}),
    "comment": frozenset({"comment"}),
    "log_work": frozenset({"log_work"}),
    "edit_columns": frozenset({"edit_columns"}),
    "manage_members": frozenset({"manage_members"}),
    "override_wip": frozenset({"override_wip", "edit_columns"}),
}
_VIEWER = frozenset({READ, "comment"})
_MEMBER = _VIEWER | {"create_task", "edit_task", "assign_task", "move_task", "log_work"}
_MANAGER = _MEMBER | {"delete_task", "edit_columns", "manage_members", "override_wip"}
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    ProjectRole.VIEWER: _VIEWER,
    ProjectRole.MEMBER: _MEMBER,
    ProjectRole.MANAGER: _MANAGER,
}
TENANT_ADMIN_ROLES = frozenset({"owner", "admin"})


def is_tenant_admin(caller: Caller) -> bool:
    return bool(TENANT_ADMIN_ROLES.intersection(caller.roles))


def token_actions(caller: Caller) -> frozenset[str]:
    codes = set(caller.permissions)
    return frozenset(action for action, granted_by in ACTION_GRANTED_BY.items() if codes & granted_by)


def actions_for_role(caller: Caller, role: str | None) -> frozenset[str]:
    if is_tenant_admin(caller):
        return token_actions(caller) | {READ}
    if role is None:
        return frozenset()
    return (token_actions(caller) | {READ}) & ROLE_ACTIONS[role]


def project_actions(*, caller: Caller, project_id: int) -> frozenset[str]:
    role = (
        ProjectMember.objects.filter(project_id=project_id, user_id=caller.user_id)
        .values_list("role", flat=True)
        .first()
    )
    return actions_for_role(caller, role)


def may_moderate(actions: frozenset[str]) -> bool:
    """Whether the caller may remove other people's comments and work logs (project managers, admins)."""
    return "manage_members" in actions


def require(actions: frozenset[str], action: str, *, what: str = "project") -> None:
    """Raise unless `action` is allowed. A caller who may not even read gets a 404, not a 403,
    so that ids of other people's projects reveal nothing."""
    if READ not in actions:
        raise NotFound(f"No such {what}")
    if action not in actions:
        raise Forbidden(f"You may not {action.replace('_', ' ')} here", code="permission_denied")
