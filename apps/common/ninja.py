"""A NinjaAPI that answers every error in the platform's error shape, and the field types its schemas use.

Every schema takes text as `Text` (no NUL, no lone surrogate: PostgreSQL and UTF-8 refuse them)
and numbers as bounded types that fit the column they end up in (`Id` a bigint primary key,
`Count` an integer column), so a value the database would refuse is a 422 at the door, never a
500 from the database. RequestGuardMiddleware refuses the same input for every body; these types
make the schema say so in the OpenAPI document and hold for any caller that skips the middleware.
"""

import json
from typing import Annotated, Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from pydantic import AfterValidator

from apps.common import dbpool
from apps.common.errors import error_body
from apps.common.exceptions import ServiceError

BIGINT_MAX = 2**63 - 1  # PostgreSQL bigint: primary keys (BigAutoField) and PositiveBigIntegerField
INTEGER_MAX = 2**31 - 1  # PostgreSQL integer: IntegerField, PositiveIntegerField


def _text_checked(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(_text_checked)]
"""A string PostgreSQL can store."""
Id = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
"""A row id: a positive bigint."""
Count = Annotated[int, Field(ge=0, le=INTEGER_MAX)]
"""A position, index, offset, limit or amount that lands in (or is compared with) an integer column.

Pydantic lets these types' own bounds win over a Field(ge=..., le=...) at the use site: a field
with other bounds is a plain `int = Field(..., ge=, le=)` with `le` at most INTEGER_MAX instead.
"""


class PlatformParser(Parser):
    """Reuses the JSON RequestGuardMiddleware already parsed (and checked) instead of parsing it again."""

    def parse_body(self, request: HttpRequest) -> Any:
        parsed = getattr(request, "platform_json", _MISSING)
        if parsed is not _MISSING:
            return parsed
        return json.loads(request.body)


_MISSING = object()


def _respond(api: NinjaAPI, request: HttpRequest, status: int, body: dict) -> HttpResponse:
    return api.create_response(request, body, status=status)


def platform_api(*, title: str, version: str = "1.0.0", **kwargs: Any) -> NinjaAPI:
    kwargs.setdefault("parser", PlatformParser())
    api = NinjaAPI(title=title, version=version, docs_url=None, openapi_url=None, **kwargs)

    @api.exception_handler(ServiceError)
    def service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
        body = error_body(exc.code, exc.message, request_id=getattr(request, "request_id", None), **exc.details)
        response = _respond(api, request, exc.status, body)
        for name, value in exc.headers.items():
            response[name] = value
        return response

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        body = error_body(
            "validation_error",
            "The request is invalid",
            request_id=getattr(request, "request_id", None),
            fields=_json_safe(exc.errors),
        )
        return _respond(api, request, 422, body)

    @api.exception_handler(AuthenticationError)
    def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        body = error_body(
            "not_authenticated", "A valid token is required", request_id=getattr(request, "request_id", None)
        )
        return _respond(api, request, 401, body)

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        code = getattr(exc, "code", None) or {
            400: "bad_request",
            403: "forbidden",
            404: "not_found",
            409: "conflict",
        }.get(exc.status_code, "error")
        body = error_body(code, str(exc), request_id=getattr(request, "request_id", None))
        return _respond(api, request, exc.status_code, body)

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        body = error_body("not_found", "Nothing is here", request_id=getattr(request, "request_id", None))
        return _respond(api, request, 404, body)

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        # Ninja's default answers a plain-text traceback when DEBUG is on; ErrorContractMiddleware
        # answers the platform's error instead, DEBUG or not, and logs it once.
        raise exc

    dbpool.ninja_install(api)  # an empty connection pool is a 503 `service_busy`
    return api


def _json_safe(value: Any) -> Any:
    """Pydantic's error list, with the rejected input made JSON-safe (it may hold bytes or huge numbers)."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if value is None or isinstance(value, (bool, float, str)):
        return value
    if isinstance(value, int):
        return value if -BIGINT_MAX <= value <= BIGINT_MAX else str(value)
    return str(value)
