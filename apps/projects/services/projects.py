"""Projects and their members: create (with a first board from a template), rename, archive
and restore; members added, given a project role and removed (a project keeps a manager)."""

from django.db import transaction
from django.utils import timezone

from apps.common.exceptions import Conflict, Forbidden, NotFound
from apps.projects import live
from apps.projects.db import tenant_db
from apps.projects.errors import InvalidInput
from apps.projects.models import Board, Project, ProjectMember, ProjectRole
from apps.projects.permissions import Caller, editable_actions, may_create_project, project_actions, require
from apps.projects.services.boards import DEFAULT_TEMPLATE, default_columns_create, template_columns
from apps.projects.services.shared import check_version, full_clean, locked_project, publish


def project_create(
    *,
    caller: Caller,
    key: str,
    name: str,
    description: str = "",
    board_name: str = "Board",
    template: str = DEFAULT_TEMPLATE,
) -> Project:
    """A project, its first board with the template's columns, and the caller as its manager."""
    if not may_create_project(caller):
        raise Forbidden("You may not create projects", code="permission_denied")
    columns = template_columns(template)
    project = Project(key=key.strip().upper(), name=name.strip(), description=description, created_by=caller.user_id)
    full_clean(project, exclude=["task_counter", "version"])
    with transaction.atomic(using=tenant_db()):
        # Archived projects keep their key (their tasks' keys carry it).
        if Project.objects.filter(key=project.key).exists():
            raise Conflict(f"A project with key {project.key} exists", code="duplicate_key", field="key")
        project.save()
        ProjectMember.objects.create(
            project=project, user_id=caller.user_id, role=ProjectRole.MANAGER, display_name=_caller_name(caller)
        )
        board = Board.objects.create(project=project, name=board_name.strip() or "Board")
        default_columns_create(board=board, columns=columns)
        publish(
            "ProjectCreated",
            {"project_id": str(project.id), "key": project.key, "name": project.name, "created_by": caller.user_id},
            caller=caller,
            aggregate_id=project.id,
        )
        publish(
            "ProjectUserAdded",
            {"project_id": str(project.id), "user_id": caller.user_id, "role": ProjectRole.MANAGER},
            caller=caller,
            aggregate_id=project.id,
        )
    return project


def _caller_name(caller: Caller) -> str:
    return str(getattr(caller, "name", "") or getattr(caller, "email", "") or "")[:200]


def project_update(
    *,
    caller: Caller,
    project_id: int,
    expected_version: int | None = None,
    name: str | None = None,
    description: str | None = None,
    archived: bool | None = None,
) -> Project:
    """Rename, describe, archive or restore a project. An archived project is read-only: only
    restoring it (archived=False, with other changes or not) is accepted."""
    with transaction.atomic(using=tenant_db()):
        project = locked_project(project_id)
        restoring = archived is False and project.archived_at is not None
        actions = (editable_actions if restoring else project_actions)(caller=caller, project_id=project.id)
        require(actions, "edit_columns")
        check_version(project.version, expected_version, "project")
        changed: dict[str, object] = {}
        if name is not None and name.strip() != project.name:
            changed["name"] = project.name = name.strip()
        if description is not None and description != project.description:
            changed["description"] = project.description = description
        if archived is not None and archived != (project.archived_at is not None):
            changed["archived"] = project.archived_at = timezone.now() if archived else None
        if not changed:
            return project
        full_clean(project)
        project.version += 1
        project.save()
        for board_id in project.boards.values_list("id", flat=True):
            live.board_broadcast(
                board_id=board_id,
                event="project.updated",
                data={"id": project.id, "name": project.name, "archived": project.archived_at is not None},
            )
        publish(
            "ProjectUpdated",
            {"project_id": str(project.id), "key": project.key, "changes": sorted(changed)},
            caller=caller,
            aggregate_id=project.id,
        )
    return project


def project_member_set(
    *, caller: Caller, project_id: int, user_id: str, role: str, display_name: str = "", existing: bool = False
) -> ProjectMember:
    """Add a member, or change an existing member's role (only that, with `existing`)."""
    if role not in ProjectRole.values:
        raise InvalidInput(f"role must be one of {', '.join(ProjectRole.values)}")
    user_id = user_id.strip()
    if not user_id or len(user_id) > 64:
        raise InvalidInput("user_id must be 1-64 characters")
    with transaction.atomic(using=tenant_db()):
        project = locked_project(project_id)
        require(project_actions(caller=caller, project_id=project.id), "manage_members")
        if existing and not ProjectMember.objects.filter(project=project, user_id=user_id).exists():
            raise NotFound("No such member")
        member, created = ProjectMember.objects.get_or_create(
            project=project, user_id=user_id, defaults={"role": role, "display_name": display_name[:200]}
        )
        if not created:
            if member.role == ProjectRole.MANAGER and role != ProjectRole.MANAGER:
                _ensure_another_manager(project.id, user_id)
            member.role = role
            if display_name:
                member.display_name = display_name[:200]
            member.save(update_fields=["role", "display_name"])
        publish(
            "ProjectUserAdded",
            {"project_id": str(project.id), "user_id": user_id, "role": role},
            caller=caller,
            aggregate_id=project.id,
        )
    return member


def _ensure_another_manager(project_id: int, leaving_user_id: str) -> None:
    others = ProjectMember.objects.filter(project_id=project_id, role=ProjectRole.MANAGER).exclude(
        user_id=leaving_user_id
    )
    if not others.exists():
        raise Conflict("A project keeps at least one manager", code="last_manager")


def project_member_remove(*, caller: Caller, project_id: int, user_id: str) -> None:
    with transaction.atomic(using=tenant_db()):
        project = locked_project(project_id)
        require(project_actions(caller=caller, project_id=project.id), "manage_members")
        member = ProjectMember.objects.filter(project=project, user_id=user_id).first()
        if member is None:
            raise NotFound("No such member")
        if member.role == ProjectRole.MANAGER:
            _ensure_another_manager(project.id, user_id)
        member.delete()
