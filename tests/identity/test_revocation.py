"""Item 12 of issue 8: signing out ends the access token too, not only the refresh token.

Identity writes `revoked-jti:<jti>` (value "1", expiring with the token) in the Redis DB of
REDIS_URL; apps/common/auth.py (every service) refuses such a token with 401 `token_revoked`.
"""

import time

import pytest
import redis
from django.test import Client, RequestFactory
from ninja.errors import HttpError

from apps.common.auth import InvalidToken, NinjaJWTAuth, revoked_jti_key, verify_access_token
from apps.identity.models import RefreshToken
from tests.identity.conftest import PASSWORD, assert_error, bearer, obtain, tenant_headers

pytestmark = pytest.mark.django_db


def _me(client: Client, org, access: str):
    return client.get("/api/auth/me", **bearer(org, access))


def _logout(client: Client, org, refresh: str, **extra: str):
    return client.post(
        "/api/auth/logout", {"refresh": refresh}, content_type="application/json", **tenant_headers(org), **extra
    )


def test_api_logout_revokes_the_access_token_for_as_long_as_it_would_live(client: Client, org, owner, settings) -> None:
    pair = obtain(client, org, "owner@acme.test").json()
    claims = verify_access_token(pair["access"], tenant_id=str(org.id))
    assert _me(client, org, pair["access"]).status_code == 200

    assert _logout(client, org, pair["refresh"]).status_code == 204

    assert_error(_me(client, org, pair["access"]), 401, "token_revoked")
    with pytest.raises(InvalidToken) as refused:
        verify_access_token(pair["access"], tenant_id=str(org.id))
    assert refused.value.code == "token_revoked"
    store = redis.Redis.from_url(settings.REDIS_URL)
    assert store.get(revoked_jti_key(claims.jti)) == b"1"
    assert 0 < store.ttl(revoked_jti_key(claims.jti)) <= claims.expires_at - int(time.time()) + 1


def test_logout_ends_the_sessions_earlier_access_tokens_after_rotation(client: Client, org, owner) -> None:
    first = obtain(client, org, "owner@acme.test").json()
    rotated = client.post(
        "/api/auth/refresh", {"refresh": first["refresh"]}, content_type="application/json", **tenant_headers(org)
    ).json()

    _logout(client, org, rotated["refresh"])

    assert_error(_me(client, org, first["access"]), 401, "token_revoked")
    assert_error(_me(client, org, rotated["access"]), 401, "token_revoked")


def test_logout_also_ends_the_presented_access_token_of_another_session(client: Client, org, owner) -> None:
    one = obtain(client, org, "owner@acme.test").json()
    other = obtain(client, org, "owner@acme.test").json()

    _logout(client, org, one["refresh"], HTTP_AUTHORIZATION=f"Bearer {other['access']}")

    assert_error(_me(client, org, other["access"]), 401, "token_revoked")


def test_logout_leaves_other_sessions_alone(client: Client, org, owner) -> None:
    one = obtain(client, org, "owner@acme.test").json()
    other = obtain(client, org, "owner@acme.test").json()

    _logout(client, org, one["refresh"])

    assert _me(client, org, other["access"]).status_code == 200


def test_form_logout_revokes_the_access_cookie(org, owner) -> None:
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/login", **tenant_headers(org))
    csrf = page.cookies["csrftoken"].value
    browser.post(
        "/login", {"email": "owner@acme.test", "password": PASSWORD, "csrfmiddlewaretoken": csrf}, **tenant_headers(org)
    )
    access = browser.cookies["access_token"].value
    assert _me(Client(), org, access).status_code == 200

    browser.post("/logout", {"csrfmiddlewaretoken": csrf}, **tenant_headers(org))

    assert_error(_me(Client(), org, access), 401, "token_revoked")
    assert RefreshToken.objects.filter(revoked_at=None).count() == 0


def test_password_change_ends_every_session_and_answers_a_fresh_pair(
    client: Client, org, owner, make_org, make_member
) -> None:
    other_org = make_org("globex")
    make_member(other_org, "owner@acme.test")
    here = obtain(client, org, "owner@acme.test").json()
    elsewhere = obtain(client, other_org, "owner@acme.test").json()

    changed = client.post(
        "/api/auth/password",
        {"current_password": PASSWORD, "new_password": "a-brand-new-pass-7"},
        content_type="application/json",
        **bearer(org, here["access"]),
    )

    assert changed.status_code == 200, changed.content
    assert_error(_me(client, org, here["access"]), 401, "token_revoked")
    assert_error(_me(client, other_org, elsewhere["access"]), 401, "token_revoked")
    refresh = client.post(
        "/api/auth/refresh", {"refresh": here["refresh"]}, content_type="application/json", **tenant_headers(org)
    )
    assert_error(refresh, 401)
    assert _me(client, org, changed.json()["access"]).status_code == 200
    assert_error(obtain(client, org, "owner@acme.test", PASSWORD), 401, "invalid_credentials")
    assert obtain(client, org, "owner@acme.test", "a-brand-new-pass-7").status_code == 200


def test_password_change_with_a_wrong_current_password_changes_nothing(client: Client, org, owner) -> None:
    pair = obtain(client, org, "owner@acme.test").json()

    response = client.post(
        "/api/auth/password",
        {"current_password": "not-the-password-1", "new_password": "a-brand-new-pass-7"},
        content_type="application/json",
        **bearer(org, pair["access"]),
    )

    assert_error(response, 401, "invalid_credentials")
    assert _me(client, org, pair["access"]).status_code == 200
    assert obtain(client, org, "owner@acme.test", PASSWORD).status_code == 200


def test_password_change_needs_a_signed_in_member(client: Client, org, owner) -> None:
    response = client.post(
        "/api/auth/password",
        {"current_password": PASSWORD, "new_password": "a-brand-new-pass-7"},
        content_type="application/json",
        **tenant_headers(org),
    )

    assert response.status_code in (401, 403)
    assert obtain(client, org, "owner@acme.test", PASSWORD).status_code == 200


def test_a_revocation_store_outage_does_not_stop_logout(client: Client, org, owner, settings) -> None:
    pair = obtain(client, org, "owner@acme.test").json()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    assert _logout(client, org, pair["refresh"]).status_code == 204
    assert RefreshToken.objects.filter(revoked_at=None).count() == 0


def test_every_services_verifier_names_the_revocation(client: Client, org, owner) -> None:
    """apps.common.auth for Ninja services (projects): 401 `token_revoked`, not a bare 401."""
    pair = obtain(client, org, "owner@acme.test").json()
    _logout(client, org, pair["refresh"])
    request = RequestFactory().get(
        "/api/projects", HTTP_AUTHORIZATION=f"Bearer {pair['access']}", HTTP_X_TENANT_ID=str(org.id)
    )

    with pytest.raises(HttpError) as refused:
        NinjaJWTAuth()(request)

    assert refused.value.status_code == 401
    assert refused.value.code == "token_revoked"
