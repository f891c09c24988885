import datetime as dt

import jwt
import pytest
from django.test import Client
from django.utils import timezone

from apps.common.auth import verify_access_token
from apps.identity import keyring, services
from apps.identity.models import RefreshToken, SigningKey
from tests.identity.conftest import PASSWORD, assert_error, bearer, obtain, tenant_headers

pytestmark = pytest.mark.django_db


def test_token_carries_the_contract_claims_and_a_kid(client: Client, org, owner) -> None:
    response = obtain(client, org, "owner@acme.test")

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    header = jwt.get_unverified_header(body["access"])
    assert header["alg"] == "RS256"
    assert header["kid"] == SigningKey.objects.get(retired_at=None).kid
    claims = jwt.decode(body["access"], options={"verify_signature": False})
    assert claims["sub"] == str(owner.user_id)
    assert claims["tenantId"] == str(org.id)
    assert claims["roles"] == ["owner"]
    assert "manage_members" in claims["permissions"]
    assert claims["iss"] == "kanban-identity"
    assert claims["aud"] == "kanban-platform"
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert claims["jti"]


def test_email_is_matched_case_insensitively(client: Client, org, owner) -> None:
    assert obtain(client, org, "OWNER@Acme.Test").status_code == 200


def test_wrong_password_and_non_member_get_the_same_answer(client: Client, org, owner, make_org) -> None:
    other = make_org("globex")
    wrong_password = assert_error(
        obtain(client, org, "owner@acme.test", "wrong-password-1"), 401, "invalid_credentials"
    )
    not_member = assert_error(obtain(client, other, "owner@acme.test"), 401, "invalid_credentials")
    unknown = assert_error(obtain(client, org, "nobody@acme.test"), 401, "invalid_credentials")

    assert wrong_password["message"] == not_member["message"] == unknown["message"]
    assert RefreshToken.objects.count() == 0


def test_token_without_a_tenant_is_refused(client: Client, owner) -> None:
    response = client.post(
        "/api/auth/token", {"email": "owner@acme.test", "password": PASSWORD}, content_type="application/json"
    )

    assert_error(response, 400, "tenant_required")


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "owner@acme.test"}, {"email": "not-an-email", "password": "x"}, {"email": ["a"], "password": 1}],
)
def test_malformed_token_requests_are_refused(client: Client, org, owner, body) -> None:
    response = client.post("/api/auth/token", body, content_type="application/json", **tenant_headers(org))

    assert_error(response, 400, "validation_error")
    assert RefreshToken.objects.count() == 0


def test_unparseable_json_is_refused(client: Client, org) -> None:
    response = client.post("/api/auth/token", "{not json", content_type="application/json", **tenant_headers(org))

    assert_error(response, 400, "parse_error")


def test_me_answers_with_roles_and_permissions_in_this_tenant(
    client: Client, org, owner, make_org, make_member
) -> None:
    other = make_org("globex")
    make_member(other, "owner@acme.test", role="viewer")
    access = obtain(client, org, "owner@acme.test").json()["access"]

    response = client.get("/api/auth/me", **bearer(org, access))

    assert response.status_code == 200
    me = response.json()
    assert me["email"] == "owner@acme.test"
    assert me["tenant_id"] == str(org.id)
    assert me["roles"] == ["owner"]
    assert "manage_roles" in me["permissions"]
    assert {m["tenant_slug"]: m["role"] for m in me["memberships"]} == {"acme": "owner", "globex": "viewer"}


def test_me_refuses_a_token_on_another_tenant(client: Client, org, owner, make_org) -> None:
    other = make_org("globex")
    access = obtain(client, org, "owner@acme.test").json()["access"]

    assert_error(client.get("/api/auth/me", **bearer(other, access)), 403, "wrong_tenant")


def test_me_without_a_token_is_401(client: Client, org) -> None:
    response = client.get("/api/auth/me", **tenant_headers(org))

    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_refresh_token_is_not_an_access_token(client: Client, org, owner) -> None:
    refresh = obtain(client, org, "owner@acme.test").json()["refresh"]

    assert_error(client.get("/api/auth/me", **bearer(org, refresh)), 401, "invalid_token")


def _refresh(client: Client, org, refresh: str):
    return client.post(
        "/api/auth/refresh", {"refresh": refresh}, content_type="application/json", **tenant_headers(org)
    )


def test_refresh_rotates_the_pair(client: Client, org, owner) -> None:
    first = obtain(client, org, "owner@acme.test").json()

    response = _refresh(client, org, first["refresh"])

    assert response.status_code == 200
    second = response.json()
    assert second["refresh"] != first["refresh"]
    assert second["access"] != first["access"]
    assert RefreshToken.objects.filter(used_at__isnull=False).count() == 1
    assert len(set(RefreshToken.objects.values_list("family", flat=True))) == 1


def test_reusing_a_refresh_token_revokes_its_whole_family(client: Client, org, owner) -> None:
    first = obtain(client, org, "owner@acme.test").json()
    second = _refresh(client, org, first["refresh"]).json()
    other_session = obtain(client, org, "owner@acme.test").json()

    assert_error(_refresh(client, org, first["refresh"]), 401, "token_reused")

    # The thief's copy and the owner's newer token both die; another login of the same user does not.
    assert_error(_refresh(client, org, second["refresh"]), 401, "token_revoked")
    assert _refresh(client, org, other_session["refresh"]).status_code == 200


def test_refresh_from_another_tenant_is_refused(client: Client, org, owner, make_org) -> None:
    other = make_org("globex")
    refresh = obtain(client, org, "owner@acme.test").json()["refresh"]

    assert_error(_refresh(client, other, refresh), 401, "invalid_token")
    assert RefreshToken.objects.get().used_at is None


@pytest.mark.parametrize("refresh", ["", "garbage", "a.b.c", 42])
def test_bad_refresh_tokens_are_refused(client: Client, org, owner, refresh) -> None:
    response = _refresh(client, org, refresh)

    assert response.status_code in (400, 401)
    assert_error(response, response.status_code)


def test_an_access_token_cannot_refresh(client: Client, org, owner) -> None:
    access = obtain(client, org, "owner@acme.test").json()["access"]

    assert_error(_refresh(client, org, access), 401, "invalid_token")


def test_logout_revokes_the_session(client: Client, org, owner) -> None:
    pair = obtain(client, org, "owner@acme.test").json()
    rotated = _refresh(client, org, pair["refresh"]).json()

    response = client.post(
        "/api/auth/logout", {"refresh": rotated["refresh"]}, content_type="application/json", **tenant_headers(org)
    )

    assert response.status_code == 204
    assert_error(_refresh(client, org, rotated["refresh"]), 401, "token_revoked")
    assert RefreshToken.objects.filter(revoked_at=None).count() == 0


def test_removed_member_cannot_refresh(client: Client, org, owner, make_member) -> None:
    member = make_member(org, "dev@acme.test")
    refresh = obtain(client, org, "dev@acme.test").json()["refresh"]

    services.membership_remove(membership=member, actor=owner)

    assert_error(_refresh(client, org, refresh), 401, "token_revoked")


def test_jwks_lists_the_signing_key(client: Client, org, owner) -> None:
    access = obtain(client, org, "owner@acme.test").json()["access"]

    keys = client.get("/.well-known/jwks.json").json()["keys"]

    assert [key["kid"] for key in keys] == [jwt.get_unverified_header(access)["kid"]]
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and "d" not in keys[0]


def test_rotation_signs_with_the_new_key_and_keeps_the_old_one_published(client: Client, org, owner) -> None:
    old_access = obtain(client, org, "owner@acme.test").json()["access"]
    old_kid = jwt.get_unverified_header(old_access)["kid"]

    new_key = keyring.signing_key_rotate()
    new_access = obtain(client, org, "owner@acme.test").json()["access"]

    assert jwt.get_unverified_header(new_access)["kid"] == new_key.kid != old_kid
    published = {key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]}
    assert published == {old_kid, new_key.kid}
    assert verify_access_token(old_access, tenant_id=str(org.id)).user_id == str(owner.user_id)
    assert verify_access_token(new_access, tenant_id=str(org.id)).user_id == str(owner.user_id)


def test_a_key_retired_longer_than_an_access_token_lives_leaves_the_jwks(client: Client, org, owner) -> None:
    keyring.signing_key_ensure()
    old = SigningKey.objects.get()
    keyring.signing_key_rotate()
    SigningKey.objects.filter(pk=old.pk).update(retired_at=timezone.now() - dt.timedelta(minutes=16))

    published = {key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]}

    assert old.kid not in published
    assert len(published) == 1


def test_rotate_signing_key_command(org) -> None:
    from django.core.management import call_command

    keyring.signing_key_ensure()
    call_command("rotate_signing_key")

    assert SigningKey.objects.filter(retired_at=None).count() == 1
    assert SigningKey.objects.count() == 2
