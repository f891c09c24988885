"""Issue 11 (gateway side): whatever the gateway itself answers follows the JSON error contract,
on every kind of path; a service that is down, broken or slow is a JSON 502/503/504."""

import base64
import hashlib
import re

import pytest

from gateway.middleware import security_headers_add
from tests.gateway import rawhttp
from tests.gateway.conftest import Gateway
from tests.gateway.upstreams import broken_server
from tests.helpers import closed_port_url


def _assert_contract(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "path",
    ["/api/nothing", "/apix", "/.well-known/openid-configuration", "/internal/tenant-owners", "/internal", "/sx"],
)
def test_unrouted_paths_of_every_kind_are_json_404s(gateway: Gateway, path: str) -> None:
    _assert_contract(gateway.get(path, host="localhost:8000", token=None), 404, "not_found")


def test_the_gateways_own_endpoints_answer_json_errors(gateway: Gateway) -> None:
    _assert_contract(gateway.get("/api/docs/assets/missing.js", host="localhost:8000", token=None), 404, "not_found")
    _assert_contract(gateway.request("POST", "/healthz", host="localhost:8000", token=None), 405, "method_not_allowed")


def test_an_invalid_path_is_a_json_400_on_each_kind_of_path(gateway: Gateway) -> None:
    for target in ("/api/tasks/%2f", "/s/%00", "/.well-known/..%2fjwks.json", "/internal/%5c"):
        response = rawhttp.get(gateway.base_url, target)
        assert response.status == 400, target
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"]["code"] == "invalid_path"


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (b"", 502, "bad_gateway"),  # accepts, then hangs up
        (b"NOT HTTP AT ALL\r\n\r\n", 502, "bad_gateway"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 12\r\n\r\n0123456789", 502, "bad_gateway"),
    ],
)
def test_a_broken_service_is_a_json_502(make_gateway, answer: bytes, status: int, code: str) -> None:
    with broken_server(answer) as url:
        gateway = make_gateway(shortener_url=url)

        response = gateway.get("/s/abc", token=None)

    _assert_contract(response, status, code)
    assert response.json()["error"]["service"] == "shortener"


def test_a_down_service_is_a_json_503_and_a_slow_one_a_json_504(make_gateway) -> None:
    down = make_gateway(shortener_url=closed_port_url())
    slow = make_gateway(upstream_timeout=0.3)

    _assert_contract(down.get("/s/abc", token=None), 503, "service_unavailable")
    _assert_contract(slow.get("/api/tasks/slow?s=2"), 504, "gateway_timeout")


def test_a_non_idempotent_request_is_not_retried_after_a_broken_answer(make_gateway) -> None:
    with broken_server(b"") as url:
        gateway = make_gateway(projects_url=url)
        response = gateway.request("POST", "/api/tasks", json={"title": "once"})

    _assert_contract(response, 502, "bad_gateway")


def test_what_the_gateway_answers_itself_carries_the_security_headers(gateway: Gateway) -> None:
    for response in (
        gateway.get("/api/nothing", host="localhost:8000", token=None),
        gateway.get("/healthz", host="localhost:8000", token=None),
        gateway.get("/api/openapi.json", host="localhost:8000", token=None),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_swagger_ui_runs_its_start_up_script_by_hash_not_by_allowing_inline_script(gateway: Gateway) -> None:
    page = gateway.get("/api/docs", host="localhost:8000", token=None)
    policy = page.headers["content-security-policy"]
    script_src = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    assert inline
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in script_src
    assert "frame-ancestors 'none'" in policy


def test_a_services_own_security_headers_are_kept(gateway: Gateway) -> None:
    theirs = [(b"content-security-policy", b"default-src 'self'"), (b"X-Frame-Options", b"SAMEORIGIN")]
    merged = dict(security_headers_add(theirs))
    assert merged[b"content-security-policy"] == b"default-src 'self'"
    assert merged[b"X-Frame-Options"] == b"SAMEORIGIN" and b"x-frame-options" not in merged
    assert merged[b"x-content-type-options"] == b"nosniff"
