import threading
import uuid

import pytest
from django.db import connection

from apps.identity import services
from apps.identity.errors import InvalidCredentials, InvalidRefreshToken
from apps.identity.models import RefreshToken
from apps.identity.verification import verification_token_make


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_refreshes_of_one_token_leave_one_winner_and_a_revoked_family() -> None:
    organization = services.organization_ensure(tenant_id=uuid.uuid4(), slug="race")
    user = services.User.objects.create_user("racer@race.test", "irrelevant-pass-1")
    membership = services.membership_create(user=user, organization=organization, role_name="member")
    refresh = services.token_pair_issue(membership=membership).refresh
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def rotate() -> None:
        barrier.wait()
        try:
            outcomes.append(services.refresh_token_rotate(raw_token=refresh, tenant_id=organization.id))
        except InvalidRefreshToken as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["TokenPair", "str"]
    assert "token_reused" in outcomes
    assert RefreshToken.objects.filter(revoked_at=None).count() == 0


def test_openapi_lists_the_public_endpoints_but_not_internal_ones(client) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert {"/api/auth/token", "/api/auth/refresh", "/api/users", "/api/roles", "/.well-known/jwks.json"} <= set(paths)
    assert not any(path.startswith("/internal") for path in paths)


@pytest.mark.django_db(transaction=True)
def test_a_sign_in_racing_a_verification_never_keeps_a_session() -> None:
    """The attacker signs in with their password over and over while the victim verifies: whatever
    the interleaving, no session issued for the old password outlives the verification."""
    organization = services.organization_ensure(tenant_id=uuid.uuid4(), slug="race-verify")
    user = services.user_create(email="victim@race.test", password="attackers-pass-1")
    services.membership_create(user=user, organization=organization, role_name="owner")
    token = verification_token_make(user=user)
    stop, first_issued = threading.Event(), threading.Event()
    issued: list[str] = []

    def attacker() -> None:
        try:
            while not stop.is_set():
                membership = services.selectors.membership_get(user_id=user.pk, tenant_id=organization.id)
                if membership is None or not membership.user.check_password("attackers-pass-1"):
                    break
                try:
                    issued.append(services.token_pair_issue(membership=membership).refresh)
                except InvalidCredentials:
                    break
                first_issued.set()
        finally:
            connection.close()

    thread = threading.Thread(target=attacker)
    thread.start()
    try:
        assert first_issued.wait(timeout=30)
        services.email_verify(token=token, password="victims-own-pass-2")
    finally:
        stop.set()
        thread.join()

    assert issued, "the attacker never got a session before the verification"
    survivors = RefreshToken.objects.filter(user=user, revoked_at=None).count()
    assert survivors == 0
    connection.close()
