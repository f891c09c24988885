import threading
import uuid

import pytest
import redis
from django.db import connection
from django.test import Client

from apps.identity import services
from apps.identity.models import RefreshToken
from tests.identity.conftest import PASSWORD, THROTTLE_REDIS_URL, assert_error, obtain, tenant_headers

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
    """The test client's peer is 127.0.0.1, the gateway (TRUSTED_PROXY_IPS): its one entry is believed."""
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


def test_rotating_forwarded_for_from_an_untrusted_peer_escapes_nothing(client: Client, org, owner) -> None:
    """Someone reaching identity directly (not through the gateway) is judged by the socket address."""
    for attempt in range(20):
        obtain(
            client,
            org,
            f"guess-{attempt}@acme.test",
            "wrong-password-1",
            REMOTE_ADDR="198.51.100.20",
            HTTP_X_FORWARDED_FOR=f"10.9.{attempt}.1",
        )

    blocked = obtain(client, org, "owner@acme.test", REMOTE_ADDR="198.51.100.20", HTTP_X_FORWARDED_FOR="10.9.99.1")

    assert_error(blocked, 429, "throttled")


def _form_login(client: Client, org, email: str, password: str):
    return client.post("/login", {"email": email, "password": password}, **tenant_headers(org))


def test_the_sign_in_form_counts_against_the_same_limit_as_the_api(client: Client, org, owner) -> None:
    for _ in range(3):
        assert _form_login(client, org, "owner@acme.test", "wrong-password-1").status_code == 401
    for _ in range(2):
        assert_error(obtain(client, org, "owner@acme.test", "wrong-password-1"), 401, "invalid_credentials")

    assert_error(obtain(client, org, "owner@acme.test", PASSWORD), 429, "throttled")
    form = _form_login(client, org, "owner@acme.test", PASSWORD)
    assert form.status_code == 429
    assert int(form["Retry-After"]) > 0
    assert "access_token" not in form.cookies


def test_the_invitation_page_counts_an_existing_accounts_sign_in(client: Client, org, owner, make_org) -> None:
    _, raw_token = services.invitation_create(
        organization=make_org("globex"), email="owner@acme.test", role_name="member", actor=None
    )
    for _ in range(5):
        response = client.post(
            "/api/users/invitations/accept",
            {"token": raw_token, "password": "wrong-password-1"},
            content_type="application/json",
        )
        assert_error(response, 401, "invalid_credentials")

    assert_error(obtain(client, org, "owner@acme.test", PASSWORD), 429, "throttled")


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_wrong_passwords_evaluate_no_more_than_the_limit(settings) -> None:
    """Real threads, real PostgreSQL and Redis: the slot is taken before the password is checked."""
    organization = services.organization_ensure(tenant_id=uuid.uuid4(), slug="race-lock")
    user = services.user_create(email="target@race.test", password=PASSWORD)
    services.membership_create(user=user, organization=organization, role_name="member")
    barrier = threading.Barrier(20)
    outcomes: list[int] = []
    lock = threading.Lock()

    def guess(number: int) -> None:
        barrier.wait()
        try:
            response = obtain(
                Client(), organization, "target@race.test", f"wrong-guess-{number}", REMOTE_ADDR=f"203.0.113.{number}"
            )
            with lock:
                outcomes.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(number,)) for number in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    limit = settings.LOGIN_FAILURES_PER_ACCOUNT
    assert sorted(outcomes) == [401] * limit + [429] * (20 - limit)
    account_keys = list(
        redis.Redis.from_url(THROTTLE_REDIS_URL).scan_iter(f"{settings.LOGIN_THROTTLE_PREFIX}:account:*")
    )
    assert [int(redis.Redis.from_url(THROTTLE_REDIS_URL).get(key)) for key in account_keys] == [limit]
    assert_error(obtain(Client(), organization, "target@race.test", PASSWORD), 429, "throttled")
