"""The apex's landing page and signup form through the gateway: `/` and `/signup` are tenancy's on
the apex only, `/` swallows no other path, and the form spends signup's budgets."""

import pytest

from gateway.auth import path_is_public
from tests.gateway.conftest import Gateway

APEX = "localhost:8000"
TENANT = "acme.localhost:8000"


@pytest.mark.parametrize("path", ["/", "/signup", "/signup/acme"])
def test_the_landing_page_and_the_signup_pages_reach_tenancy_on_the_apex(gateway: Gateway, path: str) -> None:
    response = gateway.get(path, host=APEX, token=None, headers={"Accept": "text/html"})

    assert response.status_code == 200, response.text
    assert response.json()["service"] == "tenancy"
    assert response.json()["path"] == path


def test_the_signup_form_posts_to_tenancy_without_a_token(gateway: Gateway) -> None:
    response = gateway.request("POST", "/signup", host=APEX, token=None, data={"name": "Acme"})

    assert response.status_code == 200, response.text
    assert response.json()["service"] == "tenancy"
    assert response.json()["method"] == "POST"


def test_an_organizations_own_address_is_its_projects(gateway: Gateway) -> None:
    response = gateway.get("/", host=TENANT, headers={"Accept": "text/html"})

    assert response.status_code == 200, response.text
    assert response.json()["service"] == "projects"
    assert response.json()["path"] == "/"


@pytest.mark.parametrize("path", ["/signup", "/signup/acme"])
def test_an_organizations_host_has_no_signup_pages(gateway: Gateway, stack, path: str) -> None:
    response = gateway.get(path, host=TENANT)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert stack.states["tenancy"].tenant_lookups.get("acme") is None, "refused before the tenant lookup"


@pytest.mark.parametrize("path", ["/nowhere", "/index.html", "/signupx", "/x/y/z"])
def test_the_root_prefix_swallows_no_other_path(gateway: Gateway, path: str) -> None:
    response = gateway.get(path, host=APEX, token=None)

    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"


def test_the_gateways_own_apex_paths_and_other_services_are_untouched(gateway: Gateway) -> None:
    health = gateway.get("/healthz", host=APEX, token=None)
    docs = gateway.get("/api/docs", host=APEX, token=None)
    admin = gateway.get("/admin/", host=APEX, token=None)
    login = gateway.get("/login", host=APEX, token=None)
    static = gateway.get("/static/js/signup.js", host=APEX, token=None)

    assert health.status_code == 200 and "services" in health.json()
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert admin.json()["service"] == "tenancy"
    assert login.json()["service"] == "identity"
    assert static.json()["service"] == "projects"


@pytest.mark.parametrize(
    ("method", "path", "public"),
    [
        ("GET", "/", True),
        ("HEAD", "/", True),
        ("POST", "/", False),
        ("GET", "/signup", True),
        ("POST", "/signup", True),
        ("GET", "/signup/acme", True),
        ("GET", "/api/tenants/availability", True),
        ("POST", "/api/tenants/availability", False),
        ("GET", "/signupx", False),
    ],
)
def test_the_signup_pages_are_public(method: str, path: str, public: bool) -> None:
    assert path_is_public(method, path) is public


def test_the_form_and_the_api_spend_one_signup_budget(make_gateway) -> None:
    gateway = make_gateway(rate_limit_signup="3/minute")

    answers = [
        gateway.request("POST", path, host=APEX, token=None, data={"slug": "x"})
        for path in ("/signup", "/api/tenants", "/signup/", "/signup")
    ]

    assert [answer.status_code for answer in answers[:3]] == [200, 200, 200]
    assert answers[3].status_code == 429
    assert answers[3].json()["error"]["limit"] == "signup"
    # Looking at the form or a status page is not a signup.
    assert gateway.get("/", host=APEX, token=None).status_code == 200
    assert gateway.get("/signup/acme", host=APEX, token=None).status_code == 200


def test_availability_probes_are_limited_per_ip(make_gateway) -> None:
    gateway = make_gateway(rate_limit_availability="4/minute")

    statuses = [
        gateway.get(f"/api/tenants/availability?slug=probe-{attempt}", host=APEX, token=None).status_code
        for attempt in range(6)
    ]

    assert 429 not in statuses[:4]
    assert statuses[4:] == [429, 429]
    limited = gateway.get("/api/tenants/availability?slug=other", host=APEX, token=None)
    assert limited.json()["error"]["limit"] == "availability"
    assert int(limited.headers["retry-after"]) >= 1
    # Its own budget: signing up and reading a status are not spent by probing.
    assert gateway.get("/api/tenants/acme", host=APEX, token=None).status_code == 200
    assert gateway.request("POST", "/api/tenants", host=APEX, token=None, json={}).status_code == 200


def test_the_signup_form_has_the_small_body_limit(gateway: Gateway) -> None:
    limit = gateway.settings.body_limit_auth

    too_big = gateway.request("POST", "/signup", host=APEX, token=None, content=b"a" * (limit + 1))

    assert too_big.status_code == 413
    assert too_big.json()["error"]["limit"] == limit


# The gateway's own refusals of a page, as a browser meets them (gateway/pages.py).

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _assert_page(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "script-src" not in policy and "'sha256-" in policy
    assert response.headers["x-request-id"] in response.text
    assert "<script" not in response.text
    return response.text


def test_a_browser_following_the_address_of_an_organization_being_set_up_gets_a_page_that_reloads(
    gateway: Gateway,
) -> None:
    response = gateway.get("/login", host="newco.localhost:8000", token=None, headers={"Accept": BROWSER})

    html = _assert_page(response, 503)
    retry_after = response.headers["retry-after"]
    assert f'<meta http-equiv="refresh" content="{retry_after}">' in html
    assert "newco is still being set up" in html


def test_a_browser_over_the_signup_limit_gets_a_page_saying_when_to_try_again(make_gateway) -> None:
    gateway = make_gateway(rate_limit_signup="1/minute")
    gateway.request("POST", "/signup", host=APEX, token=None, data={"slug": "x"})

    response = gateway.request(
        "POST", "/signup", host=APEX, token=None, data={"slug": "x"}, headers={"Accept": BROWSER}
    )

    html = _assert_page(response, 429)
    assert "Too many requests; try again in" in html
    assert int(response.headers["retry-after"]) >= 1


def test_an_unknown_organizations_host_and_an_unknown_path_are_pages_for_a_browser(gateway: Gateway) -> None:
    unknown_host = gateway.get("/login", host="nobody.localhost:8000", token=None, headers={"Accept": BROWSER})
    unknown_path = gateway.get("/nowhere", host=APEX, token=None, headers={"Accept": BROWSER})

    assert "Check the address" in _assert_page(unknown_host, 404)
    _assert_page(unknown_path, 404)


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/api/projects", BROWSER),  # an API path stays JSON, whatever the client accepts
        ("/login", "*/*"),  # a script that does not ask for HTML
        ("/login", "application/json, text/html"),
    ],
)
def test_api_paths_and_scripts_keep_the_json_contract(gateway: Gateway, path: str, accept: str) -> None:
    response = gateway.get(path, host="newco.localhost:8000", token=None, headers={"Accept": accept})

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "tenant_provisioning"
