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
