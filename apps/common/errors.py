"""The one error shape every API answers with (CONTRACT.md):

{"error": {"code": "...", "message": "...", "request_id": "..."}}
"""

from django.http import HttpRequest, JsonResponse


def error_body(code: str, message: str, *, request_id: str | None = None, **extra: object) -> dict:
    error: dict[str, object] = {"code": code, "message": message, "request_id": request_id}
    error.update(extra)
    return {"error": error}


def error_response(request: HttpRequest | None, status: int, code: str, message: str, **extra: object) -> JsonResponse:
    request_id = getattr(request, "request_id", None) if request is not None else None
    return JsonResponse(error_body(code, message, request_id=request_id, **extra), status=status)


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(request, 404, "not_found", f"No route for {request.path}")


def server_error(request: HttpRequest) -> JsonResponse:
    return error_response(request, 500, "internal_error", "The server failed to handle this request")
