"""One OpenAPI document for the whole platform, merged from every service's `/openapi.json`.

Each service's components are renamed `<service>.<Name>` (and every `$ref`, discriminator
mapping and security requirement rewritten to match), so two services' `User` schemas
never clobber each other; operation ids get the same prefix. A service's path is kept
only if the gateway actually routes it to that service. OpenAPI 3.0 documents (from
drf-spectacular) are lifted to 3.1 (`nullable` becomes a `null` type) so the result is
one valid 3.1 document. Services that do not answer are named in `info.x-missing-services`.

Security and errors come from the gateway's own rules, so the document cannot drift from what
is enforced: an operation the gateway lets through anonymously (`path_is_public`, the same
function admission uses) is anonymous (`security: []` unless the service says more); every
other one requires a bearer JWT (`gateway.bearerAuth`, kept beside any bearer scheme the
service declares, and replacing an anonymous or missing declaration). Each operation also
lists the errors the gateway itself answers, with the one error schema (`gateway.Error`):
401/403 when secured, 404 and 400 (`invalid_path`) with path parameters, 413 with a body,
429 everywhere; a status the service already documents is left as it is.
"""

import asyncio
import copy
import re
from typing import Any

import aiohttp

from gateway.auth import path_is_public
from gateway.config import SERVICES, GatewaySettings
from gateway.routing import route_match

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_REF_PREFIX = "#/components/"
_PARAMETER = re.compile(r"\{[^/{}]+\}")
_BODY_METHODS = frozenset({"post", "put", "patch"})
BEARER_SCHEME = "gateway.bearerAuth"
ERROR_SCHEMA = "gateway.Error"
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
GATEWAY_COMPONENTS = {
    "securitySchemes": {
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The access token from POST /api/auth/token on the organization's host.",
        }
    },
    "schemas": {
        ERROR_SCHEMA: {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "request_id": {"type": ["string", "null"]},
                    },
                }
            },
        }
    },
}
_GATEWAY_ERRORS = {
    "400": "The request is malformed (for example an ambiguous path: `invalid_path`)",
    "401": "No valid access token (`invalid_token`), or it was revoked (`token_revoked`)",
    "403": "The token belongs to another organization, or the caller may not do this",
    "404": "No such object here",
    "413": "The request body is larger than this route accepts (`payload_too_large`)",
    "429": "Too many requests (`rate_limited`); see Retry-After",
}


async def service_schemas_fetch(*, client: aiohttp.ClientSession, settings: GatewaySettings) -> dict[str, dict | str]:
    """Each service's document, or the reason it could not be fetched."""

    async def fetch(service: str) -> dict | str:
        try:
            async with client.get(
                f"{settings.service_url(service)}/openapi.json",
                headers={"Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=settings.health_timeout),
            ) as response:
                if response.status != 200:
                    return f"status {response.status}"
                try:
                    document = await response.json(content_type=None)
                except ValueError:
                    return "not JSON"
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError as error:
            return f"unreachable: {type(error).__name__}"
        return document if isinstance(document, dict) and "paths" in document else "not an OpenAPI document"

    results = await asyncio.gather(*(fetch(service) for service in SERVICES))
    return dict(zip(SERVICES, results, strict=True))


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        renamed: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                renamed[key] = renames.get(value, value)
            elif key == "mapping" and isinstance(value, dict):
                renamed[key] = {
                    name: renames.get(ref, ref) if isinstance(ref, str) else ref for name, ref in value.items()
                }
            else:
                renamed[key] = _rename_refs(value, renames)
        return renamed
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


def _lift_nullable(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` -> 3.1 JSON Schema null type."""
    if isinstance(node, list):
        return [_lift_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    lifted = {key: _lift_nullable(value) for key, value in node.items()}
    if lifted.pop("nullable", False) is True:
        kind = lifted.get("type")
        if isinstance(kind, str):
            lifted["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            lifted["type"] = [*kind, "null"]
        elif kind is None:
            lifted = {"anyOf": [lifted, {"type": "null"}]}
    return lifted


def _rename_security(requirements: list[dict], security_renames: dict[str, str]) -> list[dict]:
    return [{security_renames.get(name, name): scopes for name, scopes in entry.items()} for entry in requirements]


def openapi_merge(documents: dict[str, dict | str], *, version: str = "1.0.0") -> dict:
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Kanban platform API",
            "version": version,
            "description": "All services behind the gateway, merged. Tags are prefixed with the service.",
            "x-missing-services": [],
            "x-missing-reasons": {},
        },
        "servers": [{"url": "/"}],
        "paths": {},
        "components": copy.deepcopy(GATEWAY_COMPONENTS),
        "tags": [],
        "x-tagGroups": [],
    }
    for service, document in documents.items():
        if isinstance(document, str):
            merged["info"]["x-missing-services"].append(service)
            merged["info"]["x-missing-reasons"][service] = document
            continue
        _merge_service(merged, service, copy.deepcopy(document))
    return merged


def _merge_service(merged: dict, service: str, document: dict) -> None:
    if str(document.get("openapi", "")).startswith("3.0"):
        document = _lift_nullable(document)
    components = document.get("components", {}) or {}
    renames: dict[str, str] = {}
    security_renames: dict[str, str] = {}
    for section, entries in components.items():
        if not isinstance(entries, dict):
            continue
        for name in entries:
            new_name = f"{service}.{name}"
            renames[f"{_REF_PREFIX}{section}/{name}"] = f"{_REF_PREFIX}{section}/{new_name}"
            if section == "securitySchemes":
                security_renames[name] = new_name
    document = _rename_refs(document, renames)
    bearer_schemes = {
        f"{service}.{name}"
        for name, scheme in (components.get("securitySchemes", {}) or {}).items()
        if isinstance(scheme, dict)
        and scheme.get("type") == "http"
        and str(scheme.get("scheme", "")).lower() == "bearer"
    }

    for section, entries in (document.get("components", {}) or {}).items():
        if isinstance(entries, dict):
            target = merged["components"].setdefault(section, {})
            target.update({f"{service}.{name}": value for name, value in entries.items()})

    service_tags: list[str] = []

    def tag(name: str) -> str:
        prefixed = f"{service}: {name}"
        if prefixed not in service_tags:
            service_tags.append(prefixed)
        return prefixed

    descriptions = {entry.get("name"): entry.get("description") for entry in document.get("tags", []) or []}
    default_security = _rename_security(document.get("security", []) or [], security_renames)
    for path, item in (document.get("paths", {}) or {}).items():
        route = route_match(path)
        # A path the gateway sends elsewhere (or nowhere, like /internal) is not reachable through it.
        if route is None or service not in (route.service, route.tenant_host_service):
            continue
        if path in merged["paths"]:
            merged["paths"][path].setdefault("x-also-served-by", []).append(service)
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            operation["tags"] = [tag(name) for name in operation.get("tags") or [service]]
            if "operationId" in operation:
                operation["operationId"] = f"{service}_{operation['operationId']}"
            declared = (
                _rename_security(operation["security"], security_renames)
                if "security" in operation
                else default_security
            )
            secured = not path_is_public(method.upper(), _PARAMETER.sub("x", path))
            operation["security"] = _security_for(
                secured=secured,
                declared=declared,
                explicit="security" in operation,
                bearer_schemes=bearer_schemes,
            )
            _gateway_errors_add(operation, secured=secured, method=method, path=path)
        item["x-service"] = service
        merged["paths"][path] = item

    for prefixed in service_tags:
        description = descriptions.get(prefixed.split(": ", 1)[1])
        merged["tags"].append({"name": prefixed, **({"description": description} if description else {})})
    if service_tags:
        merged["x-tagGroups"].append({"name": service, "tags": service_tags})


def _security_for(*, secured: bool, declared: list[dict], explicit: bool, bearer_schemes: set[str]) -> list[dict]:
    if not secured:
        # Anonymous at the gateway; a service's own, explicit requirement still shows.
        return declared if explicit else []
    requirements = [requirement for requirement in declared if requirement]  # `{}` means anonymous
    if not any(name in bearer_schemes for requirement in requirements for name in requirement):
        requirements.append({BEARER_SCHEME: []})
    return requirements


def _gateway_errors_add(operation: dict, *, secured: bool, method: str, path: str) -> None:
    statuses = ["429"]
    if secured:
        statuses += ["401", "403"]
    if _PARAMETER.search(path):
        statuses += ["400", "404"]
    if method in _BODY_METHODS:
        statuses += ["400", "413"]
    responses = operation.setdefault("responses", {})
    for status in sorted(set(statuses)):
        if status not in responses:
            responses[status] = {
                "description": _GATEWAY_ERRORS[status],
                "content": {"application/json": {"schema": dict(_ERROR_REF)}},
            }
