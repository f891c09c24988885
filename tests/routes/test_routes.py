"""The gateway routes every path a service serves to that service, and routes nothing no one serves.

Each service's OpenAPI document (`manage.py openapi`), URL patterns and WebSocket routes
(`manage.py routes`) come from a subprocess under that service's settings; gateway.routing's
table comes from the services' apps/<service>/routes.toml. No server runs.
"""

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gateway.config import SERVICES
from gateway.routing import DECLARED, PRIVATE_PREFIXES, Route, route_match, route_service

ROOT = Path(__file__).resolve().parents[2]
# What a service serves that the gateway never forwards: its probes and its own document (the
# gateway answers /healthz, /readyz and the merged /api/openapi.json itself), Ninja's API root.
NOT_FORWARDED = frozenset({"/healthz", "/readyz", "/openapi.json", "/api/"})
_PARAMETER = re.compile(r"\{[^/{}]+\}")


def _manage(service: str, command: str) -> Any:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": f"config.settings.{service}"}
    result = subprocess.run(
        [sys.executable, "manage.py", command], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"manage.py {command} under {service}: {result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def served() -> dict[str, dict[str, Any]]:
    jobs = [(service, command) for service in SERVICES for command in ("openapi", "routes")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda job: _manage(*job), jobs))
    answers: dict[str, dict[str, Any]] = {service: {} for service in SERVICES}
    for (service, command), result in zip(jobs, results, strict=True):
        answers[service][command] = result
    return answers


def _processes(service: str) -> set[str]:
    """The gateway upstreams that belong to `service`: itself, and any `process` its routes name."""
    return {service} | {declaration.process for declaration in DECLARED if declaration.service == service}


def _served_by(route: Route | None) -> set[str]:
    if route is None:
        return set()
    return {route_service(route, on_tenant_host=False), route_service(route, on_tenant_host=True)}


def _forwarded(path: str) -> bool:
    private = any(path == prefix or path.startswith(prefix + "/") for prefix in PRIVATE_PREFIXES)
    return not private and path not in NOT_FORWARDED


def _unrouted(service: str, paths: list[str]) -> list[str]:
    return [path for path in paths if not _served_by(route_match(path)) & _processes(service)]


@pytest.mark.parametrize("service", SERVICES)
def test_every_openapi_path_is_routed_to_the_service_that_serves_it(
    served: dict[str, dict[str, Any]], service: str
) -> None:
    paths = [_PARAMETER.sub("1", path) for path in served[service]["openapi"]["paths"] if _forwarded(path)]
    assert _unrouted(service, paths) == [], f"add them to apps/{service}/routes.toml"


@pytest.mark.parametrize("service", SERVICES)
def test_every_url_and_websocket_route_is_routed_to_the_service_that_serves_it(
    served: dict[str, dict[str, Any]], service: str
) -> None:
    routes = served[service]["routes"]
    paths = [path for path in [*routes["http"], *routes["websocket"]] if _forwarded(path)]
    assert _unrouted(service, paths) == [], f"add them to apps/{service}/routes.toml"


def test_websockets_go_to_the_websocket_process(served: dict[str, dict[str, Any]]) -> None:
    sockets = {path for service in SERVICES for path in served[service]["routes"]["websocket"]}
    assert sockets, "the projects service serves board sockets"
    for path in sockets:
        route = route_match(path)
        assert route is not None and route.service == "projects_ws", path


def test_the_internal_endpoints_are_never_routed(served: dict[str, dict[str, Any]]) -> None:
    internal = [path for service in SERVICES for path in served[service]["routes"]["http"] if not _forwarded(path)]
    assert any(path.startswith("/internal/") for path in internal)
    assert [path for path in internal if path.startswith("/internal") and route_match(path)] == []


def test_every_declared_route_is_served(served: dict[str, dict[str, Any]]) -> None:
    """A declaration without code behind it is drift too, unless it says it is `pending`."""
    dead = []
    for declaration in DECLARED:
        routes = served[declaration.service]["routes"]
        paths = [*routes["http"], *routes["websocket"], routes["static_url"]]
        if not declaration.pending and not any(
            path == declaration.prefix or path.startswith(declaration.prefix.rstrip("/") + "/") for path in paths
        ):
            dead.append(f"{declaration.service}: {declaration.prefix}")
    assert dead == []


def test_api_paths_are_not_pages_and_html_pages_are(served: dict[str, dict[str, Any]]) -> None:
    """A page route turns an anonymous browser's 401 into a redirect to /login: for HTML pages, never JSON.

    Identity's pages are where an anonymous browser goes (sign-in, invitations), and Django's admin
    sends to its own login page, so neither is a page route.
    """
    for service in SERVICES:
        for path in served[service]["openapi"]["paths"]:
            route = route_match(_PARAMETER.sub("1", path))
            assert route is None or not route.page, f"{service} {path}"
        for path, module in served[service]["routes"]["http"].items():
            if service != "identity" and module == f"apps.{service}.views":
                route = route_match(path)
                assert route is not None and route.page, f"{service} {path} is an HTML page"
