"""Issue 8, item 11: every error on an API path is the JSON contract, and a browser gets a page.

The stack runs with DEBUG on (the launcher's development settings), so each of these would be
Django's technical 404/500 page, listing the URL patterns, without apps.common's error contract.
"""

import httpx
import pytest

from tests.security.input_helpers import APEX, DEMO, demo_owner_token

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# What Django's debug pages show and no page of ours ever does.
LEAKS = ("URLconf", "urlpatterns", "Traceback", "DEBUG = True", "SECRET_KEY", "api/boards/<int", "django.")


@pytest.fixture(scope="module")
def token(stack) -> str:
    return demo_owner_token(stack.gateway)


def assert_contract(response: httpx.Response, status: int | tuple[int, ...]) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "request_id"}
    assert error["request_id"] == response.headers["x-request-id"]
    for leak in LEAKS:
        assert leak not in response.text
    return error


@pytest.mark.parametrize(
    ("method", "path", "host", "status"),
    [
        # Unmatched paths below a routed prefix reach the service's URL resolver.
        ("GET", "/api/tasks/1/nothing", DEMO, 404),
        ("GET", "/api/projects/nothing", DEMO, 404),
        ("GET", "/api/boards/1/nothing/else", DEMO, 404),
        ("GET", "/api/auth/nothing", DEMO, 404),
        ("GET", "/api/users/invitations/nothing/more", DEMO, 404),
        # The gateway asks for a token first on the apex's non-public paths: JSON either way.
        ("GET", "/api/tenants/demo/nothing", APEX, (401, 404)),
        ("GET", "/.well-known/jwks.json/nothing", DEMO, 404),
        ("GET", "/api/tasks/999999", DEMO, 404),
        # Methods a path does not take: Ninja's, DRF's and plain views' 405s.
        ("DELETE", "/api/tasks", DEMO, 405),
        ("PUT", "/api/projects", DEMO, 405),
        ("DELETE", "/api/auth/token", DEMO, 405),
        ("DELETE", "/api/tenants", APEX, (401, 405)),
    ],
)
def test_api_errors_are_json_even_with_debug_on(client, token, method, path, host, status) -> None:
    # The demo owner's token is for the demo tenant's host; the apex takes none.
    auth = {"Authorization": f"Bearer {token}"} if host == DEMO else {}
    for accept in (BROWSER, "application/json", "*/*"):
        response = client.request(method, path, headers={"Host": host, "Accept": accept, **auth})
        assert_contract(response, status)


def test_a_csrf_failure_on_an_api_path_is_json(client, token) -> None:
    # A cookie-authenticated write without the CSRF token (the access cookie of a browser).
    cookie = f"access_token={token}"

    response = client.post(
        "/api/projects", json={"key": "CSRF", "name": "x"}, headers={"Host": DEMO, "Cookie": cookie, "Accept": BROWSER}
    )

    assert_contract(response, 403)


@pytest.mark.parametrize(
    ("path", "status"),
    [("/projects/nothing", 404), ("/boards/999999/", 404), ("/boards/1/tasks/999999/", 404), ("/login/nothing", 404)],
)
def test_a_browser_gets_a_helpful_html_page_that_lists_no_patterns(client, token, path, status) -> None:
    response = client.get(path, headers={"Host": DEMO, "Cookie": f"access_token={token}", "Accept": BROWSER})

    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "Kanban" in response.text and str(status) in response.text
    assert response.headers["x-request-id"] in response.text
    for leak in LEAKS:
        assert leak not in response.text
    assert "<script>" not in response.text


def test_the_admin_404_is_a_page_not_a_debug_page(client) -> None:
    response = client.get("/admin/nothing/here/", headers={"Host": APEX, "Accept": BROWSER})

    assert response.status_code in (302, 404)
    for leak in LEAKS:
        assert leak not in response.text
