"""A NinjaAPI that answers every error in the platform's error shape."""

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from apps.common import dbpool
from apps.common.errors import error_body


def _respond(api: NinjaAPI, request: HttpRequest, status: int, body: dict) -> HttpResponse:
    return api.create_response(request, body, status=status)


def platform_api(*, title: str, version: str = "1.0.0", **kwargs: object) -> NinjaAPI:
    api = NinjaAPI(title=title, version=version, docs_url=None, openapi_url=None, **kwargs)

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        body = error_body(
            "validation_error",
            "The request is invalid",
            request_id=getattr(request, "request_id", None),
            fields=exc.errors,
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

    dbpool.ninja_install(api)  # an empty connection pool is a 503 `service_busy`
    return api
