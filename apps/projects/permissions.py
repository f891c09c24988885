"""Who may do what in a project.

A caller's token carries tenant-wide permission codes; their role in the project caps
them. Tenant owners and admins need no project membership. What a caller may do in a
project is the set of actions below that both allow. An archived project or board is
read-only: only READ is left, with ARCHIVED (and RESTORE, for those who could edit it).
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from django.db.models import OuterRef, Subquery

from apps.common.exceptions import Conflict, Forbidden, NotFound
from apps.projects.models import Board, Project, ProjectMember, ProjectRole


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
# In the actions of an archived project or board: it is read-only (ARCHIVED), and those who may
# edit it may restore it (RESTORE).
ARCHIVED = "archived"
RESTORE = "restore"
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
    # Who may create projects may run the membership of those they manage (their creator is
    # their first manager; identity's manager role holds create_project, not manage_members).
    "manage_members": frozenset({"manage_members", "create_project"}),
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


def may_create_project(caller: Caller) -> bool:
    """Tenant owners and admins, and whoever holds identity's create_project (managers by default)."""
    return is_tenant_admin(caller) or "create_project" in caller.permissions


def token_actions(caller: Caller) -> frozenset[str]:
    codes = set(caller.permissions)
    return frozenset(action for action, granted_by in ACTION_GRANTED_BY.items() if codes & granted_by)


def actions_for_role(caller: Caller, role: str | None, *, archived: bool = False) -> frozenset[str]:
    if is_tenant_admin(caller):
        actions = token_actions(caller) | {READ}
    elif role is None:
        return frozenset()
    else:
        actions = (token_actions(caller) | {READ}) & ROLE_ACTIONS[role]
    if archived:
        return frozenset({READ, ARCHIVED, RESTORE}) if "edit_columns" in actions else frozenset({READ, ARCHIVED})
    return actions


def project_actions(*, caller: Caller, project_id: int, board_id: int | None = None) -> frozenset[str]:
    """What the caller may do in the project (on its board `board_id`, which may be archived). One query."""
    project = Project.objects.filter(pk=project_id).annotate(
        role=Subquery(
            ProjectMember.objects.filter(project_id=OuterRef("pk"), user_id=caller.user_id).values("role")[:1]
        )
    )
    fields = ["role", "archived_at"]
    if board_id is not None:
        project = project.annotate(
            board_archived_at=Subquery(
                Board.objects.filter(pk=board_id, project_id=OuterRef("pk")).values("archived_at")[:1]
            )
        )
        fields.append("board_archived_at")
    row = project.values(*fields).first()
    if row is None:
        return frozenset()
    archived = row["archived_at"] is not None or row.get("board_archived_at") is not None
    return actions_for_role(caller, row["role"], archived=archived)


def editable_actions(*, caller: Caller, project_id: int) -> frozenset[str]:
    """The caller's actions in the project as if nothing were archived: for archiving and restoring."""
    project = Project.objects.filter(pk=project_id).annotate(
        role=Subquery(
            ProjectMember.objects.filter(project_id=OuterRef("pk"), user_id=caller.user_id).values("role")[:1]
        )
    )
    row = project.values("role").first()
    return frozenset() if row is None else actions_for_role(caller, row["role"])


def may_moderate(actions: frozenset[str]) -> bool:
    """Whether the caller may remove other people's comments and work logs (project managers, admins)."""
    return "manage_members" in actions


def require(actions: frozenset[str], action: str, *, what: str = "project") -> None:
    """Raise unless `action` is allowed. A caller who may not even read gets a 404, not a 403,
    so that ids of other people's projects reveal nothing."""
    if READ not in actions:
        raise NotFound(f"No such {what}")
    if action not in actions and ARCHIVED in actions:
        raise Conflict(f"This {what} is archived: restore it to change it", code="archived")
    if action not in actions:
        raise Forbidden(f"You may not {action.replace('_', ' ')} here", code="permission_denied")
