"""Input no service can store or parse is refused at the door (RequestGuardMiddleware, apps.common.ninja)."""

import json

import pytest
from django.test import Client

pytestmark = [pytest.mark.urls("tests.common.error_urls"), pytest.mark.django_db]


@pytest.fixture
def anyone() -> Client:
    return Client(raise_request_exception=False)


def post_json(client: Client, path: str, body: object):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json")


def error_code(response) -> str:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()["error"]["code"]


@pytest.mark.parametrize("path", ["/api/echo/a%00b", "/api/echo/%00", "/api/echo/a%0Ab", "/api/echo/a%7Fb"])
def test_control_characters_in_the_path_are_a_400(anyone, path) -> None:
    response = anyone.get(path)

    assert response.status_code == 400
    assert error_code(response) == "invalid_path"


@pytest.mark.parametrize("digit", ["\u00b2", "\u0663", "\uff13", "\u07c1"])
def test_non_ascii_digits_in_the_path_are_a_400(anyone, digit) -> None:
    response = anyone.get(f"/api/echo/1{digit}")

    assert response.status_code == 400
    assert error_code(response) == "invalid_path"


def test_plain_text_in_a_path_passes(anyone) -> None:
    response = anyone.get("/api/echo/caf%C3%A9-42")

    assert response.status_code == 200
    assert response.json()["name"] == "café-42"


@pytest.mark.parametrize("query", ["q=a%00b", "a%00=1", "q=%01", "q=%1B[31m"])
def test_control_characters_in_the_query_are_a_400(anyone, query) -> None:
    response = anyone.get(f"/api/echo/x?{query}")

    assert response.status_code == 400
    assert error_code(response) == "invalid_query"


def test_tabs_and_line_breaks_in_a_query_value_pass(anyone) -> None:
    response = anyone.get("/api/echo/x?q=two%0Alines%09tab")

    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    ['{"name": "a\\u0000b"}', '{"name": "\\ud800"}', '{"a\\u0000": 1, "name": "x"}', '[{"name": ["\\u0000"]}]'],
)
def test_nul_and_lone_surrogates_anywhere_in_json_are_a_400(anyone, body) -> None:
    response = anyone.post("/api/items", data=body, content_type="application/json")

    assert response.status_code == 400
    assert error_code(response) == "invalid_characters"


def test_an_escaped_backslash_before_u0000_is_plain_text(anyone) -> None:
    response = anyone.post("/api/items", data=json.dumps({"name": "\\u0000"}), content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {"name": "\\u0000"}


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deeply_nested_json_is_a_400(anyone, depth) -> None:
    body = "[" * depth + "]" * depth

    response = anyone.post("/api/items", data=body, content_type="application/json")

    assert response.status_code == 400
    assert error_code(response) == "too_deep"


def test_deep_json_is_refused_whatever_content_type_it_claims(anyone) -> None:
    # Ninja parses a body as JSON whatever its Content-Type says.
    response = anyone.post("/api/items", data="[" * 5000 + "]" * 5000, content_type="text/plain")

    assert response.status_code == 400
    assert error_code(response) == "too_deep"


def test_an_integer_with_thousands_of_digits_is_a_400(anyone) -> None:
    response = post_json(anyone, "/api/items", '{"name": "x", "parent": ' + "9" * 5000 + "}")

    assert response.status_code == 400
    assert error_code(response) == "parse_error"


def test_broken_json_is_a_400(anyone) -> None:
    response = anyone.post("/api/items", data='{"name": ', content_type="application/json")

    assert response.status_code == 400
    assert error_code(response) == "parse_error"


def test_a_body_over_the_limit_is_a_json_413(anyone, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = anyone.post("/api/items", data=json.dumps({"name": "x" * 2000}), content_type="application/json")

    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"


def test_a_form_over_the_limit_is_a_json_413(anyone, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = anyone.post("/api/echo/x", data="name=" + "x" * 2000, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 413


def test_nul_in_a_form_field_is_a_400(anyone) -> None:
    response = anyone.post("/api/echo/x", data="name=a%00b", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert error_code(response) == "invalid_characters"


@pytest.mark.parametrize("value", [2**63, -1, 0, 10**30])
def test_ids_past_bigint_or_not_positive_are_refused_by_the_schema(anyone, value) -> None:
    response = post_json(anyone, "/api/items", {"name": "x", "parent": value})

    assert response.status_code == 422
    assert error_code(response) == "validation_error"


def test_a_path_id_past_bigint_is_refused(anyone) -> None:
    response = anyone.get("/api/items/" + "9" * 30)

    assert response.status_code == 422
    body = response.json()
    assert body["error"]["code"] == "validation_error"


def test_valid_input_passes(anyone) -> None:
    response = post_json(anyone, "/api/items", {"name": "ok \u00b2", "parent": 2**63 - 1})

    assert response.status_code == 200
    assert response.json() == {"name": "ok \u00b2"}
