import uuid

import pytest
from django.test import Client

from apps.identity.models import Membership, Organization, Role, User
from tests.identity.conftest import assert_error

pytestmark = pytest.mark.django_db

TOKEN = {"HTTP_X_INTERNAL_TOKEN": "dev-internal-token"}


def _owner_request(client: Client, body: dict, **headers: str):
    return client.post("/internal/tenant-owners", body, content_type="application/json", **headers)


def _body(**overrides: object) -> dict:
    body = {
        "tenant_id": str(uuid.UUID(int=1)),
        "tenant_slug": "initech",
        "email": "boss@initech.test",
        "password": "demo-pass-123",
        "full_name": "Bill Lumbergh",
    }
    body.update(overrides)
    return body


def _nothing_created() -> bool:
    return not (User.objects.exists() or Organization.objects.exists() or Membership.objects.exists())


def test_creates_the_owner_with_the_tenants_roles(client: Client) -> None:
    response = _owner_request(client, _body(), **TOKEN)

    assert response.status_code == 201
    user = User.objects.get(pk=response.json()["user_id"])
    assert user.check_password("demo-pass-123")
    assert user.full_name == "Bill Lumbergh"
    membership = Membership.objects.get(user=user)
    assert membership.organization.slug == "initech"
    assert membership.role.name == "owner"
    assert set(Role.objects.filter(organization=membership.organization).values_list("name", flat=True)) == {
        "owner",
        "admin",
        "manager",
        "member",
        "viewer",
    }


def test_is_idempotent_for_the_same_tenant_and_email(client: Client) -> None:
    first = _owner_request(client, _body(), **TOKEN).json()
    second = _owner_request(client, _body(), **TOKEN)

    assert second.status_code == 201
    assert second.json() == first
    assert Membership.objects.count() == 1


def test_an_existing_user_owns_a_second_tenant_with_the_right_password(client: Client) -> None:
    first = _owner_request(client, _body(), **TOKEN).json()
    second = _owner_request(client, _body(tenant_id=str(uuid.UUID(int=2)), tenant_slug="initrode"), **TOKEN)

    assert second.json() == first
    assert Membership.objects.filter(user_id=first["user_id"]).count() == 2


def test_an_existing_email_with_another_password_is_a_conflict(client: Client) -> None:
    _owner_request(client, _body(), **TOKEN)

    response = _owner_request(
        client, _body(tenant_id=str(uuid.UUID(int=2)), tenant_slug="initrode", password="another-pass-456"), **TOKEN
    )

    assert_error(response, 409, "email_taken")
    assert not Organization.objects.filter(slug="initrode").exists()


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "1234567890123"}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"tenant_id": "not-a-uuid"}, "tenant_id"),
        ({"tenant_slug": "Not A Slug!"}, "tenant_slug"),
        ({"email": None}, "email"),
    ],
)
def test_bad_input_is_400_and_changes_nothing(client: Client, override: dict, field: str) -> None:
    response = _owner_request(client, _body(**override), **TOKEN)

    error = assert_error(response, 400, "validation_error")
    assert field in error["fields"]
    assert _nothing_created()


def test_without_the_internal_token_is_refused(client: Client) -> None:
    assert_error(_owner_request(client, _body()), 403, "invalid_internal_token")
    assert_error(_owner_request(client, _body(), HTTP_X_INTERNAL_TOKEN="guess"), 403, "invalid_internal_token")
    assert _nothing_created()
