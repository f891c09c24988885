"""The people directory: identity's user events name the board's people (apps/projects/handlers.py)."""

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from apps.events.catalog import Envelope
from apps.projects import handlers, selectors
from apps.projects.models import Person, ProjectMember
from apps.projects.people import PALETTE, initials_for, palette_for
from apps.projects.services import comments as comment_services
from apps.projects.services import tasks as task_services
from tests.projects.conftest import MEMBER_PERMISSIONS
from tests.projects.test_api import ApiClient


def _restoring_schema(handler):
    """The handler enters the event's tenant and leaves to the public schema, as in the consumer;
    the test goes on in the schema it was in."""

    def run(envelope: Envelope) -> None:
        schema = connection.schema_name
        try:
            handler(envelope)
        finally:
            connection.set_schema(schema)

    return run


on_user_permission_changed = _restoring_schema(handlers.on_user_permission_changed)
on_user_updated = _restoring_schema(handlers.on_user_updated)
TenantNotReady = handlers.TenantNotReady


def event(event_type: str, data: dict, *, tenant_id: str | None, actor_id: str | None = None) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type=event_type,
        version=1,
        occurred_at=datetime.now(UTC),
        tenant_id=tenant_id,
        actor_id=actor_id,
        trace_id=None,
        data=data,
    )


def joined(
    tenant, user_id: str, name: str, email: str, roles: list[str] | None = None, actor_id: str | None = None, **extra
) -> Envelope:
    data = {
        "user_id": user_id,
        "tenant_id": tenant.tenant_id,
        "roles": ["member"] if roles is None else roles,
        "permissions": [],
        "full_name": name,
        "email": email,
        **extra,
    }
    return event("UserPermissionChanged", data, tenant_id=tenant.tenant_id, actor_id=actor_id)


@pytest.mark.parametrize(
    ("name", "email", "initials"),
    [
        ("Demo Owner", "owner@demo.test", "DO"),
        ("Ana", "ana@x.test", "AN"),
        ("  maría  josé  garcía ", "m@x.test", "MG"),
        ("", "bo.stone@x.test", "BO"),
        ("", "", "?"),
        ("(Ops) Team", "", "TE"),
    ],
)
def test_initials(name: str, email: str, initials: str) -> None:
    assert initials_for(name=name, email=email) == initials


def test_a_colour_is_stable_per_person_whatever_their_name() -> None:
    assert palette_for("42") == palette_for("42")
    assert {palette_for(str(n)) for n in range(200)} == set(range(len(PALETTE)))


def test_joining_the_organization_names_the_person_on_the_board(tenant_a, board, manager, member, columns) -> None:
    on_user_permission_changed(joined(tenant_a, manager.user_id, "Demo Owner", "owner@demo.test", ["owner"]))
    on_user_permission_changed(joined(tenant_a, member.user_id, "Ana Lima", "ana@demo.test"))
    task_services.task_create(
        caller=manager, board_id=board.id, column_id=columns[0].id, title="t", assignees=[member.user_id, "ghost"]
    )

    shown = selectors.board_get(caller=member, board_id=board.id)
    people = {person["id"]: person for person in shown["people"]}
    assert people[manager.user_id]["name"] == "Demo Owner" and people[manager.user_id]["initials"] == "DO"
    assert people[member.user_id] == {
        "id": member.user_id,
        "name": "Ana Lima",
        "initials": "AL",
        "colour": PALETTE[palette_for(member.user_id)],
        "palette": palette_for(member.user_id),
    }
    # Someone assigned whom the directory does not know yet: a name, never the raw id.
    assert people["ghost"]["name"] == "Unknown user" and people["ghost"]["initials"] == "?"
    assert [person["name"] for person in shown["people"]] == sorted(person["name"] for person in shown["people"])
    members = {m["user_id"]: m for m in shown["members"]}
    assert members[member.user_id]["name"] == "Ana Lima" and members[member.user_id]["initials"] == "AL"
    assert "email" not in people[member.user_id]


def test_the_board_json_names_people_as_board_get_does(tenant_a, board, manager, member, columns) -> None:
    import json

    on_user_permission_changed(joined(tenant_a, member.user_id, "Ana Lima", "ana@demo.test"))
    on_user_permission_changed(joined(tenant_a, manager.user_id, "", "boss@demo.test"))
    task_services.task_create(
        caller=manager, board_id=board.id, column_id=columns[0].id, title="t", assignees=["ghost", member.user_id]
    )
    from_sql = json.loads(selectors.board_json(caller=member, board_id=board.id))
    from_orm = selectors.board_get(caller=member, board_id=board.id)
    assert from_sql["people"] == from_orm["people"]
    assert from_sql["members"] == from_orm["members"]
    assert {p["name"] for p in from_sql["people"]} >= {"Ana Lima", "boss", "Unknown user"}


def test_a_task_names_everyone_it_mentions(tenant_a, board, manager, member, columns) -> None:
    on_user_permission_changed(joined(tenant_a, manager.user_id, "Demo Owner", "owner@demo.test"))
    on_user_permission_changed(joined(tenant_a, member.user_id, "Ana Lima", "ana@demo.test"))
    task = task_services.task_create(caller=manager, board_id=board.id, column_id=columns[0].id, title="t")
    comment_services.comment_add(caller=member, task_id=task.id, body="hello")
    shown = selectors.task_get(caller=member, task_id=task.id)
    assert {person["id"]: person["name"] for person in shown["people"]} == {
        manager.user_id: "Demo Owner",
        member.user_id: "Ana Lima",
    }


def test_a_profile_change_renames_and_leaving_keeps_the_name(tenant_a, manager) -> None:
    on_user_permission_changed(joined(tenant_a, "u7", "Ana Lima", "ana@demo.test"))
    on_user_updated(
        event(
            "UserUpdated",
            {"user_id": "u7", "full_name": "Ana Souza", "email": "ana@demo.test", "changed": ["full_name"]},
            tenant_id=None,
        )
    )
    assert Person.objects.get(user_id="u7").name == "Ana Souza"
    assert Person.objects.get(user_id="u7").initials == "AS"
    # An event without a name (an older identity) keeps the name the directory has.
    on_user_permission_changed(
        event(
            "UserPermissionChanged",
            {"user_id": "u7", "tenant_id": tenant_a.tenant_id, "roles": [], "permissions": []},
            tenant_id=tenant_a.tenant_id,
        )
    )
    person = Person.objects.get(user_id="u7")
    assert person.name == "Ana Souza" and not person.is_member
    assert selectors.people_search(caller=manager, text="ana") == []
    assert selectors.people_get(user_ids=["u7"])["u7"]["name"] == "Ana Souza"


def test_a_profile_change_of_a_stranger_adds_no_one(tenant_a) -> None:
    on_user_updated(
        event("UserUpdated", {"user_id": "nobody", "full_name": "X", "changed": ["full_name"]}, tenant_id=None)
    )
    assert not Person.objects.filter(user_id="nobody").exists()


def test_an_accepted_invitation_with_a_project_joins_it(tenant_a, project, manager) -> None:
    # The project's manager invited them (the event's actor).
    on_user_permission_changed(
        joined(
            tenant_a,
            "u9",
            "Bo Stone",
            "bo@x.test",
            actor_id=manager.user_id,
            project_id=project.id,
            project_role="viewer",
        )
    )
    assert ProjectMember.objects.get(project=project, user_id="u9").role == "viewer"
    # Delivered again: still one membership.
    on_user_permission_changed(
        joined(
            tenant_a,
            "u9",
            "Bo Stone",
            "bo@x.test",
            actor_id=manager.user_id,
            project_id=project.id,
            project_role="viewer",
        )
    )
    assert ProjectMember.objects.filter(project=project, user_id="u9").count() == 1
    # A project that is gone: the person is in the directory, nothing else happens.
    on_user_permission_changed(joined(tenant_a, "u10", "Cy", "cy@x.test", actor_id=manager.user_id, project_id=987654))
    assert Person.objects.filter(user_id="u10").exists()


def test_an_invitation_joins_a_project_only_if_its_inviter_may_add_members(tenant_a, project, member) -> None:
    # A member of the project (not a manager, not an organization admin) invited them.
    on_user_permission_changed(joined(tenant_a, member.user_id, "Ana", "ana@x.test", ["manager"]))
    on_user_permission_changed(
        joined(tenant_a, "u11", "Di", "di@x.test", actor_id=member.user_id, project_id=project.id)
    )
    assert not ProjectMember.objects.filter(project=project, user_id="u11").exists()
    # No inviter at all (an owner's own signup): nothing to join.
    on_user_permission_changed(joined(tenant_a, "u12", "Ed", "ed@x.test", project_id=project.id))
    assert not ProjectMember.objects.filter(project=project, user_id="u12").exists()
    # An organization admin who is not in the project may.
    on_user_permission_changed(joined(tenant_a, "admin-1", "Al", "al@x.test", ["admin"]))
    on_user_permission_changed(joined(tenant_a, "u13", "Fa", "fa@x.test", actor_id="admin-1", project_id=project.id))
    assert ProjectMember.objects.get(project=project, user_id="u13").role == "member"


def test_an_event_for_a_tenant_not_provisioned_yet_is_retried(tenant_a) -> None:
    with pytest.raises(TenantNotReady):
        on_user_permission_changed(
            event(
                "UserPermissionChanged",
                {"user_id": "u1", "tenant_id": str(uuid.uuid4()), "roles": ["member"], "permissions": []},
                tenant_id=None,
            )
        )


def test_people_search_finds_members_by_name_or_email_in_this_tenant_only(tenants, tenant_a) -> None:
    on_user_permission_changed(joined(tenant_a, "u1", "Ana Lima", "ana@demo.test"))
    on_user_permission_changed(joined(tenant_a, "u2", "Bo Stone", "bo@stone.test"))
    other = tenants["proj_b"]
    on_user_permission_changed(joined(other, "u3", "Ana Other", "ana@other.test"))

    client = ApiClient(tenant_a, "u1", MEMBER_PERMISSIONS)
    found = client.get("/api/people?q=ana").json()["items"]
    assert [(p["name"], p["email"]) for p in found] == [("Ana Lima", "ana@demo.test")]
    assert [p["name"] for p in client.get("/api/people?q=STONE.test").json()["items"]] == ["Bo Stone"]
    assert len(client.get("/api/people").json()["items"]) == 2
    assert client.get("/api/people?limit=0").status_code == 422
    assert client.get("/api/people?q=" + "x" * 201).status_code == 422
    with schema_context("proj_b"):
        assert Person.objects.filter(user_id="u3").exists()
