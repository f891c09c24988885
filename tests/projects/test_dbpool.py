"""A service whose connection pool is empty answers 503 `service_busy` at once, not 500 or a hang.

The real pool of the default alias, shrunk to one connection that another thread holds; real
PostgreSQL. The middleware path (the tenant lookup) and the view path (Ninja) are both covered.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connections

from apps.projects.tenants import selectors as tenant_selectors
from tests.projects.conftest import MEMBER_PERMISSIONS
from tests.projects.test_api import ApiClient


@pytest.fixture
def one_connection_pool(committed: dict) -> Iterator[None]:
    options = connections["default"].settings_dict["OPTIONS"]["pool"]
    saved = dict(options)
    connections.close_all()
    connections["default"].close_pool()
    options.update(min_size=0, max_size=1, timeout=0.3)
    try:
        yield
    finally:
        connections.close_all()
        connections["default"].close_pool()
        options.clear()
        options.update(saved)


@contextmanager
def pool_held() -> Iterator[None]:
    """Another thread holds the pool's only connection for the duration of the block."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        connections["default"].ensure_connection()
        holding.set()
        release.wait(10)
        connections["default"].close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(5)
        yield
    finally:
        release.set()
        holder.join(5)


def _assert_busy(response, started: float) -> None:
    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert error["code"] == "service_busy"
    assert error["request_id"] == "req-test-1"
    assert response["Retry-After"] == "1"
    assert time.monotonic() - started < 3  # the pool's timeout, not the gateway's


def test_a_request_that_finds_the_pool_empty_gets_503_service_busy(committed, one_connection_pool) -> None:
    client = ApiClient(committed["proj_a"], "user-member", MEMBER_PERMISSIONS)
    tenant_selectors._active_tenants.clear()  # the tenant lookup (a middleware) is the first query

    with pool_held():
        started = time.monotonic()
        _assert_busy(client.get("/api/projects"), started)

    assert client.get("/api/projects").status_code == 200


def test_a_view_that_finds_the_pool_empty_gets_503_service_busy(committed, one_connection_pool) -> None:
    client = ApiClient(committed["proj_a"], "user-member", MEMBER_PERMISSIONS)
    assert client.get("/api/projects").status_code == 200  # the tenant is remembered: the view queries first
    connections.close_all()

    with pool_held():
        started = time.monotonic()
        _assert_busy(client.get("/api/projects"), started)
