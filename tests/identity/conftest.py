import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.test import Client

from apps.identity import services
from apps.identity.models import Membership, Organization
from tests.helpers import REDIS_URL, free_port
from tests.mail import mailcatcher

PASSWORD = "correct-horse-battery-9"
THROTTLE_REDIS_URL = REDIS_URL


@pytest.fixture(autouse=True)
def isolated_login_throttle(settings) -> None:
    """Each test counts failed logins under its own Redis prefix, in a Redis DB no other suite uses."""
    settings.LOGIN_THROTTLE_REDIS_URL = THROTTLE_REDIS_URL
    settings.LOGIN_THROTTLE_PREFIX = f"test-identity:{uuid.uuid4().hex}"
    # revoked-jti keys (jtis are unique, so tests never see each other's) in the same spare DB.
    settings.REDIS_URL = THROTTLE_REDIS_URL
    yield
    client = redis.Redis.from_url(THROTTLE_REDIS_URL)
    keys = list(client.scan_iter(f"{settings.LOGIN_THROTTLE_PREFIX}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def make_org(db) -> Callable[..., Organization]:
    def make(slug: str | None = None) -> Organization:
        slug = slug or f"org-{uuid.uuid4().hex[:8]}"
        return services.organization_ensure(tenant_id=uuid.uuid4(), slug=slug, name=slug.title())

    return make


@pytest.fixture
def make_member(db) -> Callable[..., Membership]:
    def make(
        organization: Organization, email: str | None = None, role: str = "member", *, verified: bool = True
    ) -> Membership:
        email = email or f"user-{uuid.uuid4().hex[:8]}@example.test"
        user = services.User.objects.filter(email=email).first() or services.user_create(
            email=email, password=PASSWORD, email_verified=verified
        )
        return services.membership_create(user=user, organization=organization, role_name=role)

    return make


@pytest.fixture
def org(make_org) -> Organization:
    return make_org("acme")


@pytest.fixture
def owner(org, make_member) -> Membership:
    return make_member(org, "owner@acme.test", role="owner")


def tenant_headers(organization: Organization) -> dict[str, str]:
    return {"HTTP_X_TENANT_ID": str(organization.id), "HTTP_X_TENANT_SLUG": organization.slug}


def obtain(client: Client, organization: Organization, email: str, password: str = PASSWORD, **extra: str):
    return client.post(
        "/api/auth/token",
        {"email": email, "password": password},
        content_type="application/json",
        **tenant_headers(organization),
        **extra,
    )


def bearer(organization: Organization, access: str) -> dict[str, str]:
    return {**tenant_headers(organization), "HTTP_AUTHORIZATION": f"Bearer {access}"}


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["message"]
    assert "request_id" in body["error"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def mailbox(tmp_path: Path, settings) -> Iterator[Path]:
    """The real development SMTP server (aiosmtpd, platform/mailcatcher.py) on a free port; Django's
    SMTP backend sends to it. Yields the directory the messages land in."""
    directory = tmp_path / "mail"
    port = free_port()
    with mailcatcher().mailcatcher_run(port=port, directory=directory):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        yield directory


def mails_to(directory: Path, address: str) -> list:
    return mailcatcher().mail_to(directory, address)


def link_in_mail(directory: Path, address: str, path_pattern: str) -> str:
    """The token after `path_pattern` (a regex for the path before it) in the newest mail to `address`."""
    received = mails_to(directory, address)
    assert received, f"no mail to {address}"
    match = re.search(path_pattern + r"([^\s/]+)", received[-1].text)
    assert match, received[-1].text
    return match.group(1)


def verification_token(directory: Path, address: str) -> str:
    return link_in_mail(directory, address, r"/login/verify/")


def invitation_token(directory: Path, address: str) -> str:
    return link_in_mail(directory, address, r"/login/invitation/")
