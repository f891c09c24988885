import threading
import uuid

import pytest
from django.db import connection

from apps.identity import services
from apps.identity.models import RefreshToken


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
        except services.InvalidRefreshToken as exc:
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
