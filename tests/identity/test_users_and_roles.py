import re

import pytest
from django.core import mail
from django.test import Client

from apps.identity.models import Invitation, Membership, Role, User
from tests.identity.conftest import PASSWORD, assert_error, bearer, obtain

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_access(client: Client, org, owner) -> str:
    return obtain(client, org, "owner@acme.test").json()["access"]


def _invite(client: Client, org, access: str, email: str, role: str = "member"):
    return client.post(
        "/api/users", {"email": email, "role": role}, content_type="application/json", **bearer(org, access)
    )


def _accept(client: Client, body: dict):
    return client.post("/api/users/invitations/accept", body, content_type="application/json")


def test_owner_lists_members(client: Client, org, owner, owner_access, make_member) -> None:
    make_member(org, "dev@acme.test")

    response = client.get("/api/users", **bearer(org, owner_access))

    assert response.status_code == 200
    assert [(m["email"], m["role"]) for m in response.json()["items"]] == [
        ("dev@acme.test", "member"),
        ("owner@acme.test", "owner"),
    ]


def test_a_member_without_manage_members_is_refused(client: Client, org, owner, make_member) -> None:
    make_member(org, "dev@acme.test")
    access = obtain(client, org, "dev@acme.test").json()["access"]

    assert_error(client.get("/api/users", **bearer(org, access)), 403, "forbidden")
    assert_error(_invite(client, org, access, "new@acme.test"), 403, "forbidden")
    assert not Invitation.objects.exists()


def test_invitation_is_mailed_and_a_new_person_joins_with_a_password(
    client: Client, org, owner, owner_access, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(client, org, owner_access, "new@acme.test", role="manager")

    assert response.status_code == 201
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new@acme.test"]
    token = re.search(r"/login/invitation/(\S+)", mail.outbox[0].body).group(1)
    assert response.json()["accept_url"].endswith(token)

    assert_error(_accept(client, {"token": token}), 400, "validation_error")
    assert_error(_accept(client, {"token": token, "password": "12345"}), 400, "validation_error")
    assert not User.objects.filter(email="new@acme.test").exists()

    accepted = _accept(client, {"token": token, "password": "a-fine-new-password", "full_name": "New Person"})

    assert accepted.status_code == 201
    assert accepted.json()["role"] == "manager"
    assert obtain(client, org, "new@acme.test", "a-fine-new-password").status_code == 200
    assert_error(_accept(client, {"token": token, "password": "a-fine-new-password"}), 400, "invitation_invalid")


def test_an_existing_user_joins_by_signing_in_not_by_knowing_the_link(
    client: Client, org, owner, owner_access, make_org, make_member
) -> None:
    make_member(make_org("globex"), "dev@globex.test")
    response = _invite(client, org, owner_access, "dev@globex.test")
    token = response.json()["accept_url"].rsplit("/", 1)[1]

    assert_error(_accept(client, {"token": token}), 401, "sign_in_required")
    assert_error(_accept(client, {"token": token, "password": "a-guess-at-it-1"}), 401, "invalid_credentials")
    assert not Membership.objects.filter(organization=org, user__email="dev@globex.test").exists()
    assert _accept(client, {"token": token, "password": PASSWORD}).status_code == 201
    assert Membership.objects.filter(organization=org, user__email="dev@globex.test").exists()
    assert obtain(client, org, "dev@globex.test", PASSWORD).status_code == 200


def test_reinviting_replaces_the_earlier_link(client: Client, org, owner, owner_access) -> None:
    first = _invite(client, org, owner_access, "new@acme.test").json()["accept_url"].rsplit("/", 1)[1]
    _invite(client, org, owner_access, "new@acme.test")

    assert_error(_accept(client, {"token": first, "password": "a-fine-new-password"}), 400, "invitation_invalid")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"email": "bad"}, "validation_error"),
        ({"email": "x@acme.test", "role": "emperor"}, "validation_error"),
        ({"email": "owner@acme.test"}, "already_member"),
    ],
)
def test_bad_invitations_are_refused(client: Client, org, owner, owner_access, body: dict, code: str) -> None:
    response = client.post("/api/users", body, content_type="application/json", **bearer(org, owner_access))

    assert_error(response, 409 if code == "already_member" else 400, code)
    assert not Invitation.objects.exists()


def test_only_an_owner_may_invite_an_owner(client: Client, org, owner, make_member) -> None:
    make_member(org, "admin@acme.test", role="admin")
    admin_access = obtain(client, org, "admin@acme.test").json()["access"]

    assert_error(_invite(client, org, admin_access, "new@acme.test", role="owner"), 403, "forbidden")


def test_change_role_and_remove(client: Client, org, owner, owner_access, make_member) -> None:
    dev = make_member(org, "dev@acme.test")

    changed = client.patch(
        f"/api/users/{dev.user_id}", {"role": "viewer"}, content_type="application/json", **bearer(org, owner_access)
    )
    assert changed.status_code == 200
    assert changed.json()["role"] == "viewer"
    viewer_claims = obtain(client, org, "dev@acme.test").json()["access"]
    assert client.get("/api/auth/me", **bearer(org, viewer_claims)).json()["permissions"] == ["comment"]

    removed = client.delete(f"/api/users/{dev.user_id}", **bearer(org, owner_access))
    assert removed.status_code == 204
    assert not Membership.objects.filter(pk=dev.pk).exists()
    assert_error(obtain(client, org, "dev@acme.test"), 401, "invalid_credentials")


def test_the_last_owner_cannot_be_demoted_or_removed(client: Client, org, owner, owner_access) -> None:
    demote = client.patch(
        f"/api/users/{owner.user_id}", {"role": "member"}, content_type="application/json", **bearer(org, owner_access)
    )
    remove = client.delete(f"/api/users/{owner.user_id}", **bearer(org, owner_access))

    assert_error(demote, 409, "last_owner")
    assert_error(remove, 409, "last_owner")
    assert Membership.objects.get(pk=owner.pk).role.name == "owner"


def test_members_of_other_organizations_are_not_found(
    client: Client, org, owner, owner_access, make_org, make_member
) -> None:
    stranger = make_member(make_org("globex"), "x@globex.test")

    response = client.patch(
        f"/api/users/{stranger.user_id}",
        {"role": "viewer"},
        content_type="application/json",
        **bearer(org, owner_access),
    )

    assert_error(response, 404, "not_found")
    assert_error(client.delete("/api/users/not-a-number", **bearer(org, owner_access)), 404, "not_found")
    assert Membership.objects.get(pk=stranger.pk).role.name == "member"


def test_roles_list_and_permission_edit(client: Client, org, owner, owner_access, make_member) -> None:
    make_member(org, "dev@acme.test")
    listed = client.get("/api/roles", **bearer(org, owner_access)).json()
    assert [role["name"] for role in listed["items"]] == ["owner", "admin", "manager", "member", "viewer"]
    assert "manage_roles" in listed["available_permissions"]

    response = client.patch(
        "/api/roles/member",
        {"permissions": ["comment", "view_analytics"]},
        content_type="application/json",
        **bearer(org, owner_access),
    )

    assert response.status_code == 200
    assert response.json() == {"name": "member", "permissions": ["comment", "view_analytics"]}
    dev_access = obtain(client, org, "dev@acme.test").json()["access"]
    assert client.get("/api/auth/me", **bearer(org, dev_access)).json()["permissions"] == ["comment", "view_analytics"]


@pytest.mark.parametrize(
    ("role", "body", "status", "code"),
    [
        ("member", {"permissions": ["fly"]}, 400, "validation_error"),
        ("member", {"permissions": "comment"}, 400, "validation_error"),
        ("member", {}, 400, "validation_error"),
        ("owner", {"permissions": ["comment"]}, 409, "owner_role_fixed"),
        ("emperor", {"permissions": []}, 404, "not_found"),
    ],
)
def test_bad_role_edits_change_nothing(client: Client, org, owner, owner_access, role, body, status, code) -> None:
    before = {r.name: list(r.permissions) for r in Role.objects.filter(organization=org)}

    response = client.patch(f"/api/roles/{role}", body, content_type="application/json", **bearer(org, owner_access))

    assert_error(response, status, code)
    assert {r.name: list(r.permissions) for r in Role.objects.filter(organization=org)} == before


def test_editing_roles_needs_manage_roles(client: Client, org, owner, make_member) -> None:
    make_member(org, "lead@acme.test", role="manager")
    access = obtain(client, org, "lead@acme.test").json()["access"]

    response = client.patch(
        "/api/roles/viewer", {"permissions": []}, content_type="application/json", **bearer(org, access)
    )

    assert_error(response, 403, "forbidden")


def test_a_removed_members_access_token_is_revoked(client: Client, org, owner, owner_access, make_member) -> None:
    make_member(org, "admin@acme.test", role="admin")
    admin_access = obtain(client, org, "admin@acme.test").json()["access"]
    client.delete(f"/api/users/{User.objects.get(email='admin@acme.test').pk}", **bearer(org, owner_access))

    assert_error(client.get("/api/users", **bearer(org, admin_access)), 401, "token_revoked")


def test_revoked_membership_is_refused_although_the_token_lives(
    client: Client, org, owner, owner_access, make_member, settings
) -> None:
    """Defense in depth: with the revocation store unreachable, rights still come fresh from the database."""
    make_member(org, "admin@acme.test", role="admin")
    admin_access = obtain(client, org, "admin@acme.test").json()["access"]
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    client.delete(f"/api/users/{User.objects.get(email='admin@acme.test').pk}", **bearer(org, owner_access))

    assert_error(client.get("/api/users", **bearer(org, admin_access)), 403, "not_a_member")


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        # The request guard (apps/common/middleware.py) refuses these before any view runs.
        ("/api/users/%C2%B2", 400, "invalid_path"),
        ("/api/users/1%00", 400, "invalid_path"),
        ("/api/roles/ad%00min", 400, "invalid_path"),
        ("/api/users/99999999999999999999999", 404, "not_found"),
    ],
)
def test_odd_ids_in_paths_are_a_json_error(client: Client, org, owner, owner_access, path, status, code) -> None:
    for method in (client.patch, client.delete):
        response = method(path, {"role": "member"}, content_type="application/json", **bearer(org, owner_access))
        if response.status_code == 405:
            continue
        assert_error(response, status, code)
