"""Identity's events go through the real outbox (apps.events.outbox.publish), in the caller's transaction."""

import pytest
from django.test import Client

from apps.events import outbox
from apps.identity import services
from tests.identity.conftest import bearer, obtain

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, dict, str | None]]:
    """Records each event, then hands it to the real publish (which validates it and writes the outbox row)."""
    seen: list[tuple[str, dict, str | None]] = []
    real_publish = outbox.publish

    def recording_publish(event_type: str, data: dict, **kwargs: object):
        envelope = real_publish(event_type, data, **kwargs)
        seen.append((event_type, data, kwargs.get("tenant_id")))
        return envelope

    monkeypatch.setattr(outbox, "publish", recording_publish)
    return seen


def test_user_created(published, org) -> None:
    user = services.user_create(email="new@acme.test", password="a-fine-new-password", full_name="New")

    assert published == [("UserCreated", {"user_id": str(user.pk), "email": "new@acme.test", "full_name": "New"}, None)]


def test_user_updated(published, owner) -> None:
    services.user_update(user=owner.user, actor_id=None, full_name="Renamed", is_active=True)

    [data] = [data for event_type, data, _ in published if event_type == "UserUpdated"]
    assert data["full_name"] == "Renamed" and data["changed"] == ["full_name"]


def test_membership_and_role_changes(published, org, owner, make_member) -> None:
    dev = make_member(org, "dev@acme.test")
    services.membership_role_change(membership=dev, role_name="viewer", actor=owner)
    services.role_permissions_set(
        role=dev.organization.roles.get(name="viewer"), permissions=[], actor_id=owner.user_id
    )
    services.membership_remove(membership=dev, actor=owner)

    changes = [
        (data["reason"], data["roles"], data["permissions"])
        for kind, data, _ in published
        if kind == "UserPermissionChanged"
    ]
    assert changes[-4:] == [
        (
            "membership_added",
            ["member"],
            ["assign_task", "comment", "edit_task", "log_work", "move_task", "share_task"],
        ),
        ("role_changed", ["viewer"], ["comment"]),
        ("role_permissions_changed", ["viewer"], []),
        ("membership_removed", [], []),
    ]
    assert {tenant for _, _, tenant in published if tenant} == {str(org.id)}


def test_a_refused_change_publishes_nothing(published, org, owner, client: Client) -> None:
    access = obtain(client, org, "owner@acme.test").json()["access"]
    published.clear()

    response = client.patch(
        f"/api/users/{owner.user_id}", {"role": "member"}, content_type="application/json", **bearer(org, access)
    )

    assert response.status_code == 409
    assert published == []


def _permission_events(published: list) -> list[dict]:
    return [data for kind, data, _ in published if kind == "UserPermissionChanged"]


def test_permission_changes_name_the_person(published, org, owner, make_member) -> None:
    dev = make_member(org, "dev@acme.test")
    services.user_update(user=dev.user, actor_id=None, full_name="Dev Eloper")
    services.membership_role_change(membership=dev, role_name="viewer", actor=owner)
    services.membership_remove(membership=dev, actor=owner)

    events = _permission_events(published)

    assert [(e["reason"], e["email"]) for e in events[-3:]] == [
        ("membership_added", "dev@acme.test"),
        ("role_changed", "dev@acme.test"),
        ("membership_removed", "dev@acme.test"),
    ]
    assert [e["full_name"] for e in events[-2:]] == ["Dev Eloper", "Dev Eloper"]  # a removed member is named too
    assert all("project_id" not in e for e in events)


def test_user_updated_carries_the_name_and_address(published, owner) -> None:
    services.user_update(user=owner.user, actor_id=None, is_active=False)

    [data] = [data for kind, data, _ in published if kind == "UserUpdated"]
    assert (data["email"], data["full_name"], data["changed"]) == ("owner@acme.test", "", ["is_active"])


def test_accepting_an_invitation_with_a_project_publishes_the_project(published, client: Client, org, owner) -> None:
    _, token = services.invitation_create(
        organization=org, email="new@acme.test", role_name="viewer", actor=owner, project_id=12, project_role="manager"
    )
    published.clear()

    response = client.post(
        "/api/users/invitations/accept",
        {"token": token, "password": "a-fine-new-password", "full_name": "Nia New"},
        content_type="application/json",
    )

    assert response.status_code == 201
    [event] = _permission_events(published)
    assert event["user_id"] == response.json()["user_id"]
    assert (event["reason"], event["roles"], event["permissions"]) == ("membership_added", ["viewer"], ["comment"])
    assert (event["full_name"], event["email"]) == ("Nia New", "new@acme.test")
    assert (event["project_id"], event["project_role"]) == (12, "manager")
    assert type(event["project_id"]) is int


def test_an_invitation_without_a_project_publishes_none(published, client: Client, org, owner) -> None:
    _, token = services.invitation_create(organization=org, email="new@acme.test", role_name="member", actor=owner)

    services.invitation_accept(raw_token=token, password="a-fine-new-password")

    [event] = [e for e in _permission_events(published) if e["email"] == "new@acme.test"]
    assert "project_id" not in event and "project_role" not in event


def test_a_member_added_meanwhile_still_gets_the_invitations_project(published, org, owner, make_member) -> None:
    _, token = services.invitation_create(
        organization=org, email="dev@acme.test", role_name="member", actor=owner, project_id=3
    )
    make_member(org, "dev@acme.test", role="viewer")  # e.g. platform staff in the admin, before the link was used
    published.clear()

    services.invitation_accept(raw_token=token, password="correct-horse-battery-9")

    [event] = _permission_events(published)
    assert (event["reason"], event["roles"], event["project_id"], event["project_role"]) == (
        "invitation_accepted",
        ["viewer"],
        3,
        "member",
    )
