"""Real RS256 access tokens for tests, verified by apps.common.auth through a key resolver."""

import time
import uuid
from collections.abc import Iterable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TEST_KID = "projects-test-key"
_private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_PEM = _private_key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)


def public_key_for_kid(kid: str) -> object | None:
    return _private_key.public_key() if kid == TEST_KID else None


def make_token(
    *,
    user_id: str,
    tenant_id: str,
    permissions: Iterable[str] = (),
    roles: Iterable[str] = ("member",),
    lifetime: int = 900,
) -> str:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "tenantId": tenant_id,
        "roles": list(roles),
        "permissions": sorted(permissions),
        "iat": now,
        "exp": now + lifetime,
        "iss": "kanban-identity",
        "aud": "kanban-platform",
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, PRIVATE_PEM, algorithm="RS256", headers={"kid": TEST_KID})


@pytest.fixture(scope="session", autouse=True)
def _verify_with_test_key() -> None:
    from django.conf import settings

    settings.JWT_PUBLIC_KEY_RESOLVER = "tests.projects.tokens.public_key_for_kid"
    settings.JWT_ISSUER = "kanban-identity"
    settings.JWT_AUDIENCE = "kanban-platform"
