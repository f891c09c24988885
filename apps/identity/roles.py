"""The fixed set of role names and permission codes, and what each role starts with.

Each organization gets its own copy of the five roles; their permissions are editable per
organization (except the owner's, which always holds every permission so an organization
can never lock itself out).
"""

from django.db import models


class RoleName(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MANAGER = "manager", "Manager"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


PERMISSIONS: dict[str, str] = {
    "create_project": "Create projects",
    "manage_members": "Invite, remove and change the role of members",
    "manage_roles": "Edit the permissions of roles",
    "assign_task": "Assign tasks to people",
    "move_task": "Move tasks between columns",
    "edit_task": "Create and edit tasks",
    "delete_task": "Delete tasks",
    "comment": "Comment on tasks",
    "log_work": "Log work on tasks",
    "share_task": "Share tasks through short links",
    "view_analytics": "See analytics dashboards",
    "edit_columns": "Add, rename and reorder board columns",
}

_EVERYTHING = list(PERMISSIONS)
_CONTRIBUTOR = ["assign_task", "move_task", "edit_task", "comment", "log_work", "share_task"]

DEFAULT_ROLE_PERMISSIONS: dict[str, list[str]] = {
    RoleName.OWNER: _EVERYTHING,
    RoleName.ADMIN: _EVERYTHING,
    RoleName.MANAGER: [*_CONTRIBUTOR, "create_project", "delete_task", "view_analytics", "edit_columns"],
    RoleName.MEMBER: _CONTRIBUTOR,
    RoleName.VIEWER: ["comment"],
}


class ProjectRole(models.TextChoices):
    """A role inside one project (the projects service's), offered with an invitation."""

    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    MANAGER = "manager", "Manager"


# Roles whose holders may use the organization's Django admin.
ADMIN_ROLES = frozenset({RoleName.OWNER, RoleName.ADMIN})
