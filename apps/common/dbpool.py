"""What a request gets when its service has no database connection to spare: a fast JSON 503.

Every process keeps bounded psycopg pools (config/settings/base.py, docs/benchmarks.md
"Connection budget"). A request that waits DB_POOL_TIMEOUT seconds for a connection gets
503 `service_busy` with Retry-After, not a 500 and not a hang, and PostgreSQL never sees more
connections than the budget, so one busy service cannot take the others' connections.

Where the exhaustion surfaces, and who turns it into the 503:
- a Django or DRF view: `DatabasePoolMiddleware.process_exception` (in base MIDDLEWARE);
- a Ninja view: the handler `ninja_install` registers, from `apps.common.ninja.platform_api`;
- a middleware's own query (the projects tenant lookup): that middleware calls `busy_response`.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

import psycopg
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from psycopg_pool import PoolTimeout, TooManyRequests

from apps.common.errors import error_response

if TYPE_CHECKING:
    from ninja import NinjaAPI

EXHAUSTED = (PoolTimeout, TooManyRequests)


def pool_exhausted(exc: BaseException | None) -> bool:
    """The exception (or what it wraps: Django re-raises psycopg's errors as its own) is a pool
    that had no connection to give in time."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, EXHAUSTED):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def busy_response(request: HttpRequest | None) -> JsonResponse:
    response = error_response(
        request,
        503,
        "service_busy",
        "The service has no database connection free right now; retry shortly",
    )
    response["Retry-After"] = str(getattr(settings, "DB_POOL_RETRY_AFTER", 1))
    return response


class DatabasePoolMiddleware:
    """Answers 503 `service_busy` for a view that could not get a pooled connection."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return busy_response(request) if pool_exhausted(exception) else None


def ninja_install(api: "NinjaAPI") -> None:
    """Registers the 503 for an empty pool on a NinjaAPI. Every other database error goes to the
    API's handler for Exception (looked up when it happens, so one registered later counts), as if
    this one were not there."""

    def database_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        if pool_exhausted(exc):
            return busy_response(request)
        fallback = api._exception_handlers.get(Exception)  # Ninja has no public lookup by class
        if fallback is None:
            raise exc
        return fallback(request, exc)

    for error in (DatabaseError, psycopg.Error):
        api.add_exception_handler(error, database_error)  # type: ignore[arg-type]  # Ninja passes the instance
