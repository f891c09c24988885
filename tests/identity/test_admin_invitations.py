"""Invitations in the organization's Django admin: added, resent and revoked through the services."""

from datetime import timedelta

import pytest
from django.test import Client

from apps.identity import selectors, services
from apps.identity.models import Invitation, Membership, User
from tests.identity.conftest import PASSWORD, invitation_token, mails_to, tenant_headers

pytestmark = pytest.mark.django_db

ADD = "/admin/identity/invitation/add/"
CHANGELIST = "/admin/identity/invitation/"


@pytest.fixture
def two_orgs(make_org, make_member):
    acme, globex = make_org("acme"), make_org("globex")
    make_member(acme, "boss@acme.test", role="admin")
    make_member(acme, "dev@acme.test")
    make_member(globex, "boss@globex.test", role="owner")
    return acme, globex


def _admin_login(client: Client, org, email: str) -> None:
    headers = tenant_headers(org) if org is not None else {}
    response = client.post("/admin/login/?next=/admin/", {"username": email, "password": PASSWORD}, **headers)
    assert response.status_code == 302, response.content


def _add(client: Client, org, **fields: object):
    body = {"email": "new@acme.test", "role_name": "member", "project_id": "", "project_role": "", **fields}
    return client.post(ADD, body, **tenant_headers(org))


def test_an_org_admin_adds_an_invitation_and_it_is_mailed(
    client: Client, two_orgs, mailbox, django_capture_on_commit_callbacks
) -> None:
    acme, _ = two_orgs
    _admin_login(client, acme, "boss@acme.test")
    form = client.get(ADD, **tenant_headers(acme))
    assert form.status_code == 200
    assert b'name="organization_choice"' not in form.content  # their own organization, always

    with django_capture_on_commit_callbacks(execute=True):
        response = _add(client, acme, project_id="5", project_role="viewer")

    assert response.status_code == 302, response.content
    invitation = Invitation.objects.get(email="new@acme.test")
    assert invitation.organization == acme
    assert invitation.invited_by == User.objects.get(email="boss@acme.test")
    assert (invitation.role.name, invitation.project_id, invitation.project_role) == ("member", 5, "viewer")
    [mail] = mails_to(mailbox, "new@acme.test")
    assert "Acme" in mail.subject
    assert selectors.invitation_get_pending(raw_token=invitation_token(mailbox, "new@acme.test")) == invitation
    listed = client.get(CHANGELIST, **tenant_headers(acme))
    assert b"new@acme.test" in listed.content and b"mailed to new@acme.test" in listed.content


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "dev@acme.test"}, b"Already a member."),
        ({"email": "not-an-address"}, b"Enter a valid email address."),
        ({"role_name": "owner"}, b"Only an owner can grant or take away the owner role"),
        ({"project_id": "abc"}, b"Enter a whole number."),
    ],
)
def test_a_refused_invitation_shows_the_reason_and_keeps_the_form(
    client: Client, two_orgs, fields: dict, message: bytes
) -> None:
    acme, _ = two_orgs
    _admin_login(client, acme, "boss@acme.test")

    response = _add(client, acme, **fields)

    assert response.status_code == 200
    assert message in response.content
    assert f'value="{fields.get("email", "new@acme.test")}"'.encode() in response.content
    assert not Invitation.objects.exists()


def test_resend_and_revoke_are_admin_actions_scoped_to_the_organization(
    client: Client, two_orgs, mailbox, django_capture_on_commit_callbacks, settings
) -> None:
    settings.INVITATION_RESEND_INTERVAL = timedelta(0)
    acme, globex = two_orgs
    boss = Membership.objects.get(user__email="boss@acme.test")
    globex_owner = Membership.objects.get(user__email="boss@globex.test")
    with django_capture_on_commit_callbacks(execute=True):
        ours, _ = services.invitation_create(organization=acme, email="new@acme.test", role_name="member", actor=boss)
    theirs, their_token = services.invitation_create(
        organization=globex, email="hire@globex.test", role_name="member", actor=globex_owner
    )
    first = invitation_token(mailbox, "new@acme.test")
    _admin_login(client, acme, "boss@acme.test")

    with django_capture_on_commit_callbacks(execute=True):
        resent = client.post(
            CHANGELIST,
            {"action": "resend_invitations", "_selected_action": [ours.pk, theirs.pk]},
            **tenant_headers(acme),
        )

    assert resent.status_code == 302
    assert len(mails_to(mailbox, "new@acme.test")) == 2
    assert selectors.invitation_get_pending(raw_token=first) is None
    assert selectors.invitation_get_pending(raw_token=invitation_token(mailbox, "new@acme.test")) == ours
    assert mails_to(mailbox, "hire@globex.test") == []
    assert Invitation.objects.get(pk=theirs.pk).token_hash == theirs.token_hash

    revoked = client.post(
        CHANGELIST,
        {"action": "revoke_invitations", "_selected_action": [ours.pk, theirs.pk]},
        **tenant_headers(acme),
    )

    assert revoked.status_code == 302
    assert Invitation.objects.get(pk=ours.pk).revoked_at is not None
    assert Invitation.objects.get(pk=theirs.pk).revoked_at is None
    assert selectors.invitation_get_pending(raw_token=their_token) is not None


def test_the_admin_offers_no_bulk_delete_and_no_edit_of_an_invitation(client: Client, two_orgs) -> None:
    acme, _ = two_orgs
    boss = Membership.objects.get(user__email="boss@acme.test")
    invitation, _ = services.invitation_create(organization=acme, email="new@acme.test", role_name="member", actor=boss)
    _admin_login(client, acme, "boss@acme.test")

    listed = client.get(CHANGELIST, **tenant_headers(acme)).content
    client.post(
        f"/admin/identity/invitation/{invitation.pk}/change/", {"email": "other@evil.test"}, **tenant_headers(acme)
    )

    assert b"delete_selected" not in listed and b"resend_invitations" in listed
    assert Invitation.objects.get(pk=invitation.pk).email == "new@acme.test"


def test_platform_staff_invite_into_a_chosen_organization(client: Client, two_orgs) -> None:
    _, globex = two_orgs
    User.objects.create_superuser("staff@platform.test", PASSWORD, is_staff=True)
    _admin_login(client, None, "staff@platform.test")

    missing = client.post(ADD, {"email": "x@globex.test", "role_name": "member"})
    chosen = client.post(ADD, {"email": "x@globex.test", "role_name": "owner", "organization_choice": str(globex.pk)})

    assert missing.status_code == 200 and b"Choose the organization" in missing.content
    assert chosen.status_code == 302
    assert Invitation.objects.get(email="x@globex.test").organization == globex
