"""Item 13 of issue 8: Django's password validators everywhere a password is chosen.

Length (10), common passwords, similarity to the address or name, only digits, only spaces: a
400 `validation_error` whose `fields` lists every reason, and nothing changed.
"""

import uuid

import pytest
from django.test import Client

from apps.identity import services
from apps.identity.models import Organization, User
from tests.identity.conftest import PASSWORD, assert_error, bearer, obtain, tenant_headers

pytestmark = pytest.mark.django_db

WEAK = {
    "short": ("short-1", "too short"),
    "common": ("password123", "too common"),
    "like the address": ("newperson@acme", "too similar"),
    "only digits": ("8492017365401", "entirely numeric"),
    "only spaces": (" " * 16, "only spaces"),
}


@pytest.fixture(params=list(WEAK), ids=list(WEAK))
def weak(request) -> tuple[str, str]:
    return WEAK[request.param]


def _reasons(response, field: str = "password") -> str:
    error = assert_error(response, 400, "validation_error")
    assert isinstance(error["fields"][field], list) and error["fields"][field]
    return " ".join(error["fields"][field]).lower()


def test_signup_refuses_a_weak_owner_password(client: Client, weak) -> None:
    password, reason = weak
    response = client.post(
        "/internal/tenant-owners",
        {"tenant_id": str(uuid.uuid4()), "tenant_slug": "weak", "email": "newperson@acme.test", "password": password},
        content_type="application/json",
        HTTP_X_INTERNAL_TOKEN="dev-internal-token",
    )

    assert reason in _reasons(response)
    assert not User.objects.exists() and not Organization.objects.exists()


def test_invitation_acceptance_refuses_a_weak_password(client: Client, org, owner, weak) -> None:
    password, reason = weak
    _, raw_token = services.invitation_create(
        organization=org, email="newperson@acme.test", role_name="member", actor=owner
    )

    response = client.post(
        "/api/users/invitations/accept", {"token": raw_token, "password": password}, content_type="application/json"
    )

    assert reason in _reasons(response)
    assert not User.objects.filter(email="newperson@acme.test").exists()


def test_password_change_refuses_a_weak_new_password(client: Client, org, make_member, weak) -> None:
    password, reason = weak
    make_member(org, "newperson@acme.test")
    access = obtain(client, org, "newperson@acme.test").json()["access"]

    response = client.post(
        "/api/auth/password",
        {"current_password": PASSWORD, "new_password": password},
        content_type="application/json",
        **bearer(org, access),
    )

    assert reason in _reasons(response, "new_password")
    assert obtain(client, org, "newperson@acme.test", PASSWORD).status_code == 200


def test_every_reason_is_listed(client: Client, org, owner) -> None:
    _, raw_token = services.invitation_create(organization=org, email="x@acme.test", role_name="member", actor=owner)

    response = client.post(
        "/api/users/invitations/accept", {"token": raw_token, "password": "123456"}, content_type="application/json"
    )

    reasons = _reasons(response)
    assert "too short" in reasons and "too common" in reasons and "entirely numeric" in reasons


def test_the_invitation_page_shows_the_reasons(org, owner) -> None:
    _, raw_token = services.invitation_create(organization=org, email="x@acme.test", role_name="member", actor=owner)
    browser = Client()

    response = browser.post(f"/login/invitation/{raw_token}", {"password": " " * 12}, **tenant_headers(org))

    assert response.status_code == 400
    assert b"only spaces" in response.content
