"""Issue 8, item 5: one reading of the path, routed, authorized and forwarded as is."""

import pytest

from gateway.errors import GatewayError
from gateway.paths import path_normalize
from tests.gateway import rawhttp
from tests.gateway.conftest import Gateway


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("/api/tasks/9", "/api/tasks/9"),
        ("/admin/../internal/tenant-owners", "/internal/tenant-owners"),
        ("/login/../api/auth/token", "/api/auth/token"),
        ("/api/auth/./token", "/api/auth/token"),
        ("/api/auth/%2e%2e/%2E%2E/internal", "/internal"),
        ("/api/auth/.%2e/internal/", "/api/internal/"),
        ("//internal//tenant-owners", "/internal/tenant-owners"),
        ("/api/tasks/%7E%41%5f", "/api/tasks/~A_"),
        ("/api/tasks/caf%c3%a9", "/api/tasks/caf%C3%A9"),
        ("/api/tasks/a%20b", "/api/tasks/a%20b"),
        ("/api/tasks/100%25", "/api/tasks/100%25"),
        ("/projects/", "/projects/"),
        ("/projects/.", "/projects/"),
        ("/", "/"),
    ],
)
def test_paths_are_normalized_once(raw: str, normalized: str) -> None:
    assert path_normalize(raw.encode()) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        b"/..",
        b"/%2e%2e/internal",
        b"/api/../../internal",
        b"/api/auth/..%2f..%2finternal",
        b"/api/auth/..%2F..%2Finternal",
        b"/api/auth/%252e%252e/internal",
        b"/api/auth/%252F",
        b"/api/auth\\..\\internal",
        b"/api/auth/%5c..%5cinternal",
        b"/api/auth/token%00",
        b"/api/auth/token\x00",
        b"/api/tasks/1%0d%0aX-Injected:%201",
        b"/api/tasks/\x01",
        b"/api/tasks/%7f",
        b"/api/tasks/%zz",
        b"/api/tasks/%4",
        b"api/tasks",
        b"*",
    ],
)
def test_ambiguous_paths_are_refused(raw: bytes) -> None:
    with pytest.raises(GatewayError) as refused:
        path_normalize(raw)
    assert (refused.value.status, refused.value.code) == (400, "invalid_path")


INTERNAL_VARIANTS = [
    "/internal/tenant-owners",
    "/admin/../internal/tenant-owners",
    "/api/auth/../../internal/tenant-owners",
    "/%2e%2e/internal/tenant-owners",
    "/api/auth/..%2f..%2finternal/tenant-owners",
    "/api/auth/%252e%252e/%252e%252e/internal/tenant-owners",
    "//internal/tenant-owners",
    "///internal/tenant-owners",
    "/./internal/tenant-owners",
    "/%69nternal/tenant-owners",  # an encoded unreserved letter
    "/INTERNAL/tenant-owners",
    "/Internal/tenant-owners",
    "/api/auth\\..\\..\\internal/tenant-owners",
    "/api/auth/%5c..%5c..%5cinternal/tenant-owners",
    "/s/../internal/tenant-owners",
    "/internal%2ftenant-owners",
    "/internal/tenant-owners%00",
    "/.well-known/../internal/tenant-owners",
    "/api/tenants/..;/..;/internal/tenant-owners",
]


@pytest.mark.parametrize("target", INTERNAL_VARIANTS)
@pytest.mark.parametrize("host", ["localhost:8000", "acme.localhost:8000"])
def test_internal_is_unreachable_in_every_encoding(gateway: Gateway, target: str, host: str) -> None:
    response = rawhttp.get(gateway.base_url, target, host=host, token=gateway.stack.token() if "acme" in host else None)

    assert response.status in (400, 404), (target, response.status, response.body)
    error = response.json()["error"]
    assert error["code"] in ("invalid_path", "not_found")
    assert error["request_id"] == response.headers["x-request-id"]
    assert "x-served-by" not in response.headers  # no service answered


def test_the_service_gets_exactly_the_routed_path(gateway: Gateway) -> None:
    response = rawhttp.get(
        gateway.base_url, "/api/tasks/./9/../10/%7Ex/caf%c3%a9?q=%2e%2e/x", token=gateway.stack.token()
    )

    echoed = response.json()
    assert echoed["service"] == "projects"
    assert echoed["raw_path"] == "/api/tasks/10/~x/caf%C3%A9"
    assert echoed["query"] == "q=%2e%2e/x"  # the query is the service's to read, unchanged


def test_routing_and_authorization_follow_the_normalized_path(gateway: Gateway) -> None:
    # Public prefix, then climbing out of it: the route and the token rule are the target's.
    sneaky = rawhttp.get(gateway.base_url, "/api/auth/token/../../projects")
    browser_page = rawhttp.get(gateway.base_url, "/s/../projects/", extra="Accept: text/html\r\n")

    assert sneaky.status == 401
    assert sneaky.json()["error"]["code"] == "invalid_token"
    assert browser_page.status == 302  # the /projects/ page's login redirect, not the public /s/ route


def test_dot_segments_do_not_skip_the_login_limit(make_gateway) -> None:
    gateway = make_gateway(rate_limit_login="2/minute")
    login = (
        b"POST %s HTTP/1.1\r\nHost: acme.localhost:8000\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    )

    statuses = [
        rawhttp.raw_request(gateway.base_url, login % target).status
        for target in (b"/login/../api/auth/token", b"/api/auth/./token", b"//api/auth/token/", b"/api/auth/token")
    ]

    assert statuses == [200, 200, 429, 429]


def test_a_websocket_path_is_normalized_too(gateway: Gateway) -> None:
    response = rawhttp.raw_request(
        gateway.base_url,
        b"GET /ws/../internal/tenant-owners HTTP/1.1\r\nHost: acme.localhost:8000\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )

    assert response.status == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "target",
    [
        "/api/tasks/" + "a" * 4000,
        "/api/tasks?q=" + "a" * 4000,
        "/api/tasks/" + "%C3%A9" * 700,
        "/api/tasks/" + "^" * 1500,  # 1,511 bytes sent, 4,511 forwarded once normalized to %5E
    ],
)
def test_an_address_too_long_to_forward_is_refused_in_the_contract(gateway: Gateway, target: str) -> None:
    response = rawhttp.get(gateway.base_url, target.encode("utf-8"), token=gateway.stack.token())

    assert response.status == 414
    assert response.json()["error"]["code"] == "uri_too_long"


def test_the_longest_address_forwarded_reaches_the_service(gateway: Gateway) -> None:
    path = "/api/tasks/" + "a" * (3999 - len("/api/tasks/") - 1)  # with the query's `?`: 3,999 bytes

    response = rawhttp.get(gateway.base_url, path + "?", token=gateway.stack.token())

    assert response.status == 200
    assert response.json()["raw_path"] == path


@pytest.mark.parametrize("target", ["/s/abc%00def", "/s/" + "a" * 4000])
def test_a_browser_following_a_malformed_short_link_reads_a_page(gateway: Gateway, target: str) -> None:
    page = rawhttp.get(gateway.base_url, target, extra="Accept: text/html\r\n")
    script = rawhttp.get(gateway.base_url, target)

    assert page.status == script.status >= 400
    assert page.headers["content-type"].startswith("text/html") and b"<!doctype html>" in page.body
    assert script.json()["error"]["code"] in {"invalid_path", "uri_too_long"}
