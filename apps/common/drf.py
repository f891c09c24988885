"""DRF's errors in the platform's error shape."""

from typing import Any

from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.common.errors import error_body
from apps.common.exceptions import ServiceError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """settings.REST_FRAMEWORK's handler: a ServiceError and DRF's own errors in the platform's shape."""
    if isinstance(exc, ServiceError):
        request_id = getattr(context.get("request"), "request_id", None)
        body = error_body(exc.code, exc.message, request_id=request_id, **exc.details)
        return Response(body, status=exc.status, headers=dict(exc.headers))
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


BIGINT_MAX = 2**63 - 1


class AsciiIntegerField(serializers.IntegerField):
    """DRF's IntegerField reads "٣" as 3 and fullwidth "12" as 12 (Python's int() takes any Unicode digit):
    an id written in another script would name a different row. This one takes ASCII digits only,
    and stays within a PostgreSQL bigint unless told otherwise."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", -BIGINT_MAX - 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and not data.strip().lstrip("+-").isascii():
            self.fail("invalid")
        return super().to_internal_value(data)


class AsciiUUIDField(serializers.UUIDField):
    """uuid.UUID() accepts non-ASCII digits too (int(text, 16) does): "٣" * 32 parses as 333...3."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and not data.isascii():
            self.fail("invalid", value=data)
        return super().to_internal_value(data)
