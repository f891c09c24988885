"""Real RS256 access tokens for tests, verified by apps.common.auth through a key resolver."""

import pytest

from tests.helpers import AUDIENCE, ISSUER, TestSigningKey, access_claims

KEY = TestSigningKey("projects-test-key")


def public_key_for_kid(kid: str) -> object | None:
    return KEY.public_key() if kid == KEY.kid else None


def make_token(*, user_id: str, tenant_id: str, **claims: object) -> str:
    """A token `apps.common.auth` accepts in this suite; `claims` as tests.helpers.access_claims takes them."""
    return KEY.sign(access_claims(tenant_id, user_id=user_id, **claims))


@pytest.fixture(scope="session", autouse=True)
def _verify_with_test_key() -> None:
    from django.conf import settings

    settings.JWT_PUBLIC_KEY_RESOLVER = "tests.projects.tokens.public_key_for_kid"
    settings.JWT_ISSUER = ISSUER
    settings.JWT_AUDIENCE = AUDIENCE
