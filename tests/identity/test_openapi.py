"""Item 15 of issue 8 (identity's side): the OpenAPI says who may call each operation and how it fails."""

import pytest
from django.test import Client

PUBLIC = {
    ("get", "/.well-known/jwks.json"),
    ("post", "/api/auth/token"),
    ("post", "/api/auth/refresh"),
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/verify-email"),
    ("post", "/api/auth/verify-email/resend"),
    ("post", "/api/users/invitations/accept"),
}
ERROR_REF = "#/components/schemas/Error"


@pytest.fixture(scope="module")
def document(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        return Client().get("/openapi.json").json()


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method, path, operation


def test_the_bearer_scheme_is_declared(document: dict) -> None:
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The access token from POST /api/auth/token (or the access_token cookie in a browser).",
    }


def test_every_authenticated_operation_requires_the_bearer_token(document: dict) -> None:
    operations = list(_operations(document))
    assert len(operations) > len(PUBLIC)
    for method, path, operation in operations:
        if (method, path) in PUBLIC:
            assert "security" not in operation, (method, path)
        else:
            assert operation.get("security") == [{"bearerAuth": []}], (method, path)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_every_operation_lists_its_client_errors_with_the_error_body(document: dict) -> None:
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        if method in {"post", "patch"}:
            assert "400" in responses, (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        for status, response in responses.items():
            if status.startswith("4"):
                assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (method, path)
    assert {"401", "429"} <= set(document["paths"]["/api/auth/token"]["post"]["responses"])
    assert {"401", "403", "409", "429"} <= set(document["paths"]["/api/users/invitations/accept"]["post"]["responses"])


def test_the_error_schema_is_the_platform_error_contract(document: dict) -> None:
    error = document["components"]["schemas"]["Error"]
    detail = document["components"]["schemas"]["ErrorDetail"]

    assert error["required"] == ["error"]
    assert set(detail["required"]) == {"code", "message", "request_id"}
