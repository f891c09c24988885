"""DRF's errors in the platform's error shape."""

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.common.errors import error_body


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    request_id = getattr(context.get("request"), "request_id", None)
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("validation_error", "The request is invalid", request_id=request_id, fields=exc.detail)
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        body = error_body(str(code), str(exc.detail), request_id=request_id)
    else:  # pragma: no cover - DRF only handles APIException and Http404/PermissionDenied
        body = error_body("error", str(exc), request_id=request_id)
    if response.status_code == status.HTTP_404_NOT_FOUND:
        body["error"]["code"] = "not_found"
    response.data = body
    return response
