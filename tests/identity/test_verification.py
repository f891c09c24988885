"""Item 1 of issue 8: account pre-hijacking. An address binds nothing until its mailbox proves it.

The attack: someone signs up with victim@x and a password of their choosing, before the victim
has an account. The fix under test: the account is unverified; it joins no other organization;
the victim's verification (a link mailed only to the address) makes them set their own password
and ends every password, refresh token and access token from before.
"""

import uuid
from datetime import timedelta

import pytest
from django.test import Client

from apps.common.auth import InvalidToken, verify_access_token
from apps.identity import services
from apps.identity.models import Membership, Organization, RefreshToken, User
from apps.identity.verification import verification_token_make, verification_token_user
from tests.identity.conftest import (
    PASSWORD,
    assert_error,
    bearer,
    invitation_token,
    mails_to,
    obtain,
    tenant_headers,
    verification_token,
)

pytestmark = pytest.mark.django_db

VICTIM = "victim@corp.test"
ATTACKER_PASSWORD = "attackers-own-pass-1"
VICTIM_PASSWORD = "victims-real-pass-2"


@pytest.fixture
def hijacked(client: Client, mailbox, django_capture_on_commit_callbacks) -> Organization:
    """The attacker's signup with the victim's address: their own organization, their own password."""
    with django_capture_on_commit_callbacks(execute=True):
        services.tenant_owner_create(
            tenant_id=uuid.uuid4(), tenant_slug="attacker-org", email=VICTIM, password=ATTACKER_PASSWORD
        )
    return Organization.objects.get(slug="attacker-org")


def _verify_api(client: Client, token: str, password: str = VICTIM_PASSWORD):
    return client.post(
        "/api/auth/verify-email", {"token": token, "password": password}, content_type="application/json"
    )


def test_the_verification_link_goes_only_to_the_mailbox(client: Client, hijacked, mailbox) -> None:
    [mail] = mails_to(mailbox, VICTIM)

    assert "/login/verify/" in mail.text
    assert User.objects.get(email=VICTIM).email_verified_at is None


def test_verifying_ends_the_attackers_password_sessions_and_access_tokens(
    client: Client, hijacked, mailbox, settings
) -> None:
    attacker = obtain(client, hijacked, VICTIM, ATTACKER_PASSWORD).json()
    second_session = obtain(client, hijacked, VICTIM, ATTACKER_PASSWORD).json()
    assert client.get("/api/auth/me", **bearer(hijacked, attacker["access"])).status_code == 200

    verified = _verify_api(client, verification_token(mailbox, VICTIM))

    assert verified.status_code == 200, verified.content
    assert verified.json() == {"email": VICTIM, "email_verified": True}
    for session in (attacker, second_session):
        assert_error(client.get("/api/auth/me", **bearer(hijacked, session["access"])), 401, "token_revoked")
        with pytest.raises(InvalidToken) as refused:
            verify_access_token(session["access"], tenant_id=str(hijacked.id))
        assert refused.value.code == "token_revoked"
        refresh = client.post(
            "/api/auth/refresh",
            {"refresh": session["refresh"]},
            content_type="application/json",
            **tenant_headers(hijacked),
        )
        assert_error(refresh, 401)
    assert RefreshToken.objects.filter(user__email=VICTIM, revoked_at=None).count() == 0
    assert_error(obtain(client, hijacked, VICTIM, ATTACKER_PASSWORD), 401, "invalid_credentials")
    assert obtain(client, hijacked, VICTIM, VICTIM_PASSWORD).status_code == 200
    assert User.objects.get(email=VICTIM).email_verified_at is not None


def test_a_link_works_once(client: Client, hijacked, mailbox) -> None:
    token = verification_token(mailbox, VICTIM)
    assert _verify_api(client, token).status_code == 200

    assert_error(_verify_api(client, token, "someone-elses-pass-3"), 400, "verification_invalid")
    assert User.objects.get(email=VICTIM).check_password(VICTIM_PASSWORD)


def test_an_expired_or_forged_link_is_refused(client: Client, hijacked, mailbox, settings) -> None:
    token = verification_token(mailbox, VICTIM)
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert_error(_verify_api(client, forged), 400, "verification_invalid")
    assert_error(_verify_api(client, "not-a-token"), 400, "verification_invalid")

    settings.EMAIL_VERIFICATION_LIFETIME = timedelta(seconds=-1)
    assert_error(_verify_api(client, token), 400, "verification_invalid")
    assert User.objects.get(email=VICTIM).email_verified_at is None


def test_the_attacker_cannot_kill_the_victims_link_by_signing_in_or_changing_the_password(
    client: Client, hijacked, mailbox
) -> None:
    token = verification_token(mailbox, VICTIM)
    access = obtain(client, hijacked, VICTIM, ATTACKER_PASSWORD).json()["access"]
    changed = client.post(
        "/api/auth/password",
        {"current_password": ATTACKER_PASSWORD, "new_password": "attackers-next-pass-4"},
        content_type="application/json",
        **bearer(hijacked, access),
    )
    assert changed.status_code == 200

    assert verification_token_user(token=token) is not None
    assert _verify_api(client, token).status_code == 200
    assert_error(obtain(client, hijacked, VICTIM, "attackers-next-pass-4"), 401, "invalid_credentials")


def test_an_unverified_account_joins_no_other_organization(
    client: Client, hijacked, mailbox, org, owner, django_capture_on_commit_callbacks
) -> None:
    """The victim's own organization invites the address; the attacker's password must not get in."""
    owner_access = obtain(client, org, "owner@acme.test").json()["access"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/users", {"email": VICTIM}, content_type="application/json", **bearer(org, owner_access))
    token = invitation_token(mailbox, VICTIM)

    def accept(password: str | None):
        body = {"token": token} | ({"password": password} if password else {})
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/api/users/invitations/accept", body, content_type="application/json")

    before = len(mails_to(mailbox, VICTIM))
    assert_error(accept(ATTACKER_PASSWORD), 403, "email_unverified")
    assert_error(accept(None), 403, "email_unverified")
    assert not Membership.objects.filter(organization=org, user__email=VICTIM).exists()
    assert_error(obtain(client, org, VICTIM, ATTACKER_PASSWORD), 401, "invalid_credentials")
    assert len(mails_to(mailbox, VICTIM)) == before + 1  # one new verification link, not one per try

    assert _verify_api(client, verification_token(mailbox, VICTIM)).status_code == 200
    assert_error(accept(ATTACKER_PASSWORD), 401, "invalid_credentials")
    assert accept(VICTIM_PASSWORD).status_code == 201
    assert obtain(client, org, VICTIM, VICTIM_PASSWORD).status_code == 200


def test_the_verification_page_sets_the_password_and_lists_the_organizations(hijacked, mailbox, client: Client) -> None:
    token = verification_token(mailbox, VICTIM)
    csrf_client = Client(enforce_csrf_checks=True)
    page = csrf_client.get(f"/login/verify/{token}")
    assert page.status_code == 200
    assert VICTIM.encode() in page.content

    weak = csrf_client.post(
        f"/login/verify/{token}",
        {"password": "password", "csrfmiddlewaretoken": page.cookies["csrftoken"].value},
    )
    assert weak.status_code == 400
    assert b"too common" in weak.content
    done = csrf_client.post(
        f"/login/verify/{token}",
        {
            "password": VICTIM_PASSWORD,
            "full_name": "Real Victim",
            "csrfmiddlewaretoken": page.cookies["csrftoken"].value,
        },
    )

    assert done.status_code == 200
    assert b"Address verified" in done.content
    assert b"attacker-org.localhost" in done.content
    assert User.objects.get(email=VICTIM).full_name == "Real Victim"
    assert csrf_client.get(f"/login/verify/{token}").status_code == 404


def test_resend_answers_alike_for_any_address_and_mails_only_unverified_accounts(
    client: Client, hijacked, mailbox, make_member, org, django_capture_on_commit_callbacks, settings
) -> None:
    settings.VERIFICATION_MAIL_INTERVAL = 1
    make_member(org, "verified@acme.test")
    answers = []
    for address in (VICTIM, "verified@acme.test", "nobody@nowhere.test"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/auth/verify-email/resend", {"email": address}, content_type="application/json")
        answers.append((response.status_code, response.json()))

    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 202
    assert len(mails_to(mailbox, VICTIM)) == 2
    assert mails_to(mailbox, "verified@acme.test") == []
    assert mails_to(mailbox, "nobody@nowhere.test") == []


def test_a_verified_account_has_no_use_for_a_token(make_member, org) -> None:
    user = make_member(org, "done@acme.test").user

    assert verification_token_user(token=verification_token_make(user=user)) is None


def test_an_invitation_mailed_only_to_the_address_verifies_the_new_account(
    client: Client, org, owner, settings, django_capture_on_commit_callbacks, mailbox
) -> None:
    settings.INVITATION_LINK_IN_RESPONSE = False
    owner_access = obtain(client, org, "owner@acme.test").json()["access"]
    with django_capture_on_commit_callbacks(execute=True):
        invited = client.post(
            "/api/users", {"email": "new@acme.test"}, content_type="application/json", **bearer(org, owner_access)
        )
    assert "accept_url" not in invited.json()
    accepted = client.post(
        "/api/users/invitations/accept",
        {"token": invitation_token(mailbox, "new@acme.test"), "password": PASSWORD},
        content_type="application/json",
    )

    assert accepted.status_code == 201
    assert User.objects.get(email="new@acme.test").email_verified_at is not None


def test_an_invitation_whose_link_the_inviter_saw_does_not_verify(
    client: Client, org, owner, django_capture_on_commit_callbacks, mailbox
) -> None:
    owner_access = obtain(client, org, "owner@acme.test").json()["access"]
    invited = client.post(
        "/api/users", {"email": "new@acme.test"}, content_type="application/json", **bearer(org, owner_access)
    )
    token = invited.json()["accept_url"].rsplit("/", 1)[1]  # INVITATION_LINK_IN_RESPONSE is on (DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/api/users/invitations/accept", {"token": token, "password": PASSWORD}, content_type="application/json"
        )

    assert User.objects.get(email="new@acme.test").email_verified_at is None
    assert verification_token(mailbox, "new@acme.test")


def test_the_victims_own_signup_recovers_the_address_and_the_new_organization(
    client: Client, hijacked, mailbox, django_capture_on_commit_callbacks
) -> None:
    """The victim signs up after the attacker: the mail offers verification and the ownership."""
    with django_capture_on_commit_callbacks(execute=True):
        outcome = services.tenant_owner_create(
            tenant_id=uuid.uuid4(), tenant_slug="victim-org", email=VICTIM, password=VICTIM_PASSWORD
        )
    assert outcome.user is None and outcome.invited
    victim_org = Organization.objects.get(slug="victim-org")
    notice = mails_to(mailbox, VICTIM)[-1]
    assert notice.subject == "Someone tried to create an organization with your address"
    assert_error(obtain(client, victim_org, VICTIM, ATTACKER_PASSWORD), 401, "invalid_credentials")

    assert _verify_api(client, verification_token(mailbox, VICTIM)).status_code == 200
    accepted = client.post(
        "/api/users/invitations/accept",
        {"token": invitation_token(mailbox, VICTIM), "password": VICTIM_PASSWORD},
        content_type="application/json",
    )

    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["role"] == "owner"
    assert obtain(client, victim_org, VICTIM, VICTIM_PASSWORD).status_code == 200
