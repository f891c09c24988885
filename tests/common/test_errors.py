"""Every error in the platform's form (apps/common/errors.py, ErrorContractMiddleware), DEBUG or not."""

import pytest
from django.test import Client

pytestmark = [pytest.mark.urls("tests.common.error_urls"), pytest.mark.django_db]

BROWSER = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings) -> bool:
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def anyone() -> Client:
    # Django's test client re-raises a view's exception by default; a real client just gets the answer.
    return Client(raise_request_exception=False)


def assert_error_contract(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "request_id"}
    assert error["request_id"] == response["X-Request-ID"]
    if code:
        assert error["code"] == code
    return error


@pytest.mark.parametrize("path", ["/api/nothing-here", "/.well-known/nothing", "/internal/nothing"])
def test_an_unmatched_api_path_is_json_and_names_no_pattern(anyone, debug, path) -> None:
    response = anyone.get(path, **BROWSER)

    error = assert_error_contract(response, 404, "not_found")
    assert "api/echo" not in response.content.decode()
    assert "URLconf" not in error["message"]


def test_an_unmatched_short_link_path_is_a_page_for_a_browser_and_json_for_a_script(anyone, debug) -> None:
    page = anyone.get("/s/nothing/more", **BROWSER)
    script = anyone.get("/s/nothing/more")

    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    assert b"URLconf" not in page.content
    assert_error_contract(script, 404, "not_found")


@pytest.mark.parametrize("path", ["/api/crash", "/api/drf-crash", "/api/ninja-crash"])
def test_an_unhandled_exception_on_an_api_path_is_a_json_500_without_details(anyone, debug, path) -> None:
    response = anyone.get(path, **BROWSER)

    assert_error_contract(response, 500, "internal_error")
    assert b"secret detail" not in response.content
    assert b"Traceback" not in response.content


def test_http404_from_a_view_is_json(anyone, debug) -> None:
    response = anyone.get("/api/missing")

    assert_error_contract(response, 404, "not_found")
    assert b"secret detail" not in response.content


def test_a_wrong_method_on_an_api_path_is_a_json_405_with_allow(anyone, debug) -> None:
    response = anyone.delete("/api/items")

    assert_error_contract(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


def test_a_browser_gets_an_html_page_that_lists_no_patterns(anyone, debug) -> None:
    unmatched = anyone.get("/pages/nowhere", **BROWSER)
    crashed = anyone.get("/pages/crash", **BROWSER)
    missing = anyone.get("/pages/missing", **BROWSER)

    for response, status in ((unmatched, 404), (crashed, 500), (missing, 404)):
        assert response.status_code == status
        assert response["Content-Type"].startswith("text/html")
        body = response.content.decode()
        assert "Kanban" in body and str(status) in body
        for leak in ("api/echo", "URLconf", "Traceback", "secret detail", "DEBUG", "SECRET_KEY"):
            assert leak not in body
        assert response["X-Request-ID"] in body


def test_a_page_path_without_html_in_accept_gets_json(anyone, debug) -> None:
    response = anyone.get("/pages/missing", HTTP_ACCEPT="application/json")

    assert_error_contract(response, 404, "not_found")


def test_a_wrong_method_on_a_page_is_a_page(anyone, debug) -> None:
    response = anyone.post("/pages/page", **BROWSER)

    assert response.status_code == 405
    assert response["Content-Type"].startswith("text/html")
    assert b"Not allowed" in response.content
    assert response["Allow"] == "GET"


def test_a_bad_host_is_a_json_400_even_with_debug(anyone, debug) -> None:
    response = anyone.get("/api/items/1", HTTP_HOST="evil.example")

    assert_error_contract(response, 400, "invalid_host")


def test_a_csrf_failure_is_json_on_an_api_path(debug) -> None:
    strict = Client(enforce_csrf_checks=True, raise_request_exception=False)

    response = strict.post("/api/echo/x", data="name=x", content_type="application/x-www-form-urlencoded")

    assert_error_contract(response, 403)


def test_the_admin_login_page_still_renders(anyone, debug) -> None:
    # Sanity: the contract leaves working pages alone.
    response = anyone.get("/pages/page", **BROWSER)

    assert response.status_code == 200
    assert response.content == b"<p>a page</p>"


def test_a_value_the_database_refuses_is_a_400_not_a_500(anyone, debug) -> None:
    response = anyone.get("/api/out-of-range")

    error = assert_error_contract(response, 400, "invalid_value")
    assert "integer" not in error["message"]


def test_a_ninja_404_is_the_platform_shape(anyone, debug) -> None:
    response = anyone.get("/api/ninja-missing")

    assert_error_contract(response, 404, "not_found")
    assert b"secret detail" not in response.content


def test_curl_on_a_page_path_gets_json(anyone, debug) -> None:
    response = anyone.get("/pages/missing", HTTP_ACCEPT="*/*")

    assert_error_contract(response, 404, "not_found")


def test_a_database_outage_is_a_503_with_retry_after(anyone, debug) -> None:
    response = anyone.get("/api/database-down")

    error = assert_error_contract(response, 503, "database_unavailable")
    assert "too many clients" not in error["message"]
    assert response["Retry-After"] == "1"


def test_a_failure_outside_any_view_is_answered_in_the_platform_form(anyone, debug, settings) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.common.error_urls.FailingMiddleware"]

    database_down = anyone.get("/api/middleware-database-down")
    crashed = anyone.get("/pages/middleware-crash", **BROWSER)

    assert_error_contract(database_down, 503, "database_unavailable")
    assert crashed.status_code == 500
    assert crashed["Content-Type"].startswith("text/html")
    assert b"secret detail" not in crashed.content and b"Traceback" not in crashed.content
