"""Middleware every service runs (config/settings/base.py MIDDLEWARE, in this order):

- RequestIdMiddleware: keeps the gateway's X-Request-ID and echoes it.
- SecurityHeadersMiddleware: the Content-Security-Policy (Django's SecurityMiddleware and
  XFrameOptionsMiddleware add the rest).
- ErrorContractMiddleware: every refusal and failure in the platform's form (apps.common.errors),
  DEBUG or not, whoever raised it.
- RequestGuardMiddleware: refuses, before any view or database sees it, input no service can
  store or parse safely: control characters in the path or the query, a bad Host, a body over
  DATA_UPLOAD_MAX_MEMORY_SIZE, JSON nested deeper than REQUEST_JSON_MAX_DEPTH, NUL or lone
  surrogates in any JSON or form string (PostgreSQL refuses NUL in text; a lone surrogate cannot
  be encoded as UTF-8).
"""

import json
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError

from apps.common.errors import error_for, exception_response, is_api_path

# A request id from outside is kept only if it looks like one, so logs stay parseable.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Keeps the gateway's X-Request-ID (or makes one) and echoes it on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]  # read with getattr everywhere
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class SecurityHeadersMiddleware:
    """settings.CONTENT_SECURITY_POLICY on every response that does not set its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response


# Errors ---------------------------------------------------------------------------------------

# Headers of a replaced error response that still tell the client something true.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary", "X-Request-ID")


def _is_json(response: HttpResponse) -> bool:
    content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


class ErrorContractMiddleware:
    """Every error in the platform's form, whatever produced it and whatever DEBUG says.

    - An exception from a view (any service, DEBUG or not) becomes its 4xx or a 500 here.
    - Django's debug pages (raised outside a view; marked by MarkingExceptionReporter), its
      unmatched-URL 404 (DEBUG's lists the URL patterns) and empty error bodies (405 from
      `require_GET`, Ninja's method check) are replaced by the platform's answer.
    - On an API path every error is JSON: an HTML error there is replaced, unless the view set
      `response.platform_page = True` (a page meant for a browser, like a link's password gate).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or getattr(response, "platform_page", False):
            return response
        debug_page = getattr(request, "platform_debug_page", False)
        if _is_json(response) and not debug_page:
            return response
        unmatched_url = response.status_code == 404 and getattr(request, "resolver_match", None) is None
        empty = not response.streaming and not response.content
        if debug_page or unmatched_url or empty or is_api_path(request.path):
            return self._replaced(request, response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse:
        return exception_response(request, exception)

    @staticmethod
    def _replaced(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        raised = getattr(request, "platform_exception", None)
        if raised is not None:  # Django logged it already, as it built its debug page
            replacement = exception_response(request, raised, log=False)
        else:
            replacement = error_for(request, response.status_code)
        for name in _KEPT_HEADERS:
            if name in response and name not in replacement:
                replacement[name] = response[name]
        replacement.cookies = response.cookies
        return replacement


# Input guard ----------------------------------------------------------------------------------

# In a path: every C0 control and DEL. Ids are ASCII: a non-ASCII digit (², ٣) can only be an
# attempt to slip past `str.isdigit()` or `int()`, which accept them.
_PATH_REFUSED = re.compile(r"[\x00-\x1f\x7f]")
# In a query key every control; in a value, tab and line breaks are text a search may contain.
_KEY_REFUSED = _PATH_REFUSED
_VALUE_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# What no text column can hold: NUL (PostgreSQL) and lone surrogates (not encodable as UTF-8).
_TEXT_REFUSED = re.compile(r"[\x00\ud800-\udfff]")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_JSON_START = frozenset(b'[{"')


class InputRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _has_non_ascii_digit(text: str) -> bool:
    return not text.isascii() and any(char.isdigit() and not char.isascii() for char in text)


def path_check(path: str) -> None:
    if _PATH_REFUSED.search(path) or _TEXT_REFUSED.search(path):
        raise InputRefused(400, "invalid_path", "The path contains control characters")
    if _has_non_ascii_digit(path):
        raise InputRefused(400, "invalid_path", "Ids in a path are written with the digits 0-9")


def query_check(request: HttpRequest) -> None:
    if not request.META.get("QUERY_STRING"):
        return
    try:
        items = list(request.GET.lists())
    except TooManyFieldsSent:
        raise InputRefused(400, "too_many_fields", "The query has too many parameters") from None
    for key, values in items:
        if _KEY_REFUSED.search(key) or _TEXT_REFUSED.search(key):
            raise InputRefused(400, "invalid_query", "A query parameter's name contains control characters")
        for value in values:
            if _VALUE_REFUSED.search(value) or _TEXT_REFUSED.search(value):
                raise InputRefused(400, "invalid_query", f"Query parameter {key!r} contains control characters")


def json_check(value: object, *, max_depth: int) -> None:
    """Walks parsed JSON without recursion: refuses deep nesting and strings no column can hold."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _TEXT_REFUSED.search(node):
                raise InputRefused(400, "invalid_characters", "Text in the body contains NUL or a lone surrogate")
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > max_depth:
            raise InputRefused(400, "too_deep", f"The JSON body is nested deeper than {max_depth} levels")
        if isinstance(node, dict):
            for key, item in node.items():
                stack.append((key, depth))
                stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in node)


def body_check(request: HttpRequest) -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    content_type = request.content_type or ""
    if content_type in _FORM_TYPES:
        _form_check(request)  # through Django's parser: uploads stream to disk, not into memory
        return
    try:
        body = request.body
    except RequestDataTooBig:
        raise InputRefused(413, "payload_too_large", "The request body is larger than this service accepts") from None
    if not body:
        return
    declared_json = content_type == "application/json" or content_type.endswith("+json")
    first = body.lstrip()[:1]
    # Ninja parses any body as JSON whatever its type; a body that looks like JSON is checked as JSON.
    if not declared_json and not (first and first[0] in _JSON_START):
        return
    try:
        value = json.loads(body)
    except RecursionError:
        raise InputRefused(400, "too_deep", "The JSON body is nested too deeply") from None
    except ValueError:  # not JSON (or an integer with thousands of digits)
        raise InputRefused(400, "parse_error", "The body is not valid JSON") from None  # DRF's code for it too
    json_check(value, max_depth=settings.REQUEST_JSON_MAX_DEPTH)
    request.platform_json = value  # type: ignore[attr-defined]  # parsed once; apps.common.ninja reuses it


def _form_check(request: HttpRequest) -> None:
    try:
        items = list(request.POST.lists())
    except (MultiPartParserError, TooManyFieldsSent, TooManyFilesSent, RequestDataTooBig) as exc:
        status = 413 if isinstance(exc, RequestDataTooBig) else 400
        raise InputRefused(status, "bad_request", "The form body is malformed or too large") from None
    for key, values in items:
        for text in (key, *values):
            if _TEXT_REFUSED.search(text):
                raise InputRefused(400, "invalid_characters", "A form field contains NUL or a lone surrogate")


class RequestGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()
        except DisallowedHost:
            return error_for(request, 400, "invalid_host", "The Host header names no host this service answers")
        try:
            path_check(request.path)
            query_check(request)
            body_check(request)
        except InputRefused as refused:
            return error_for(request, refused.status, refused.code, refused.message)
        return self.get_response(request)
