"""Expired refresh tokens leave the database (services.refresh_tokens_purge, its Celery task)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.identity import services, tasks
from apps.identity.models import RefreshToken
from apps.identity.tokens import PlatformRefreshToken
from tests.identity.conftest import assert_error, tenant_headers

pytestmark = pytest.mark.django_db


def _issue(owner, count: int = 1) -> list[str]:
    return [services.token_pair_issue(membership=owner).refresh for _ in range(count)]


def _jti(raw_refresh: str) -> str:
    return PlatformRefreshToken(raw_refresh, verify=False)["jti"]


def _expire(raw_refresh: str, *, ago: timedelta, access_ago: timedelta | None = None) -> None:
    """Moves a token's row back in time, as if it had been issued long ago."""
    jti = _jti(raw_refresh)
    at = timezone.now() - ago
    access_at = at if access_ago is None else timezone.now() - access_ago
    assert RefreshToken.objects.filter(jti=jti).update(expires_at=at, access_expires_at=access_at) == 1


def _left() -> set[str]:
    return set(RefreshToken.objects.values_list("jti", flat=True))


def test_purge_deletes_only_tokens_expired_longer_ago_than_asked(owner) -> None:
    live, recent, old, older = _issue(owner, 4)
    _expire(recent, ago=timedelta(hours=1))
    _expire(old, ago=timedelta(days=2))
    _expire(older, ago=timedelta(days=30))

    assert services.refresh_tokens_purge(older_than=timedelta(days=1)) == 2

    assert _left() == {_jti(live), _jti(recent)}
    assert services.refresh_tokens_purge(older_than=timedelta(days=1)) == 0


def test_purge_works_in_batches_and_counts_them_all(owner) -> None:
    tokens = _issue(owner, 5)
    for raw in tokens:
        _expire(raw, ago=timedelta(days=3))

    assert services.refresh_tokens_purge(older_than=timedelta(days=1), chunk=2) == 5
    assert _left() == set()


def test_a_row_whose_access_token_still_lives_is_kept(owner) -> None:
    (raw,) = _issue(owner)
    _expire(raw, ago=timedelta(days=3), access_ago=-timedelta(minutes=5))

    assert services.refresh_tokens_purge(older_than=timedelta(days=1)) == 0
    assert _left() == {_jti(raw)}


def _refresh(client: Client, org, raw_refresh: str):
    return client.post(
        "/api/auth/refresh", {"refresh": raw_refresh}, content_type="application/json", **tenant_headers(org)
    )


def test_the_session_goes_on_after_its_expired_tokens_are_purged(client: Client, org, owner) -> None:
    used, current = _issue(owner, 2)
    family = RefreshToken.objects.get(jti=_jti(current)).family
    RefreshToken.objects.filter(jti=_jti(used)).update(family=family, used_at=timezone.now())
    _expire(used, ago=timedelta(days=3))

    assert services.refresh_tokens_purge() == 1

    rotated = _refresh(client, org, current)
    assert rotated.status_code == 200, rotated.content
    # (In life its signature has expired too.) A purged token is refused whatever it claims.
    assert_error(_refresh(client, org, used), 401, "invalid_token")


def test_the_celery_task_runs_the_purge(owner) -> None:
    keep, drop = _issue(owner, 2)
    _expire(drop, ago=timedelta(hours=30))

    assert tasks.refresh_tokens_purge.name == "apps.identity.tasks.refresh_tokens_purge"
    assert tasks.refresh_tokens_purge.apply(kwargs={"older_than_hours": 24}).get() == 1
    assert _left() == {_jti(keep)}
