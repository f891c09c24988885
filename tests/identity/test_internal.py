"""POST /internal/tenant-owners: the owner of a new tenant, called by tenancy at signup.

A new address gets an unverified owner account and a verification mail. An address that has an
account is never checked against a password: the organization is created, its ownership is
offered to the account by mail, and taken only by signing in as it.
"""

import time
import uuid

import pytest
from django.test import Client

from apps.identity.models import Invitation, Membership, Organization, RefreshToken, Role, User
from tests.identity.conftest import (
    assert_error,
    invitation_token,
    mails_to,
    obtain,
    verification_token,
)

pytestmark = pytest.mark.django_db

TOKEN = {"HTTP_X_INTERNAL_TOKEN": "dev-internal-token"}
PASSWORD = "demo-pass-123"


def _owner_request(client: Client, body: dict, **headers: str):
    return client.post("/internal/tenant-owners", body, content_type="application/json", **headers)


def _body(**overrides: object) -> dict:
    body = {
        "tenant_id": str(uuid.UUID(int=1)),
        "tenant_slug": "initech",
        "email": "boss@initech.test",
        "password": PASSWORD,
        "full_name": "Bill Lumbergh",
    }
    body.update(overrides)
    return body


def _second_tenant(**overrides: object) -> dict:
    return _body(tenant_id=str(uuid.UUID(int=2)), tenant_slug="initrode", **overrides)


def _nothing_created() -> bool:
    return not (User.objects.exists() or Organization.objects.exists() or Membership.objects.exists())


def test_creates_an_unverified_owner_with_the_tenants_roles_and_mails_a_link(
    client: Client, mailbox, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = _owner_request(client, _body(), **TOKEN)

    assert response.status_code == 201
    assert response.json()["owner"] == "member"
    user = User.objects.get(pk=response.json()["user_id"])
    assert user.check_password(PASSWORD)
    assert user.full_name == "Bill Lumbergh"
    assert user.email_verified_at is None
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
    [mail] = mails_to(mailbox, "boss@initech.test")
    assert mail.subject == "Verify your email address"
    assert verification_token(mailbox, "boss@initech.test")


def test_the_organization_is_named_as_signup_named_it_and_the_mail_says_so(
    client: Client, mailbox, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _owner_request(client, _body(tenant_name="Initech <Corp>"), **TOKEN)

    assert Organization.objects.get(slug="initech").name == "Initech <Corp>"
    [mail] = mails_to(mailbox, "boss@initech.test")
    assert "An account for Initech <Corp> was created" in mail.text


def test_without_a_name_the_organization_is_unnamed_as_before(client: Client) -> None:
    _owner_request(client, _body(), **TOKEN)

    assert Organization.objects.get(slug="initech").name == ""


def test_the_new_owner_can_use_the_new_organization_before_verifying(client: Client) -> None:
    _owner_request(client, _body(), **TOKEN)
    organization = Organization.objects.get(slug="initech")

    assert obtain(client, organization, "boss@initech.test", PASSWORD).status_code == 200


def test_a_trusted_seed_may_create_a_verified_owner(client: Client) -> None:
    response = _owner_request(client, _body(email_verified=True), **TOKEN)

    assert User.objects.get(pk=response.json()["user_id"]).email_verified_at is not None


def test_is_idempotent_for_the_same_tenant_and_email(client: Client) -> None:
    first = _owner_request(client, _body(), **TOKEN).json()
    second = _owner_request(client, _body(), **TOKEN)

    assert second.status_code == 201
    assert second.json() == first
    assert Membership.objects.count() == 1


@pytest.mark.parametrize("password", [PASSWORD, "another-pass-456"])
def test_an_existing_address_is_offered_the_ownership_whatever_the_password(
    client: Client, mailbox, django_capture_on_commit_callbacks, password: str
) -> None:
    first = _owner_request(client, _body(), **TOKEN).json()
    with django_capture_on_commit_callbacks(execute=True):
        second = _owner_request(client, _second_tenant(password=password), **TOKEN)

    assert second.status_code == 201
    assert second.json() == {"user_id": None, "owner": "invited"}
    user = User.objects.get(pk=first["user_id"])
    assert user.check_password(PASSWORD)  # the signer's password changed nothing
    initrode = Organization.objects.get(slug="initrode")
    assert not Membership.objects.filter(organization=initrode).exists()
    assert Invitation.objects.get(organization=initrode).role.name == "owner"
    [mail] = [m for m in mails_to(mailbox, user.email) if "tried" in m.subject]
    assert mail.subject == "Someone tried to create an organization with your address"
    assert "/login/invitation/" in mail.text
    assert "/login/verify/" in mail.text  # the account never verified: the mail offers that too


def test_the_existing_account_becomes_owner_only_by_signing_in_as_itself(
    client: Client, mailbox, make_org, django_capture_on_commit_callbacks
) -> None:
    _owner_request(client, _body(email_verified=True), **TOKEN)
    with django_capture_on_commit_callbacks(execute=True):
        _owner_request(client, _second_tenant(password="the-signers-guess-1"), **TOKEN)
    token = invitation_token(mailbox, "boss@initech.test")
    initrode = Organization.objects.get(slug="initrode")

    def accept(**body: str):
        return client.post("/api/users/invitations/accept", {"token": token, **body}, content_type="application/json")

    assert_error(accept(), 401, "sign_in_required")
    assert_error(accept(password="the-signers-guess-1"), 401, "invalid_credentials")
    assert not Membership.objects.filter(organization=initrode).exists()
    accepted = accept(password=PASSWORD)

    assert accepted.status_code == 201
    assert accepted.json()["role"] == "owner"
    assert obtain(client, initrode, "boss@initech.test", PASSWORD).status_code == 200


def test_new_and_existing_addresses_take_about_as_long(client: Client, production_password_hashers) -> None:
    """Not a speed target: a timing oracle check. Both paths hash one password (Argon2 dominates)."""
    _owner_request(client, _body(), **TOKEN)
    new, existing = [], []
    for round_ in range(5):
        started = time.perf_counter()
        _owner_request(
            client,
            _body(tenant_id=str(uuid.uuid4()), tenant_slug=f"new-{round_}", email=f"n{round_}@x.test"),
            **TOKEN,
        )
        new.append(time.perf_counter() - started)
        started = time.perf_counter()
        _owner_request(client, _body(tenant_id=str(uuid.uuid4()), tenant_slug=f"old-{round_}"), **TOKEN)
        existing.append(time.perf_counter() - started)

    new_median, existing_median = sorted(new)[2], sorted(existing)[2]
    print(f"tenant-owners medians: new address {new_median * 1000:.0f} ms, existing {existing_median * 1000:.0f} ms")
    assert 0.5 < existing_median / new_median < 2.0, (new, existing)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "1234567890123"}, "password"),
        ({"password": " " * 12}, "password"),
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


def test_a_weak_password_is_refused_for_an_existing_address_too(client: Client) -> None:
    """The same 400 as for a new address: strength is judged before anyone looks the address up."""
    _owner_request(client, _body(), **TOKEN)

    error = assert_error(_owner_request(client, _second_tenant(password="password"), **TOKEN), 400)

    assert error["fields"]["password"]
    assert not Organization.objects.filter(slug="initrode").exists()
    assert RefreshToken.objects.count() == 0


def test_without_the_internal_token_is_refused(client: Client) -> None:
    assert_error(_owner_request(client, _body()), 403, "invalid_internal_token")
    assert_error(_owner_request(client, _body(), HTTP_X_INTERNAL_TOKEN="guess"), 403, "invalid_internal_token")
    assert _nothing_created()
