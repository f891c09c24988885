import pytest
from django.test import Client

from apps.identity.models import RefreshToken
from tests.identity.conftest import PASSWORD, assert_error, obtain

pytestmark = pytest.mark.django_db


def test_sixth_attempt_on_an_account_is_throttled_even_with_the_right_password(client: Client, org, owner) -> None:
    for _ in range(5):
        assert_error(obtain(client, org, "owner@acme.test", "wrong-password-1"), 401, "invalid_credentials")

    response = obtain(client, org, "owner@acme.test", PASSWORD)

    error = assert_error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60
    assert "Try again" in error["message"]
    assert RefreshToken.objects.count() == 0


def test_account_throttle_does_not_block_other_accounts(client: Client, org, owner, make_member) -> None:
    make_member(org, "dev@acme.test")
    for _ in range(5):
        obtain(client, org, "owner@acme.test", "wrong-password-1")

    assert obtain(client, org, "dev@acme.test").status_code == 200


def test_one_ip_is_throttled_after_twenty_failures_across_accounts(client: Client, org, owner) -> None:
    for attempt in range(20):
        obtain(client, org, f"guess-{attempt}@acme.test", "wrong-password-1", REMOTE_ADDR="203.0.113.7")

    blocked = obtain(client, org, "owner@acme.test", REMOTE_ADDR="203.0.113.7")
    elsewhere = obtain(client, org, "owner@acme.test", REMOTE_ADDR="198.51.100.1")

    assert_error(blocked, 429, "throttled")
    assert elsewhere.status_code == 200


def test_ip_comes_from_the_gateways_forwarded_for_entry(client: Client, org, owner) -> None:
    for attempt in range(20):
        obtain(
            client,
            org,
            f"guess-{attempt}@acme.test",
            "wrong-password-1",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{attempt}, 203.0.113.9",  # a client-chosen prefix changes nothing
        )

    assert_error(obtain(client, org, "owner@acme.test", HTTP_X_FORWARDED_FOR="203.0.113.9"), 429, "throttled")


def test_a_successful_login_clears_the_accounts_failures(client: Client, org, owner) -> None:
    for _ in range(4):
        obtain(client, org, "owner@acme.test", "wrong-password-1")
    assert obtain(client, org, "owner@acme.test").status_code == 200

    for _ in range(4):
        obtain(client, org, "owner@acme.test", "wrong-password-1")

    assert obtain(client, org, "owner@acme.test").status_code == 200


def test_sign_in_still_works_when_the_throttles_redis_is_down(client: Client, org, owner, settings) -> None:
    settings.LOGIN_THROTTLE_REDIS_URL = "redis://127.0.0.1:1/0"

    assert_error(obtain(client, org, "owner@acme.test", "wrong-password-1"), 401, "invalid_credentials")
    assert obtain(client, org, "owner@acme.test").status_code == 200
