"""The platform's one error shape (CONTRACT.md), answered by the gateway itself:

{"error": {"code": "...", "message": "...", "request_id": "..."}}
"""

from collections.abc import Mapping

from fastapi.responses import JSONResponse


class GatewayError(Exception):
    """A refusal decided by the gateway (unknown route, bad token, rate limit, ...)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: object,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra


def error_body(code: str, message: str, *, request_id: str | None, **extra: object) -> dict:
    error: dict[str, object] = {"code": code, "message": message, "request_id": request_id}
    error.update(extra)
    return {"error": error}


def error_response(error: GatewayError, *, request_id: str | None) -> JSONResponse:
    return JSONResponse(
        error_body(error.code, error.message, request_id=request_id, **error.extra),
        status_code=error.status,
        headers=error.headers,
    )
