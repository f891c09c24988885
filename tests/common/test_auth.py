"""apps.common.auth as another service uses it: keys from identity's JWKS over real HTTP (live_server)."""

import base64
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import RequestFactory
from rest_framework import exceptions

from apps.common import auth
from apps.common.auth import InvalidToken, JWTAuthentication, WrongTenant, verify_access_token
from apps.identity import keyring, services
from apps.identity.keys import private_key_from_pem
from apps.identity.models import SigningKey
from tests.helpers import access_claims, token_sign


@pytest.fixture
def remote_keys(settings, live_server):
    """Verify as a service other than identity would: JWKS fetched from identity over HTTP."""
    settings.JWT_PUBLIC_KEY_RESOLVER = None
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "identity": live_server.url}
    settings.JWKS_MIN_REFETCH = 0
    auth.jwks_cache.clear()
    yield
    auth.jwks_cache.clear()


@pytest.fixture
def issued(transactional_db, remote_keys):
    organization = services.organization_ensure(tenant_id=uuid.uuid4(), slug="acme")
    user = services.User.objects.create_user("dev@acme.test", "irrelevant-pass-1")
    membership = services.membership_create(user=user, organization=organization, role_name="member")
    pair = services.token_pair_issue(membership=membership)
    return organization, pair


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(tenant_id: str, **overrides: object) -> dict:
    claims = access_claims(
        tenant_id,
        user_id="1",
        roles=["owner"],
        permissions=["manage_roles"],
        lifetime=300,
        token_type="access",
    )
    claims.update(overrides)  # as they are: a test may put a claim of the wrong type
    return claims


def _sign_with_identity_key(claims: dict, **header: str) -> str:
    key = SigningKey.objects.get(retired_at=None)
    return token_sign(claims, private_key_from_pem(key.private_key_pem), kid=key.kid, headers=header)


def test_a_real_token_verifies_through_the_jwks(issued) -> None:
    organization, pair = issued

    claims = verify_access_token(pair.access, tenant_id=str(organization.id))

    assert claims.tenant_id == str(organization.id)
    assert claims.roles == ("member",)
    assert claims.has_permission("move_task") and not claims.has_permission("manage_roles")


def test_alg_none_is_refused(issued) -> None:
    organization, _ = issued
    kid = SigningKey.objects.get().kid
    forged = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(_claims(str(organization.id)))}."

    with pytest.raises(InvalidToken, match="algorithm"):
        verify_access_token(forged, tenant_id=str(organization.id))


def test_hs256_signed_with_the_public_key_is_refused(issued) -> None:
    organization, _ = issued
    key = SigningKey.objects.get()
    payload = _claims(str(organization.id))
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{_b64(header)}.{_b64(payload)}".encode()
    import hashlib
    import hmac

    mac = hmac.new(key.public_key_pem.encode(), signing_input, hashlib.sha256).digest()
    forged = f"{signing_input.decode()}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    with pytest.raises(InvalidToken, match="algorithm"):
        verify_access_token(forged, tenant_id=str(organization.id))


def test_a_key_identity_never_published_is_refused(issued) -> None:
    organization, _ = issued
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = token_sign(_claims(str(organization.id)), stranger, kid="made-up")
    same_kid = token_sign(_claims(str(organization.id)), stranger, kid=SigningKey.objects.get().kid)

    with pytest.raises(InvalidToken, match="unknown key"):
        verify_access_token(forged, tenant_id=str(organization.id))
    with pytest.raises(InvalidToken, match="Signature verification failed"):
        verify_access_token(same_kid, tenant_id=str(organization.id))


def test_expired_token_is_refused(issued) -> None:
    organization, _ = issued
    expired = _sign_with_identity_key(
        _claims(str(organization.id), iat=int(time.time()) - 900, exp=int(time.time()) - 1)
    )

    with pytest.raises(InvalidToken) as refused:
        verify_access_token(expired, tenant_id=str(organization.id))
    assert refused.value.code == "token_expired"


@pytest.mark.parametrize(
    "overrides",
    [{"aud": "someone-else"}, {"iss": "not-identity"}, {"token_type": "refresh"}, {"roles": "owner"}],
)
def test_wrong_claims_are_refused(issued, overrides) -> None:
    organization, _ = issued

    with pytest.raises(InvalidToken):
        verify_access_token(
            _sign_with_identity_key(_claims(str(organization.id), **overrides)), tenant_id=str(organization.id)
        )


def test_missing_required_claim_is_refused(issued) -> None:
    organization, _ = issued
    claims = _claims(str(organization.id))
    del claims["jti"]

    with pytest.raises(InvalidToken):
        verify_access_token(_sign_with_identity_key(claims), tenant_id=str(organization.id))


def test_another_tenants_token_is_refused(issued) -> None:
    _, pair = issued

    with pytest.raises(WrongTenant):
        verify_access_token(pair.access, tenant_id=str(uuid.uuid4()))
    with pytest.raises(WrongTenant):
        verify_access_token(pair.access, tenant_id=None)


def test_refresh_token_is_refused_as_an_access_token(issued) -> None:
    organization, pair = issued

    with pytest.raises(InvalidToken):
        verify_access_token(pair.refresh, tenant_id=str(organization.id))


def test_a_rotated_key_is_picked_up_on_an_unknown_kid(issued) -> None:
    organization, pair = issued
    verify_access_token(pair.access, tenant_id=str(organization.id))  # warms the cache with the first key
    keyring.signing_key_rotate()
    membership = services.Membership.objects.get()

    fresh = services.token_pair_issue(membership=membership).access

    assert verify_access_token(fresh, tenant_id=str(organization.id)).user_id == str(membership.user_id)
    assert verify_access_token(pair.access, tenant_id=str(organization.id)).user_id == str(membership.user_id)


def test_drf_authentication_class(issued) -> None:
    organization, pair = issued
    factory = RequestFactory()
    from rest_framework.request import Request

    good = Request(factory.get("/x", HTTP_AUTHORIZATION=f"Bearer {pair.access}", HTTP_X_TENANT_ID=str(organization.id)))
    principal, claims = JWTAuthentication().authenticate(good)
    assert principal.is_authenticated and principal.id == claims.user_id

    bad = Request(factory.get("/x", HTTP_AUTHORIZATION="Bearer nope", HTTP_X_TENANT_ID=str(organization.id)))
    with pytest.raises(exceptions.AuthenticationFailed):
        JWTAuthentication().authenticate(bad)

    cookie_write = factory.post("/x", HTTP_X_TENANT_ID=str(organization.id))
    cookie_write.COOKIES["access_token"] = pair.access
    with pytest.raises(exceptions.PermissionDenied, match="CSRF"):
        JWTAuthentication().authenticate(Request(cookie_write))


def test_websocket_helper_reads_the_subprotocol_and_guards_cookies(issued) -> None:
    organization, pair = issued
    tenant = str(organization.id).encode()
    by_protocol = {
        "headers": [(b"sec-websocket-protocol", f"bearer, {pair.access}".encode()), (b"x-tenant-id", tenant)]
    }
    cross_site_cookie = {
        "headers": [
            (b"cookie", f"access_token={pair.access}".encode()),
            (b"x-tenant-id", tenant),
            (b"host", b"acme.localhost:8000"),
            (b"origin", b"http://evil.test"),
        ]
    }
    same_site_cookie = {
        "headers": [
            (b"cookie", f"access_token={pair.access}".encode()),
            (b"x-tenant-id", tenant),
            (b"host", b"acme.localhost:8000"),
            (b"origin", b"http://acme.localhost:8000"),
        ]
    }

    claims, subprotocol = auth.authenticate_scope(by_protocol)
    assert subprotocol == "bearer" and claims.tenant_id == str(organization.id)
    with pytest.raises(InvalidToken, match="same-origin"):
        auth.authenticate_scope(cross_site_cookie)
    assert auth.authenticate_scope(same_site_cookie)[1] is None
