"""Checks that a service's backing servers answer, for `/readyz`.

Each check returns None when the server answers, or a short reason when it does not.
A check never waits longer than settings.READINESS_TIMEOUT.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections


def check_database() -> str | None:
    for alias in connections:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            return f"{alias}: {type(exc).__name__}: {exc}".strip()[:300]
    return None


def check_cache() -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=settings.READINESS_TIMEOUT,
            socket_connect_timeout=settings.READINESS_TIMEOUT,
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def check_broker() -> str | None:
    from kombu.connection import Connection

    try:
        with Connection(settings.BROKER_URL, connect_timeout=settings.READINESS_TIMEOUT) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1, timeout=settings.READINESS_TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def check_mongo() -> str | None:
    import pymongo

    timeout_ms = int(settings.READINESS_TIMEOUT * 1000)
    try:
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            settings.MONGO_URL, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
        )
        try:
            client.admin.command("ping")
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "mongo": check_mongo,
}


def readiness_report() -> tuple[bool, dict[str, str]]:
    """Run the checks this service declares in settings.READINESS_CHECKS."""
    report: dict[str, str] = {}
    for name in settings.READINESS_CHECKS:
        failure = CHECKS[name]()
        report[name] = "ok" if failure is None else failure
    return all(value == "ok" for value in report.values()), report
