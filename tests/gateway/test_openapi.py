import copy

from tests.gateway.conftest import Gateway
from tests.helpers import closed_port_url

IDENTITY_30 = {
    "openapi": "3.0.3",
    "info": {"title": "identity", "version": "1"},
    "paths": {
        "/api/auth/token": {
            "post": {
                "operationId": "auth_token_create",
                "tags": ["auth"],
                "security": [],
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenRequest"}}}
                },
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/api/users/{id}": {
            "get": {
                "operationId": "users_retrieve",
                "tags": ["users"],
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/User"}}},
                    }
                },
            }
        },
        # What identity's DRF schema said before issue 8: an authenticated operation shown as anonymous.
        "/api/auth/me": {"get": {"operationId": "me", "security": [{}], "responses": {"200": {"description": "ok"}}}},
        "/healthz": {"get": {"operationId": "healthz", "responses": {"200": {"description": "ok"}}}},
        "/internal/tenant-owners": {"post": {"operationId": "owners", "responses": {"201": {"description": "x"}}}},
    },
    "components": {
        "schemas": {
            "User": {
                "type": "object",
                "properties": {"email": {"type": "string"}, "full_name": {"type": "string", "nullable": True}},
            },
            "TokenRequest": {"type": "object", "properties": {"email": {"type": "string"}}},
        },
        "securitySchemes": {"jwtAuth": {"type": "http", "scheme": "bearer"}},
    },
    "security": [{"jwtAuth": []}],
    "tags": [{"name": "users", "description": "Members of an organization"}],
}

PROJECTS_31 = {
    "openapi": "3.1.0",
    "info": {"title": "projects", "version": "1"},
    "paths": {
        "/api/projects": {
            "get": {
                "operationId": "projects_list",
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {
                                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Project"}}
                            }
                        },
                    }
                },
            }
        }
    },
    "components": {
        "schemas": {
            "User": {"type": "object", "properties": {"id": {"type": "integer"}}},
            "Project": {
                "type": "object",
                "properties": {"owner": {"$ref": "#/components/schemas/User"}},
                "discriminator": {"propertyName": "kind", "mapping": {"user": "#/components/schemas/User"}},
            },
        }
    },
}


def _install(stack) -> None:
    stack.states["identity"].openapi = copy.deepcopy(IDENTITY_30)
    stack.states["projects"].openapi = copy.deepcopy(PROJECTS_31)
    stack.states["tenancy"].openapi = {"openapi": "3.0.3", "info": {}, "paths": {"/api/tenants": {"post": {}}}}
    stack.states["shortener"].openapi = {"openapi": "3.1.0", "info": {}, "paths": {"/s/{code}": {"get": {}}}}
    stack.states["analytics"].openapi = {"openapi": "3.1.0", "info": {}, "paths": {"/api/analytics/flow": {"get": {}}}}


def test_schemas_of_every_service_merge_without_clobbering(gateway: Gateway, stack) -> None:
    _install(stack)

    response = gateway.get("/api/openapi.json", host="localhost:8000", token=None)

    assert response.status_code == 200
    merged = response.json()
    assert merged["openapi"] == "3.1.0"
    assert merged["info"]["x-missing-services"] == []
    assert set(merged["paths"]) == {
        "/api/auth/token",
        "/api/auth/me",
        "/api/users/{id}",
        "/api/projects",
        "/api/tenants",
        "/s/{code}",
        "/api/analytics/flow",
    }
    schemas = merged["components"]["schemas"]
    assert schemas["identity.User"]["properties"]["email"] == {"type": "string"}
    assert schemas["projects.User"]["properties"]["id"] == {"type": "integer"}
    assert schemas["projects.Project"]["properties"]["owner"] == {"$ref": "#/components/schemas/projects.User"}
    assert schemas["projects.Project"]["discriminator"]["mapping"] == {"user": "#/components/schemas/projects.User"}
    users = merged["paths"]["/api/users/{id}"]["get"]
    assert users["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/identity.User"
    }
    assert users["operationId"] == "identity_users_retrieve"
    assert users["tags"] == ["identity: users"]
    assert users["security"] == [{"identity.jwtAuth": []}]
    assert merged["paths"]["/api/auth/token"]["post"]["security"] == []
    assert merged["paths"]["/api/projects"]["get"]["tags"] == ["projects: projects"]
    assert "identity.jwtAuth" in merged["components"]["securitySchemes"]
    assert {"name": "identity: users", "description": "Members of an organization"} in merged["tags"]
    assert {group["name"] for group in merged["x-tagGroups"]} == set(stack.urls)


def test_openapi_30_nullable_becomes_a_null_type(gateway: Gateway, stack) -> None:
    _install(stack)

    merged = gateway.get("/api/openapi.json", host="localhost:8000", token=None).json()

    assert merged["components"]["schemas"]["identity.User"]["properties"]["full_name"] == {"type": ["string", "null"]}


def test_a_down_service_is_left_out_and_named(make_gateway, stack) -> None:
    _install(stack)
    gateway = make_gateway(analytics_url=closed_port_url())

    merged = gateway.get("/api/openapi.json", host="localhost:8000", token=None).json()

    assert merged["info"]["x-missing-services"] == ["analytics"]
    assert merged["info"]["x-missing-reasons"]["analytics"].startswith("unreachable")
    assert "/api/analytics/flow" not in merged["paths"]
    assert "/api/projects" in merged["paths"]


def test_swagger_ui_is_served_from_the_vendored_copy(gateway: Gateway) -> None:
    page = gateway.get("/api/docs", host="localhost:8000", token=None)
    script = gateway.get("/api/docs/assets/swagger-ui-bundle.js", host="localhost:8000", token=None)

    assert page.status_code == 200
    assert "/api/openapi.json" in page.text
    assert "/api/docs/assets/swagger-ui-bundle.js" in page.text
    assert script.status_code == 200
    assert len(script.content) > 100_000


def _operations(merged: dict):
    for path, item in merged["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete", "patch"):
                yield path, method, operation


def test_every_operation_the_gateway_authenticates_declares_the_bearer_scheme(gateway: Gateway, stack) -> None:
    _install(stack)

    merged = gateway.get("/api/openapi.json", host="localhost:8000", token=None).json()

    scheme = merged["components"]["securitySchemes"]["gateway.bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    security = {(path, method): operation["security"] for path, method, operation in _operations(merged)}
    assert security[("/api/auth/me", "get")] == [{"gateway.bearerAuth": []}]  # anonymous no more
    assert security[("/api/projects", "get")] == [{"gateway.bearerAuth": []}]  # the service said nothing
    assert security[("/api/analytics/flow", "get")] == [{"gateway.bearerAuth": []}]
    assert security[("/api/users/{id}", "get")] == [{"identity.jwtAuth": []}]  # the service's own bearer
    # What the gateway lets through anonymously is anonymous in the document too.
    assert security[("/api/auth/token", "post")] == []
    assert security[("/api/tenants", "post")] == []
    assert security[("/s/{code}", "get")] == []


def test_every_operation_lists_the_errors_the_gateway_answers(gateway: Gateway, stack) -> None:
    _install(stack)

    merged = gateway.get("/api/openapi.json", host="localhost:8000", token=None).json()

    error_ref = {"$ref": "#/components/schemas/gateway.Error"}
    assert merged["components"]["schemas"]["gateway.Error"]["required"] == ["error"]
    for path, method, operation in _operations(merged):
        responses = operation["responses"]
        assert "429" in responses, (path, method)
        if operation["security"]:
            assert {"401", "403"} <= set(responses), (path, method)
            assert responses["401"]["content"]["application/json"]["schema"] == error_ref
        if "{" in path:
            assert {"400", "404"} <= set(responses), (path, method)
        if method == "post":
            assert "413" in responses, (path, method)
    assert merged["paths"]["/api/users/{id}"]["get"]["responses"]["200"]["content"]  # the service's own, kept
