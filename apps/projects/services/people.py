"""The organization's people directory, written from identity's user events (handlers.py).

Identity owns accounts; this service keeps only what the board shows (a name, the email a
picker matches, whether they are still a member), per tenant, so names never need a call to
another service on the request path.
"""

from apps.projects.models import Person, Project, ProjectMember, ProjectRole
from apps.projects.people import PALETTE, initials_for, palette_for
from apps.projects.permissions import CallerClaims
from apps.projects.services.shared import publish


def person_upsert(
    *,
    user_id: str,
    name: str | None = None,
    email: str | None = None,
    is_member: bool | None = None,
    roles: list[str] | None = None,
) -> Person:
    """Creates or updates one person; a field given as None keeps what the directory has."""
    person = Person.objects.select_for_update().filter(user_id=user_id).first()
    if person is None:
        person = Person(user_id=user_id, palette=palette_for(user_id))
    if name is not None:
        person.name = name.strip()[:200]
    if email is not None:
        person.email = email.strip()[:254]
    if is_member is not None:
        person.is_member = is_member
    if roles is not None:
        person.roles = [str(role)[:40] for role in roles]
    person.initials = initials_for(name=person.name, email=person.email)
    person.colour = PALETTE[person.palette]
    person.save()
    return person


def person_rename(*, user_id: str, name: str | None, email: str | None) -> int:
    """A profile change of someone this tenant knows; 0 when it knows no such person."""
    if not Person.objects.filter(user_id=user_id).exists():
        return 0
    person_upsert(user_id=user_id, name=name, email=email)
    return 1


# Who may put someone in a project by inviting them: the organization's admins, or a manager of it.
_INVITING_ROLES = frozenset({"owner", "admin"})


def _may_invite_into(*, actor_id: str, project: Project) -> bool:
    actor = Person.objects.filter(user_id=actor_id).values_list("roles", flat=True).first() or []
    if _INVITING_ROLES.intersection(actor):
        return True
    return ProjectMember.objects.filter(project=project, user_id=actor_id, role=ProjectRole.MANAGER).exists()


def person_project_join(
    *, tenant_id: str, user_id: str, project_id: int, role: str, invited_by: str
) -> ProjectMember | None:
    """An accepted invitation that named a project: the invitee joins it, if whoever invited them
    may add members to it (identity checked they may invite; only this service knows projects).
    None when the project is gone or the inviter may not."""
    if role not in ProjectRole.values:
        role = ProjectRole.MEMBER
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not _may_invite_into(actor_id=invited_by, project=project):
        return None
    member, created = ProjectMember.objects.get_or_create(project=project, user_id=user_id, defaults={"role": role})
    if created:
        caller = CallerClaims(user_id=invited_by, tenant_id=tenant_id)
        publish(
            "ProjectUserAdded",
            {"project_id": str(project.id), "user_id": user_id, "role": role},
            caller=caller,
            aggregate_id=project.id,
        )
    return member
