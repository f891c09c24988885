"""Fixtures for every suite. Suites without Django (gateway, platform, ...) get nothing from here."""

from collections.abc import Iterator

import pytest

FAST_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hasher() -> Iterator[None]:
    """Passwords hash with MD5 first (Argon2 still verifies): a test that signs up or in does not
    pay ~50 ms a hash. A test of the real hashing asks for `production_password_hashers`."""
    from django.conf import settings

    if not settings.configured:
        yield
        return
    from django.test.utils import override_settings

    # override_settings sends setting_changed, which clears Django's cached hasher list.
    fast = override_settings(PASSWORD_HASHERS=[FAST_HASHER, *settings.PASSWORD_HASHERS])
    fast.enable()
    yield
    fast.disable()


@pytest.fixture
def production_password_hashers(settings) -> None:
    """The service's own hashers (Argon2 first), for a test whose point is the real hashing."""
    settings.PASSWORD_HASHERS = [name for name in settings.PASSWORD_HASHERS if name != FAST_HASHER]
