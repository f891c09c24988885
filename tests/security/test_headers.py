"""Issue 8, item 14: security headers on every page, no inline script, cookies an attacker cannot plant or read.

Through the gateway, on the apex and on a tenant's host: a Content-Security-Policy that allows
no inline script (and the pages have none: every <script> is a file from /static/ or a JSON data
block, no on* attribute), framing refused twice (`frame-ancestors 'none'`, X-Frame-Options DENY),
Referrer-Policy and nosniff; every cookie SameSite and host-only (no Domain: a tenant's subdomain
cannot set one for another's), and HttpOnly but the CSRF cookie, whose value board.js sends back
in X-CSRFToken (the gateway compares the two).
"""

import re
from html.parser import HTMLParser

import pytest

from tests.security.input_helpers import APEX, DEMO, DEMO_OWNER, demo_owner_token

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def policy_directives(response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    parts = (part.strip().partition(" ") for part in policy.split(";") if part.strip())
    return {name: value for name, _, value in parts}


def assert_security_headers(response) -> None:
    directives = policy_directives(response)
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    script_src = directives.get("script-src", directives["default-src"])
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src and "*" not in script_src
    assert "'unsafe-inline'" not in directives.get("style-src", directives["default-src"])
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] in ("same-origin", "strict-origin-when-cross-origin", "no-referrer")


class InlineCode(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block: inline scripts, on* handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if name == "style":
                self.found.append(f"<{tag} style=...>")
        if tag == "script" and "src" not in names and names.get("type") != "application/json":
            self._in_inline_script = True
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        for name in ("href", "src", "action"):
            if (names.get(name) or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:...>")


def assert_no_inline_code(html: str) -> None:
    parser = InlineCode()
    parser.feed(html)
    assert parser.found == []


@pytest.fixture(scope="module")
def browser_cookie(stack) -> str:
    return f"access_token={demo_owner_token(stack.gateway)}"


@pytest.fixture(scope="module")
def board_id(stack) -> int:
    import httpx

    headers = {"Host": DEMO, "Authorization": f"Bearer {demo_owner_token(stack.gateway)}"}
    projects = httpx.get(f"{stack.gateway}/api/projects", headers=headers, timeout=15).json()
    return projects[0]["boards"][0]["id"]


def test_every_page_carries_the_headers_and_no_inline_code(client, browser_cookie, board_id) -> None:
    pages = [
        (DEMO, "/login"),
        (DEMO, "/projects/"),
        (DEMO, f"/boards/{board_id}/"),
        (DEMO, "/admin/login/"),
        (APEX, "/admin/login/"),
        (DEMO, "/projects/no-such-page"),
    ]
    for host, path in pages:
        response = client.get(path, headers={"Host": host, "Accept": BROWSER, "Cookie": browser_cookie})
        assert response.headers["content-type"].startswith("text/html"), (host, path, response.status_code)
        assert_security_headers(response)
        assert_no_inline_code(response.text)


def test_the_board_page_turns_off_htmx_inline_styles_and_eval(client, browser_cookie, board_id) -> None:
    response = client.get(f"/boards/{board_id}/", headers={"Host": DEMO, "Accept": BROWSER, "Cookie": browser_cookie})

    assert response.status_code == 200
    htmx_config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", response.text)
    assert htmx_config and '"includeIndicatorStyles": false' in htmx_config.group(1)
    assert '"allowEval": false' in htmx_config.group(1)


@pytest.mark.parametrize(
    ("host", "path"),
    [
        (DEMO, "/api/projects"),
        (DEMO, "/api/tasks/999999"),
        (DEMO, "/.well-known/jwks.json"),
        (APEX, "/api/tenants/demo"),
    ],
)
def test_api_answers_carry_the_headers_too(client, browser_cookie, host, path) -> None:
    response = client.get(path, headers={"Host": host, "Authorization": f"Bearer {browser_cookie.split('=', 1)[1]}"})

    assert response.headers["content-type"].startswith("application/json")
    assert_security_headers(response)


def test_static_files_are_nosniff(client) -> None:
    response = client.get("/static/js/board.js", headers={"Host": DEMO})

    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"


def _set_cookies(response) -> list[str]:
    return response.headers.get_list("set-cookie")


def test_every_cookie_is_httponly_samesite_and_host_only(client) -> None:
    login_page = client.get("/login", headers={"Host": DEMO, "Accept": BROWSER})
    csrf = login_page.cookies.get("csrftoken") or login_page.cookies.get("__Host-csrftoken")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    signed_in = client.post(
        "/login",
        data={**DEMO_OWNER, "next": "/projects/", "csrfmiddlewaretoken": token},
        headers={"Host": DEMO, "Accept": BROWSER, "Cookie": f"csrftoken={csrf}", "Origin": f"http://{DEMO}"},
    )
    admin = client.get("/admin/login/", headers={"Host": APEX, "Accept": BROWSER})

    cookies = _set_cookies(login_page) + _set_cookies(signed_in) + _set_cookies(admin)
    names = {header.split("=", 1)[0] for header in cookies}
    assert {"access_token", "refresh_token"} <= names, (signed_in.status_code, cookies)
    assert any(name.endswith("csrftoken") for name in names)
    for header in cookies:
        name = header.split("=", 1)[0]
        attributes = [part.strip().lower() for part in header.split(";")[1:]]
        if not name.endswith("csrftoken"):
            assert "httponly" in attributes, header
        assert any(part.startswith("samesite=") for part in attributes), header
        # Host-only: a Domain attribute would send the cookie to every tenant's subdomain too.
        assert not any(part.startswith("domain=") for part in attributes), header


def test_a_planted_csrf_cookie_from_another_origin_does_not_pass(client, browser_cookie) -> None:
    # A sibling subdomain (another tenant) that managed to plant a csrftoken cookie still sends its own
    # Origin: Django's check refuses the write before comparing tokens.
    planted = "p" * 32
    response = client.post(
        "/api/projects",
        json={"key": "PLANT", "name": "planted"},
        headers={
            "Host": DEMO,
            "Cookie": f"{browser_cookie}; csrftoken={planted}",
            "X-CSRFToken": planted,
            "Origin": f"http://evil.localhost:{APEX.rsplit(':', 1)[1]}",
        },
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] in ("csrf_failed", "forbidden")
