"""What identity's OpenAPI says beyond drf-spectacular's defaults: who may call, and how it fails.

- `bearerAuth`: the platform's access JWT (Authorization: Bearer, or the access_token cookie),
  declared on every operation whose view authenticates with apps.common.auth.JWTAuthentication.
- Every operation lists the 4xx it can answer, each with the platform's error body. The codes come
  from what the view is (a body to validate: 400; signed-in: 401/403; a path id: 404) plus what a
  view adds in `openapi_errors` ({"post": (409,)}), so a new view is documented by its shape.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    400: "Invalid input (`validation_error` with `fields`, or another code)",
    401: "Not signed in, a bad or revoked token (`token_revoked`), or wrong credentials",
    403: "Signed in, but not allowed here (`forbidden`, `not_a_member`, `csrf_failed`, ...)",
    404: "No such thing in this organization",
    409: "Conflicts with the current state",
    429: "Too many attempts; see Retry-After",
}


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    request_id = serializers.CharField(allow_null=True)
    fields = serializers.DictField(required=False, help_text="Per-field reasons, for validation errors")


class Error(serializers.Serializer):
    error = ErrorDetail()


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.common.auth.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The access token from POST /api/auth/token (or the access_token cookie in a browser).",
        }


class IdentitySchema(AutoSchema):
    def _error_codes(self) -> list[int]:
        from apps.identity.api import MemberView

        codes: set[int] = set()
        if self.method in ("POST", "PUT", "PATCH"):
            codes.add(400)
        if isinstance(self.view, MemberView):
            codes.update((401, 403))
        if "{" in self.path:
            codes.add(404)
        extra = getattr(self.view, "openapi_errors", {})
        codes.update(extra.get(self.method.lower(), ()))
        return sorted(codes)

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        bodies = super()._get_response_bodies(direction)
        if direction != "response":
            return bodies
        error = self.resolve_serializer(Error, "response").ref
        for code in self._error_codes():
            bodies.setdefault(
                str(code),
                {"description": ERROR_DESCRIPTIONS[code], "content": {"application/json": {"schema": error}}},
            )
        return bodies
