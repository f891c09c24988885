"""Invitations from the members page's side: resend, revoke, the project to land on, who may do what,
and the attacks an outsider or a plain member tries (another organization's ids, stale links, no CSRF)."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.identity import selectors, services
from apps.identity.models import Invitation, Membership
from tests.identity.conftest import PASSWORD, assert_error, bearer, invitation_token, mails_to, obtain, tenant_headers

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-fine-new-password"


@pytest.fixture
def owner_access(client: Client, org, owner) -> str:
    return obtain(client, org, "owner@acme.test").json()["access"]


@pytest.fixture
def no_resend_wait(settings) -> None:
    settings.INVITATION_RESEND_INTERVAL = timedelta(0)


@pytest.fixture
def mailed(mailbox, django_capture_on_commit_callbacks) -> Callable[[Callable[[], Any]], Any]:
    """Runs a request and the mail it sends after its commit (the test's transaction never commits)."""

    def run(call: Callable[[], Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return call()

    return run


def _invite(client: Client, org, access: str, email: str, **extra: object):
    return client.post(
        "/api/users",
        {"email": email, "role": "member", **extra},
        content_type="application/json",
        **bearer(org, access),
    )


def _resend(client: Client, org, access: str, invitation_id: int):
    return client.post(f"/api/users/invitations/{invitation_id}/resend", **bearer(org, access))


def _accept(client: Client, token: str, **body: str):
    return client.post("/api/users/invitations/accept", {"token": token, **body}, content_type="application/json")


def test_resend_mails_a_new_link_and_the_old_one_stops_working(
    client: Client, org, owner, owner_access, mailbox, mailed, no_resend_wait
) -> None:
    created = mailed(lambda: _invite(client, org, owner_access, "new@acme.test"))
    assert created.status_code == 201, created.content
    first = invitation_token(mailbox, "new@acme.test")

    resent = mailed(lambda: _resend(client, org, owner_access, created.json()["id"]))

    assert resent.status_code == 200, resent.content
    assert len(mails_to(mailbox, "new@acme.test")) == 2
    second = invitation_token(mailbox, "new@acme.test")
    assert second != first
    assert resent.json()["id"] == created.json()["id"]
    assert resent.json()["sent_at"] >= created.json()["sent_at"]
    assert selectors.invitation_get_pending(raw_token=first) is None
    assert client.get(f"/login/invitation/{first}", **tenant_headers(org)).status_code == 404
    assert_error(_accept(client, first, password=NEW_PASSWORD), 400, "invitation_invalid")
    assert _accept(client, second, password=NEW_PASSWORD, full_name="New Person").status_code == 201


def test_resend_is_throttled_per_invitation(
    client: Client, org, owner, owner_access, mailbox, mailed, settings
) -> None:
    settings.INVITATION_RESEND_INTERVAL = timedelta(seconds=60)
    invitation_id = mailed(lambda: _invite(client, org, owner_access, "new@acme.test")).json()["id"]
    token = invitation_token(mailbox, "new@acme.test")

    refused = mailed(lambda: _resend(client, org, owner_access, invitation_id))

    error = assert_error(refused, 429, "resend_throttled")
    assert 0 < int(refused["Retry-After"]) <= 60
    assert "seconds" in error["message"]
    assert len(mails_to(mailbox, "new@acme.test")) == 1
    assert selectors.invitation_get_pending(raw_token=token) is not None  # the mailed link still works

    Invitation.objects.filter(pk=invitation_id).update(sent_at=timezone.now() - timedelta(seconds=61))
    assert _resend(client, org, owner_access, invitation_id).status_code == 200


def test_an_expired_invitation_can_be_resent_with_a_new_lifetime(
    client: Client, org, owner, owner_access, no_resend_wait
) -> None:
    invitation_id = _invite(client, org, owner_access, "late@acme.test").json()["id"]
    Invitation.objects.filter(pk=invitation_id).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert invitation_id not in [
        i["id"] for i in client.get("/api/users/invitations", **bearer(org, owner_access)).json()["items"]
    ]

    resent = _resend(client, org, owner_access, invitation_id)

    assert resent.status_code == 200
    assert Invitation.objects.get(pk=invitation_id).expires_at > timezone.now() + timedelta(days=6)
    assert invitation_id in [
        i["id"] for i in client.get("/api/users/invitations", **bearer(org, owner_access)).json()["items"]
    ]


def test_revoke_ends_the_link_and_a_revoked_invitation_cannot_be_resent(
    client: Client, org, owner, owner_access, mailbox, mailed, no_resend_wait
) -> None:
    invitation_id = mailed(lambda: _invite(client, org, owner_access, "new@acme.test")).json()["id"]
    token = invitation_token(mailbox, "new@acme.test")

    revoked = client.delete(f"/api/users/invitations/{invitation_id}", **bearer(org, owner_access))

    assert revoked.status_code == 204
    assert client.get("/api/users/invitations", **bearer(org, owner_access)).json()["items"] == []
    assert_error(_accept(client, token, password=NEW_PASSWORD), 400, "invitation_invalid")
    page = client.get(f"/login/invitation/{token}", **tenant_headers(org))
    assert page.status_code == 404 and b"Invitation not valid" in page.content
    assert_error(mailed(lambda: _resend(client, org, owner_access, invitation_id)), 409, "invitation_closed")
    assert len(mails_to(mailbox, "new@acme.test")) == 1


def test_an_accepted_invitation_cannot_be_resent(client: Client, org, owner, owner_access, no_resend_wait) -> None:
    created = _invite(client, org, owner_access, "new@acme.test").json()
    token = created["accept_url"].rsplit("/", 1)[1]
    assert _accept(client, token, password=NEW_PASSWORD).status_code == 201

    assert_error(_resend(client, org, owner_access, created["id"]), 409, "invitation_closed")


def test_another_organizations_invitation_is_not_found(
    client: Client, org, owner, owner_access, make_org, make_member, no_resend_wait
) -> None:
    globex = make_org("globex")
    globex_owner = make_member(globex, "boss@globex.test", role="owner")
    theirs, token = services.invitation_create(
        organization=globex, email="hire@globex.test", role_name="member", actor=globex_owner
    )
    hash_before = theirs.token_hash

    assert_error(_resend(client, org, owner_access, theirs.pk), 404, "not_found")
    assert_error(client.delete(f"/api/users/invitations/{theirs.pk}", **bearer(org, owner_access)), 404, "not_found")
    assert_error(_resend(client, org, owner_access, 10**18), 404, "not_found")

    fresh = Invitation.objects.get(pk=theirs.pk)
    assert fresh.revoked_at is None and fresh.token_hash == hash_before
    assert selectors.invitation_get_pending(raw_token=token) is not None
    listed = client.get("/api/users/invitations", **bearer(org, owner_access)).json()["items"]
    assert "hire@globex.test" not in [item["email"] for item in listed]


@pytest.mark.parametrize("role", ["viewer", "member", "manager"])
def test_without_manage_members_nobody_invites_resends_revokes_or_lists(
    client: Client, org, owner, owner_access, make_member, role, no_resend_wait
) -> None:
    pending = _invite(client, org, owner_access, "pending@acme.test").json()
    make_member(org, "plain@acme.test", role=role)
    access = obtain(client, org, "plain@acme.test").json()["access"]

    assert_error(client.get("/api/users/invitations", **bearer(org, access)), 403, "forbidden")
    assert_error(_invite(client, org, access, "friend@acme.test"), 403, "forbidden")
    assert_error(_resend(client, org, access, pending["id"]), 403, "forbidden")
    assert_error(client.delete(f"/api/users/invitations/{pending['id']}", **bearer(org, access)), 403, "forbidden")
    assert list(Invitation.objects.values_list("email", "revoked_at")) == [("pending@acme.test", None)]


def test_an_invitation_names_a_project_and_a_role_in_it(client: Client, org, owner, owner_access) -> None:
    created = _invite(client, org, owner_access, "new@acme.test", project_id=7, project_role="manager")

    assert created.status_code == 201, created.content
    assert (created.json()["project_id"], created.json()["project_role"]) == (7, "manager")
    invitation = Invitation.objects.get(pk=created.json()["id"])
    assert (invitation.project_id, invitation.project_role) == (7, "manager")
    listed = client.get("/api/users/invitations", **bearer(org, owner_access)).json()["items"][0]
    assert listed["invited_by"] == {"id": str(owner.user_id), "full_name": "", "email": "owner@acme.test"}

    default_role = _invite(client, org, owner_access, "other@acme.test", project_id=7).json()
    assert default_role["project_role"] == "member"
    no_project = _invite(client, org, owner_access, "third@acme.test", project_role="manager").json()
    assert (no_project["project_id"], no_project["project_role"]) == (None, None)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"project_id": "abc"}, "project_id"),
        ({"project_id": 0}, "project_id"),
        ({"project_id": "٣"}, "project_id"),
        ({"project_id": 2**63}, "project_id"),
        ({"project_id": 3, "project_role": "owner"}, "project_role"),
        ({"email": "not-an-address"}, "email"),
    ],
)
def test_bad_project_choices_are_refused_by_field(client: Client, org, owner, owner_access, extra, field) -> None:
    body = {"email": "new@acme.test", **extra}

    response = client.post("/api/users", body, content_type="application/json", **bearer(org, owner_access))

    error = assert_error(response, 400, "validation_error")
    assert field in error["fields"]
    assert not Invitation.objects.exists()


def test_inviting_a_member_again_names_the_email_field(client: Client, org, owner, owner_access, make_member) -> None:
    make_member(org, "dev@acme.test")

    error = assert_error(_invite(client, org, owner_access, "dev@acme.test"), 409, "already_member")

    assert error["fields"] == {"email": ["Already a member."]}


# The acceptance page


def test_a_new_person_accepts_on_the_page_and_lands_on_the_project_signed_in(
    client: Client, org, owner, owner_access
) -> None:
    created = _invite(client, org, owner_access, "new@acme.test", project_id=4, project_role="viewer").json()
    token = created["accept_url"].rsplit("/", 1)[1]

    weak = client.post(
        f"/login/invitation/{token}", {"full_name": "Ada Lovelace", "password": "123"}, **tenant_headers(org)
    )
    assert weak.status_code == 400
    assert b'value="Ada Lovelace"' in weak.content  # what was typed stays
    assert b"field-error" in weak.content

    accepted = client.post(
        f"/login/invitation/{token}", {"full_name": "Ada Lovelace", "password": NEW_PASSWORD}, **tenant_headers(org)
    )

    assert accepted.status_code == 302
    assert accepted["Location"] == "/projects/?project=4"
    access = accepted.cookies["access_token"].value
    me = client.get("/api/auth/me", **bearer(org, access)).json()
    assert (me["email"], me["full_name"], me["roles"]) == ("new@acme.test", "Ada Lovelace", ["member"])


def test_an_existing_account_accepts_on_the_page_with_its_own_password(
    client: Client, org, owner, owner_access, make_org, make_member
) -> None:
    make_member(make_org("globex"), "dev@globex.test")
    token = _invite(client, org, owner_access, "dev@globex.test").json()["accept_url"].rsplit("/", 1)[1]

    wrong = client.post(f"/login/invitation/{token}", {"password": "not-the-password-1"}, **tenant_headers(org))
    assert wrong.status_code == 401
    assert b"Email or password is incorrect" in wrong.content
    assert not Membership.objects.filter(organization=org, user__email="dev@globex.test").exists()

    accepted = client.post(f"/login/invitation/{token}", {"password": PASSWORD}, **tenant_headers(org))

    assert accepted.status_code == 302 and accepted["Location"] == "/projects/"
    assert "access_token" in accepted.cookies
    assert Membership.objects.filter(organization=org, user__email="dev@globex.test").exists()


# The members page


def _page(client: Client, org, access: str | None, path: str = "/members/"):
    if access is not None:
        client.cookies["access_token"] = access
    return client.get(path, HTTP_ACCEPT="text/html", **tenant_headers(org))


def test_every_member_sees_the_people_but_only_managers_see_invitations(
    client: Client, org, owner, owner_access, make_member
) -> None:
    services.user_update(user=owner.user, actor_id=None, full_name="Olive Owner")
    _invite(client, org, owner_access, "pending@acme.test")
    make_member(org, "viewer@acme.test", role="viewer")
    viewer_access = obtain(client, org, "viewer@acme.test").json()["access"]

    as_viewer = _page(Client(), org, viewer_access).content.decode()
    as_owner = _page(Client(), org, owner_access).content.decode()

    for html in (as_viewer, as_owner):
        assert "Olive Owner" in html and "owner@acme.test" in html and "viewer@acme.test" in html
    assert "pending@acme.test" not in as_viewer
    assert 'id="invite-form"' not in as_viewer and "Pending invitations" not in as_viewer
    assert 'data-action="remove"' not in as_viewer and 'data-action="role"' not in as_viewer
    assert "pending@acme.test" in as_owner and 'id="invite-form"' in as_owner
    assert 'href="/admin/"' in as_owner and 'href="/admin/"' not in as_viewer


def test_names_are_escaped_on_the_members_page(client: Client, org, owner, owner_access, make_member) -> None:
    evil = make_member(org, "evil@acme.test")
    services.user_update(user=evil.user, actor_id=None, full_name='<img src=x onerror="alert(1)"><script>x()</script>')
    services.user_update(user=owner.user, actor_id=None, full_name="</script><b>Owner</b>")
    services.invitation_create(organization=org, email="new@acme.test", role_name="member", actor=owner)

    html = _page(client, org, owner_access).content.decode()

    assert "<script>x()" not in html and "<img src=x" not in html and "<b>Owner</b>" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "&lt;/script&gt;&lt;b&gt;Owner&lt;/b&gt;" in html  # in the pending list's "invited by" too


def test_the_members_page_refuses_strangers(client: Client, org, owner, owner_access, make_org, make_member) -> None:
    anonymous = _page(Client(), org, None)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login?next=%2Fmembers%2F")

    globex = make_org("globex")
    make_member(globex, "x@globex.test")
    foreign_access = obtain(client, globex, "x@globex.test").json()["access"]
    assert _page(Client(), org, foreign_access).status_code == 404

    expired_or_forged = _page(Client(), org, "not-a-token")
    assert expired_or_forged.status_code == 302 and expired_or_forged["Location"].startswith("/api/auth/resume")


def test_a_removed_member_gets_an_html_refusal(client: Client, org, owner, owner_access, make_member, settings) -> None:
    dev = make_member(org, "dev@acme.test")
    dev_access = obtain(client, org, "dev@acme.test").json()["access"]
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # revoked-jti unreachable: the membership decides
    services.membership_remove(membership=dev, actor=owner)

    page = _page(Client(), org, dev_access)

    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")
    assert b"<html" in page.content


def test_a_cookie_write_without_the_csrf_token_is_refused(org, owner, owner_access) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.cookies["access_token"] = owner_access
    page = browser.get("/members/", **tenant_headers(org))
    assert page.status_code == 200
    csrf = browser.cookies["csrftoken"].value

    refused = browser.post(
        "/api/users", {"email": "new@acme.test"}, content_type="application/json", **tenant_headers(org)
    )
    assert_error(refused, 403, "csrf_failed")
    assert not Invitation.objects.exists()

    accepted = browser.post(
        "/api/users",
        {"email": "new@acme.test"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf,
        **tenant_headers(org),
    )
    assert accepted.status_code == 201, accepted.content
    invitation_id = accepted.json()["id"]
    for method, path in (
        ("delete", f"/api/users/invitations/{invitation_id}"),
        ("post", f"/api/users/invitations/{invitation_id}/resend"),
    ):
        assert_error(getattr(browser, method)(path, **tenant_headers(org)), 403, "csrf_failed")
    assert Invitation.objects.get(pk=invitation_id).revoked_at is None
