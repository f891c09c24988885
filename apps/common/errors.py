"""The one error shape every API answers with (CONTRACT.md), and the pages a browser gets instead.

    {"error": {"code": "...", "message": "...", "request_id": "..."}}

`error_for(request, status, code, message)` picks the form: the JSON contract on an API path
(`/api/`, `/s/`, `/.well-known/`, `/internal/`) or for a client that does not ask for HTML;
a plain HTML page from templates/errors/ for a browser on a page path. Neither ever shows a
traceback, a setting or the URL patterns, whatever DEBUG says: the handlers below are the
service's handler400/403/404/500 and its CSRF failure view, and
apps.common.middleware.ErrorContractMiddleware sends Django's debug pages through them too.
"""

import logging
import sys
from types import TracebackType

from django.core import signals
from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import DataError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.views.debug import ExceptionReporter

request_logger = logging.getLogger("django.request")
security_logger = logging.getLogger("django.security")

# Not `/s/`: people follow short links, so a browser there reads pages (the shortener's own, and
# these for what it did not answer itself), as it does from the gateway (gateway/pages.py).
API_PREFIXES = ("/api/", "/.well-known/", "/internal/")
# A service's own machine-readable endpoints, reached by the gateway and scripts, never by a browser page.
API_PATHS = frozenset({"/api", "/openapi.json", "/healthz", "/readyz"})

# The code and the sentence a client gets for a status nobody described more precisely.
STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request is malformed"),
    401: ("not_authenticated", "A valid token is required"),
    403: ("forbidden", "You may not do this"),
    404: ("not_found", "Nothing is here"),
    405: ("method_not_allowed", "This method is not allowed here"),
    406: ("not_acceptable", "No representation matches the Accept header"),
    408: ("request_timeout", "The request took too long"),
    409: ("conflict", "The request conflicts with the current state"),
    410: ("gone", "This is gone"),
    413: ("payload_too_large", "The request body is too large"),
    415: ("unsupported_media_type", "This content type is not accepted here"),
    422: ("validation_error", "The request is invalid"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal_error", "The server failed to handle this request"),
    502: ("bad_gateway", "A service behind this one failed"),
    503: ("unavailable", "The service is unavailable"),
}
# What a person reads on the HTML page: a title and one helpful sentence, never the request's details.
PAGE_TEXT: dict[int, tuple[str, str]] = {
    400: ("Bad request", "The address or the form could not be understood. Check it and try again."),
    403: ("Not allowed", "You do not have access to this page. Sign in with another account, or ask an admin."),
    404: ("Page not found", "There is nothing at this address. It may have moved, or the link may be mistyped."),
    405: ("Not allowed", "This page cannot be used this way."),
    413: ("Too large", "What you sent is larger than this service accepts."),
    500: ("Something went wrong", "The server failed to handle this request. Try again in a moment."),
}


def error_body(code: str, message: str, *, request_id: str | None = None, **extra: object) -> dict:
    error: dict[str, object] = {"code": code, "message": message, "request_id": request_id}
    error.update(extra)
    return {"error": error}


def error_response(request: HttpRequest | None, status: int, code: str, message: str, **extra: object) -> JsonResponse:
    request_id = getattr(request, "request_id", None) if request is not None else None
    return JsonResponse(error_body(code, message, request_id=request_id, **extra), status=status)


def is_api_path(path: str) -> bool:
    return path in API_PATHS or path.startswith(API_PREFIXES)


def wants_html(request: HttpRequest) -> bool:
    """A browser on a page path; anything else (an API path, a script, a JSON client) gets JSON."""
    if is_api_path(request.path):
        return False
    # Only a client that names text/html (a browser does; curl's */* does not) and does not prefer JSON.
    accept = request.headers.get("Accept", "").lower()
    return "text/html" in accept and "json" not in accept.split(",")[0]


def error_page(request: HttpRequest, status: int) -> HttpResponse:
    title, sentence = PAGE_TEXT.get(status) or PAGE_TEXT[500 if status >= 500 else 400]
    context = {
        "status": status,
        "title": title,
        "sentence": sentence,
        "request_id": getattr(request, "request_id", None),
    }
    html: str
    for name in (f"errors/{status}.html", "errors/error.html"):
        try:
            html = render_to_string(name, context)
            break
        except TemplateDoesNotExist:
            continue
    else:  # pragma: no cover - templates/errors/error.html ships with the code
        html = f"<!doctype html><title>{status}</title><h1>{title}</h1><p>{sentence}</p>"
    return HttpResponse(html, status=status, content_type="text/html; charset=utf-8")


def error_for(
    request: HttpRequest, status: int, code: str | None = None, message: str | None = None, **extra: object
) -> HttpResponse:
    """The platform's answer to a refused or failed request: JSON, or an HTML page for a browser."""
    default_code, default_message = STATUS_ERRORS.get(status) or STATUS_ERRORS[500 if status >= 500 else 400]
    if wants_html(request):
        return error_page(request, status)
    return error_response(request, status, code or default_code, message or default_message, **extra)


def exception_status(exception: BaseException) -> tuple[int, str | None, str | None] | None:
    """(status, code, message) for an exception that is the client's fault; None for a server failure."""
    if isinstance(exception, Http404):
        return 404, "not_found", "Nothing is here"
    if isinstance(exception, PermissionDenied):
        return 403, "forbidden", "You may not do this"
    if isinstance(exception, RequestDataTooBig):
        return 413, "payload_too_large", "The request body is larger than this service accepts"
    if isinstance(exception, (TooManyFieldsSent, TooManyFilesSent)):
        return 400, "too_many_fields", "The request has too many fields"
    if isinstance(exception, DisallowedHost):
        return 400, "invalid_host", "The Host header names no host this service answers"
    if isinstance(exception, (SuspiciousOperation, BadRequest, MultiPartParserError, UnreadablePostError)):
        return 400, "bad_request", "The request is malformed"
    if isinstance(exception, DataError):
        # The database refused a value no validator caught (out of range, too long): the input's fault.
        return 400, "invalid_value", "A value in the request is out of range or too long"
    return None


def exception_response(request: HttpRequest, exception: BaseException, *, log: bool = True) -> HttpResponse:
    """The platform's answer to an exception: its 4xx, a 503 for a database outage, else a 500 (logged)."""
    if isinstance(exception, OperationalError):
        # The database is out of reach or out of connections: a moment's outage, not a bug in this request.
        if log:
            request_logger.error("Database unavailable: %s", request.path, exc_info=exception)
        response = error_for(request, 503, "database_unavailable", "The database is unavailable; try again shortly")
        response["Retry-After"] = "1"
        return response
    refusal = exception_status(exception)
    if refusal is None:
        if log:
            request_logger.error("Internal Server Error: %s", request.path, exc_info=exception)
            signals.got_request_exception.send(sender=None, request=request)
        return error_for(request, 500)
    status, code, message = refusal
    if log and isinstance(exception, SuspiciousOperation):
        security_logger.warning("%s: %s", type(exception).__name__, exception)
    elif log and isinstance(exception, DataError):
        request_logger.warning("Refused a value the database cannot store: %s", exception)
    return error_for(request, status, code, message)


# Django's handlers (config/urls/common.py) and CSRF_FAILURE_VIEW -----------------------------


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_for(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_for(request, 403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # The path goes back to the client as text it sent, never the patterns it was tried against.
    return error_for(request, 404, "not_found", "No route for this path")


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception (raised anywhere, a middleware included).
    raised = sys.exc_info()[1]
    if raised is not None:  # Django logged it already
        return exception_response(request, raised, log=False)
    return error_for(request, 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return error_for(request, 403, "csrf_failed", f"CSRF check failed: {reason}".rstrip(": "))


class MarkingExceptionReporter(ExceptionReporter):
    """settings.DEFAULT_EXCEPTION_REPORTER: notes on the request that Django built its debug page.

    With DEBUG on, Django answers an exception raised outside a view (a middleware, the URL
    resolver, a bad Host) with its technical 500 page. That happens below every middleware's
    reach, so this reporter, which Django asks to build the page, leaves a mark that
    ErrorContractMiddleware turns into the platform's own answer. Mail to ADMINS is unchanged.
    """

    def __init__(
        self,
        request: HttpRequest | None,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
        is_email: bool = False,
    ) -> None:
        super().__init__(request, exc_type, exc_value, tb, is_email)
        if request is not None:
            request.platform_debug_page = True  # type: ignore[attr-defined]
            if isinstance(exc_value, BaseException):
                request.platform_exception = exc_value  # type: ignore[attr-defined]
