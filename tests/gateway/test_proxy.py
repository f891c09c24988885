import hashlib
import json
import logging
import time

import httpx
import pytest

from tests.gateway.conftest import ACME_ID, Gateway
from tests.helpers import closed_port_url

ROUTED = [
    ("/api/tenants", "apex", "tenancy"),
    ("/api/auth/token", "tenant", "identity"),
    ("/api/users/7", "tenant", "identity"),
    ("/api/roles", "tenant", "identity"),
    ("/login", "tenant", "identity"),
    ("/logout", "tenant", "identity"),
    ("/api/projects/1/members", "tenant", "projects"),
    ("/api/boards/3", "tenant", "projects"),
    ("/api/tasks/9/comments", "tenant", "projects"),
    ("/projects/", "tenant", "projects"),
    ("/boards/3/", "tenant", "projects"),
    ("/static/css/app.css", "tenant", "projects"),
    ("/api/links/abc", "tenant", "shortener"),
    ("/s/abc", "apex", "shortener"),
    ("/api/analytics/boards", "tenant", "analytics"),
    ("/analytics/", "tenant", "analytics"),
    ("/admin/", "apex", "tenancy"),
    ("/admin/", "tenant", "identity"),
]


@pytest.mark.parametrize(("path", "host_kind", "service"), ROUTED)
def test_each_prefix_reaches_its_service(gateway: Gateway, path: str, host_kind: str, service: str) -> None:
    host = "localhost:8000" if host_kind == "apex" else "acme.localhost:8000"

    response = gateway.get(path, host=host)

    assert response.status_code == 200, response.text
    assert response.json()["service"] == service
    assert response.json()["path"] == path


def test_jwks_is_served_by_identity_without_a_token(gateway: Gateway) -> None:
    response = gateway.get("/.well-known/jwks.json", token=None)

    assert response.status_code == 200
    assert response.json()["keys"][0]["kid"] == "key-1"


def test_services_see_the_original_host_and_forwarding_headers(gateway: Gateway) -> None:
    response = gateway.get("/api/projects?x=1&y=%20z", headers={"X-Forwarded-For": "203.0.113.9"})

    echoed = response.json()
    headers = echoed["headers"]
    assert echoed["query"] == "x=1&y=%20z"
    assert headers["host"] == "acme.localhost:8000"
    assert headers["x-forwarded-host"] == "acme.localhost:8000"
    assert headers["x-forwarded-proto"] == "http"
    # The socket peer, not what the client claimed: the test client is no trusted proxy.
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-tenant-id"] == ACME_ID
    assert headers["x-tenant-slug"] == "acme"
    assert headers["authorization"].startswith("Bearer ")
    assert headers["x-request-id"] == response.headers["x-request-id"]


def test_client_cannot_claim_a_tenant_or_internal_token(gateway: Gateway) -> None:
    response = gateway.get(
        "/api/projects",
        headers={"X-Tenant-ID": "evil", "X-Tenant-Slug": "globex", "X-Internal-Token": "dev-internal-token"},
    )

    header_list = response.json()["header_list"]
    assert [value for name, value in header_list if name == "x-tenant-id"] == [ACME_ID]
    assert [value for name, value in header_list if name == "x-tenant-slug"] == ["acme"]
    assert not [name for name, _ in header_list if name == "x-internal-token"]


def test_hop_by_hop_headers_are_not_forwarded(gateway: Gateway) -> None:
    response = gateway.get("/api/projects", headers={"Connection": "keep-alive, X-Secret", "X-Secret": "1", "TE": "x"})

    headers = response.json()["headers"]
    assert "x-secret" not in headers
    assert "te" not in headers


def test_a_valid_request_id_is_kept_and_a_bad_one_replaced(gateway: Gateway) -> None:
    kept = gateway.get("/api/projects", headers={"X-Request-ID": "trace-abc.123"})
    replaced = gateway.get("/api/projects", headers={"X-Request-ID": "bad id\twith spaces"})
    generated = gateway.get("/api/projects")

    assert kept.headers["x-request-id"] == "trace-abc.123"
    assert kept.json()["headers"]["x-request-id"] == "trace-abc.123"
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"
    assert len(replaced.headers["x-request-id"]) == 32
    assert generated.headers["x-request-id"] != replaced.headers["x-request-id"]


def test_every_gateway_answer_carries_a_request_id(gateway: Gateway) -> None:
    for response in (gateway.get("/nowhere"), gateway.get("/healthz"), gateway.get("/api/docs")):
        assert response.headers["x-request-id"]


def test_unknown_path_is_a_json_404(gateway: Gateway) -> None:
    response = gateway.get("/nowhere/at/all")

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/internal/tenant-owners", "/api/tasksX", "/sx/abc"])
def test_paths_outside_the_table_are_never_forwarded(gateway: Gateway, path: str) -> None:
    response = gateway.request("POST", path, json={})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_service_that_is_down_is_named_in_a_503(make_gateway) -> None:
    gateway = make_gateway(projects_url=closed_port_url())

    response = gateway.get("/api/projects")

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["service"] == "projects"
    assert error["request_id"] == response.headers["x-request-id"]


def test_a_slow_service_gets_a_504_within_the_timeout(make_gateway) -> None:
    gateway = make_gateway(upstream_timeout=0.5)

    started = time.monotonic()
    response = gateway.get("/api/tasks/slow?s=3")
    elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "gateway_timeout"
    assert response.json()["error"]["service"] == "projects"
    assert elapsed < 1.5


def test_a_chunked_body_reaches_the_service_whole_with_a_length(gateway: Gateway) -> None:
    block = bytes(range(256)) * 1024  # 256 KiB
    expected = hashlib.sha256(block * 3).hexdigest()

    def body():  # a generator: httpx sends it with Transfer-Encoding: chunked
        yield from (block, block, block)

    echoed = gateway.request("POST", "/api/tasks/9/comments", content=body()).json()

    assert echoed["body_len"] == 3 * len(block)
    assert echoed["body_sha256"] == expected
    assert echoed["headers"]["content-length"] == str(3 * len(block))
    assert "transfer-encoding" not in echoed["headers"]


def test_large_responses_stream_through_intact(gateway: Gateway) -> None:
    megabytes = 32
    block = bytes(range(256)) * 4096
    expected = hashlib.sha256(block * megabytes).hexdigest()

    digest, size = hashlib.sha256(), 0
    with gateway.http.stream(
        "GET",
        f"/api/tasks/download?mb={megabytes}",
        headers={"Host": "acme.localhost:8000", "Authorization": f"Bearer {gateway.stack.token()}"},
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            digest.update(chunk)
            size += len(chunk)
    assert size == megabytes * len(block)
    assert digest.hexdigest() == expected


def test_the_service_sees_no_body_until_the_client_has_sent_all_of_it(gateway: Gateway, stack) -> None:
    seen = stack.states["projects"].first_chunk_seen
    seen_early: list[bool] = []

    def body():
        yield b"x" * 65536
        # A slow client holds only the gateway: the service has not been contacted yet.
        seen_early.append(seen.wait(timeout=0.5))
        yield b"y" * 65536

    response = gateway.request("POST", "/api/tasks/upload", content=body())

    assert response.status_code == 200
    assert response.json()["body_len"] == 2 * 65536
    assert seen_early == [False]


def test_response_body_reaches_the_client_before_the_service_finishes(gateway: Gateway) -> None:
    started = time.monotonic()
    with gateway.http.stream(
        "GET",
        "/api/tasks/drip",
        headers={"Host": "acme.localhost:8000", "Authorization": f"Bearer {gateway.stack.token()}"},
    ) as response:
        chunks = response.iter_raw()
        first = next(chunks)
        first_at = time.monotonic() - started
        rest = b"".join(chunks)

    assert first == b"first;"
    assert first_at < 1.0
    assert rest == b"second"


def test_every_set_cookie_header_comes_back(gateway: Gateway) -> None:
    response = gateway.get("/api/tasks/cookies")

    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    assert {cookie.split("=")[0] for cookie in cookies} == {"first", "second"}


def test_a_proxied_response_has_one_server_and_one_date_header(gateway: Gateway) -> None:
    response = gateway.get("/api/boards/5")

    assert response.status_code == 200
    assert len(response.headers.get_list("server")) == 1
    assert len(response.headers.get_list("date")) == 1


def test_one_json_log_line_per_request(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        response = gateway.get("/api/boards/5", headers={"X-Request-ID": "log-check-1"})
        # The line is written when the response finishes, in the server's thread.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not any(
            getattr(r, "fields", {}).get("request_id") == "log-check-1" for r in caplog.records
        ):
            time.sleep(0.01)

    assert response.status_code == 200
    lines = [r for r in caplog.records if getattr(r, "fields", {}).get("request_id") == "log-check-1"]
    assert len(lines) == 1
    fields = lines[0].fields
    assert fields["method"] == "GET"
    assert fields["path"] == "/api/boards/5"
    assert fields["status"] == 200
    assert fields["service"] == "projects"
    assert fields["tenant"] == "acme"
    assert fields["duration_ms"] >= 0
    formatted = json.loads(logging.getLogger("gateway").handlers[0].formatter.format(lines[0]))
    assert formatted["request_id"] == "log-check-1"


def test_head_and_delete_pass_through(gateway: Gateway) -> None:
    assert gateway.request("DELETE", "/api/tasks/4").json()["method"] == "DELETE"
    head = gateway.request("HEAD", "/api/tasks/4")
    assert head.status_code == 200
    assert head.content == b""


def test_the_gateway_adds_no_headers_of_its_own_client(gateway: Gateway) -> None:
    response = httpx.get(
        f"{gateway.base_url}/api/tasks/1",
        headers={"Host": "acme.localhost:8000", "Authorization": f"Bearer {gateway.stack.token()}"},
    )
    sent = dict(response.json()["headers"])
    assert sent["accept-encoding"] == "gzip, deflate"  # what httpx (the test's client) sent, nothing more

    raw = [name for name, _ in response.json()["header_list"]]
    assert raw.count("accept-encoding") == 1


def test_connections_to_a_service_are_kept_alive_and_reused(gateway: Gateway) -> None:
    ports = {gateway.get("/api/tasks/1").json()["client_port"] for _ in range(5)}

    assert len(ports) == 1  # one pooled connection, one request after another


def test_a_head_request_gets_the_headers_and_no_body(gateway: Gateway) -> None:
    response = gateway.request("HEAD", "/api/tasks/download?mb=1")

    assert response.status_code == 200
    assert response.content == b""
    assert gateway.get("/api/tasks/1").status_code == 200  # the connection after it is sound


def test_requests_beyond_the_connection_cap_wait_for_a_slot(make_gateway, stack) -> None:
    gateway = make_gateway(max_connections=1, upstream_timeout=0.5)
    headers = {"Host": "acme.localhost:8000", "Authorization": f"Bearer {stack.token()}"}

    with gateway.http.stream("GET", "/api/tasks/download?mb=64", headers=headers) as held:
        assert held.status_code == 200  # unread: the gateway's relay waits on this client, holding the slot
        waiting = gateway.get("/api/tasks/1")
    after = gateway.get("/api/tasks/1")

    assert waiting.status_code == 504
    assert waiting.json()["error"]["code"] == "gateway_timeout"
    assert after.status_code == 200
