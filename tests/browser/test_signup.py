"""First run in a real browser (Debian's chromium, driven by Playwright), through the gateway.

A person opens the apex, watches the live subdomain check say "taken" and "available", gets
the server's refusals next to the fields, signs up, watches the organization become active,
reads the verification mail from the stack's mail catcher, follows its link, and signs in on
the organization's own address. Then the page is attacked as an outsider would.

Its own stack: ports from SIGNUP_BROWSER_PORT_BASE (19000), databases `signup_*`, Redis DB 3.
Screenshots go to artifacts/browser/signup-*.png.
"""

import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_board import CHROMIUM, WAIT_MS, PageProblems
from tests.e2e.stack import Stack, stack_run
from tests.helpers import wait_until
from tests.mail import mailcatcher

PORT_BASE = int(os.environ.get("SIGNUP_BROWSER_PORT_BASE", "19000"))
APEX = f"http://localhost:{PORT_BASE}"
SUFFIX = f".localhost:{PORT_BASE}"
PASSWORD = "a-long-pass-for-acme-77"
NEW_PASSWORD = "verified-pass-for-acme-91"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("signup-browser-data")
    # A journey signs up a few times a minute (refusals count too): more than the default 5.
    env = {"GATEWAY_RATE_LIMIT_SIGNUP": "30/minute"}
    with stack_run(port_base=PORT_BASE, db_prefix="signup_", redis_db=3, data_dir=data_dir, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def run() -> str:
    return secrets.token_hex(3)


@pytest.fixture(scope="module")
def taken_slug(stack: Stack, run: str) -> str:
    """An organization that exists before the person arrives (signed up through the API)."""
    slug = f"taken-{run}"
    created = httpx.post(
        f"{stack.gateway}/api/tenants",
        headers={"Host": f"localhost:{PORT_BASE}"},
        json={"name": "Taken", "slug": slug, "owner_email": f"owner@{slug}.test", "owner_password": PASSWORD},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return slug


def page_open(browser: Browser, name: str, **context_options: object) -> tuple[Page, PageProblems, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    dialogs: list[str] = []

    def dismiss(dialog) -> None:  # an injected alert() would land here
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return page, PageProblems(page, name), dialogs


def slug_status(page: Page, state: str) -> str:
    """What the live check says once it has answered (`state`: available, taken, invalid, unknown)."""
    status = page.locator(f"#slug-status[data-state='{state}']")
    status.wait_for()
    return status.inner_text()


def expected_refusals(problems: PageProblems, count: int) -> None:
    """The form's refusals are answers (4xx) the page shows; anything else is still a problem."""
    refused = [failure for failure in problems.failed if failure.endswith(f"POST {APEX}/signup")]
    assert len(refused) == count, problems.failed
    problems.failed = [failure for failure in problems.failed if failure not in refused]


def verification_link(stack: Stack, email: str) -> str:
    directory = stack.data_dir / "mail"
    found: list[str] = []

    def arrived() -> bool:
        for mail in mailcatcher().mail_to(directory, email):
            if mail.subject == "Verify your email address":
                found.extend(re.findall(rf"{re.escape(APEX)}/login/verify/\S+", mail.text))
        return bool(found)

    assert wait_until(arrived, timeout=20, interval=0.25), f"no verification mail for {email}"
    return found[0]


def test_a_new_team_signs_up_verifies_and_signs_in(
    browser: Browser, stack: Stack, screenshots: Path, run: str, taken_slug: str
) -> None:
    page, problems, dialogs = page_open(browser, "signup")
    page.goto(f"{APEX}/")
    expect(page.get_by_role("heading", name="Create your organization")).to_be_visible()
    page.screenshot(path=screenshots / "signup-01-landing.png", full_page=True)

    # The subdomain follows the name until it is typed, and is checked as it changes.
    name = f'Acme <img src=x onerror=alert(1)> & "Co" {run}'
    page.get_by_label("Organization name").fill(name)
    assert page.get_by_label("Subdomain").input_value() == f"acme-img-src-x-onerror-alert-1-co-{run}"[:40].rstrip("-")
    slug_box = page.get_by_label("Subdomain")
    slug_box.fill(taken_slug)
    assert slug_status(page, "taken") == f"{taken_slug}{SUFFIX} is taken"
    page.screenshot(path=screenshots / "signup-02-slug-taken.png")

    slug_box.fill("admin")
    assert "reserved" in slug_status(page, "invalid")
    slug_box.fill("-x")
    assert "3 to 40 characters" in slug_status(page, "invalid")
    slug_box.fill("ünï")
    assert "DNS label" in slug_status(page, "invalid")

    slug = f"acme-{run}"
    slug_box.fill(slug)
    assert slug_status(page, "available") == f"{slug}{SUFFIX} is available"
    page.screenshot(path=screenshots / "signup-03-slug-available.png")

    # A refusal is the server's, next to its field; what was typed stays, the password goes.
    email = f"ana-{run}@acme.test"
    page.get_by_label("Your name").fill("Ana Lima")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("12345678")
    page.get_by_role("button", name="Create organization").click()
    password_errors = page.locator("#owner_password-error li")
    password_errors.first.wait_for()
    errors = " ".join(password_errors.all_inner_texts())
    assert "too short" in errors and "too common" in errors and "entirely numeric" in errors
    assert page.get_by_label("Password").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Password").input_value() == ""
    assert page.get_by_label("Organization name").input_value() == name
    assert page.get_by_label("Subdomain").input_value() == slug
    assert page.get_by_label("Email").input_value() == email
    assert page.url == f"{APEX}/", "the script showed the refusal without leaving the page"
    page.screenshot(path=screenshots / "signup-04-password-refused.png")
    expected_refusals(problems, 1)

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create organization").click()
    page.wait_for_url(f"{APEX}/signup/{slug}")
    address = page.locator("#tenant-address")
    assert address.inner_text() == f"{slug}{SUFFIX}"
    assert address.get_attribute("href") == f"http://{slug}{SUFFIX}/"
    expect(page.locator("h1")).to_have_text(name)  # text, not markup
    assert email in page.locator(".mail-notice").inner_text()
    page.screenshot(path=screenshots / "signup-05-status.png")

    # Live: the page follows provisioning to active without a reload.
    sign_in = page.get_by_role("link", name=f"Sign in to {name}")
    sign_in.wait_for(timeout=60_000)
    expect(page.locator("#status-badge")).to_have_text("Ready")
    assert sign_in.get_attribute("href") == f"http://{slug}{SUFFIX}/login"
    page.screenshot(path=screenshots / "signup-06-active.png")

    # The verification mail went out; its link lets the owner set the password and sign in.
    page.goto(verification_link(stack, email))
    expect(page.get_by_role("heading", name=f"Verify {email}")).to_be_visible()
    assert page.get_by_label("Your name").input_value() == "Ana Lima"
    page.get_by_label("Choose a password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Verify and set password").click()
    expect(page.get_by_role("heading", name="Address verified")).to_be_visible()
    page.screenshot(path=screenshots / "signup-07-verified.png")

    page.goto(f"{APEX}/signup/{slug}")
    page.get_by_role("link", name=f"Sign in to {name}").click()
    page.wait_for_url(f"http://{slug}{SUFFIX}/login")
    page.fill("#id_email", email)
    page.fill("#id_password", NEW_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/projects/")
    page.screenshot(path=screenshots / "signup-08-signed-in.png")

    assert dialogs == [], "a script in the organization's name ran"
    problems.assert_none()
    page.context.close()


def test_without_javascript_the_form_still_signs_up_and_shows_refusals(
    browser: Browser, screenshots: Path, run: str, taken_slug: str
) -> None:
    page, problems, _ = page_open(browser, "no-js", java_script_enabled=False)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{APEX}/")
    page.screenshot(path=screenshots / "signup-00-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the landing page scrolls sideways on a phone"
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_label("Organization name").fill("Plain HTML Ltd")
    page.get_by_label("Subdomain").fill(taken_slug)
    page.get_by_label("Your name").fill("Bruno Costa")
    page.get_by_label("Email").fill(f"bruno-{run}@plain.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create organization").click()

    page.wait_for_url(f"{APEX}/signup")
    assert f"{taken_slug}{SUFFIX} is taken" in page.locator("#slug-error").inner_text()
    assert page.get_by_label("Subdomain").input_value() == taken_slug
    assert page.get_by_label("Organization name").input_value() == "Plain HTML Ltd"
    assert page.get_by_label("Password").input_value() == ""
    page.screenshot(path=screenshots / "signup-09-no-js-refused.png")
    expected_refusals(problems, 1)

    slug = f"plain-{run}"
    page.get_by_label("Subdomain").fill(slug)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create organization").click()
    page.wait_for_url(f"{APEX}/signup/{slug}")
    # No script: the page reloads itself until the organization is active.
    page.get_by_role("link", name="Sign in to Plain HTML Ltd").wait_for(timeout=60_000)
    page.screenshot(path=screenshots / "signup-10-no-js-active.png")
    problems.assert_none()
    page.context.close()


def test_an_outsider_cannot_post_without_the_pages_token_or_probe_every_name(
    browser: Browser, stack: Stack, screenshots: Path, run: str
) -> None:
    apex = {"Host": f"localhost:{PORT_BASE}"}
    slug = f"csrf-{run}"
    with httpx.Client(base_url=stack.gateway, timeout=15) as client:
        # Another site's form: no CSRF cookie or token. Refused, nothing created.
        forged = client.post(
            "/signup",
            headers={**apex, "Origin": "http://evil.test", "Accept": "text/html"},
            data={
                "name": "Forged",
                "slug": slug,
                "owner_name": "X",
                "owner_email": f"x-{run}@evil.test",
                "owner_password": PASSWORD,
            },
        )
        assert forged.status_code == 403, forged.text
        assert "text/html" in forged.headers["content-type"]
        assert client.get(f"/api/tenants/{slug}", headers=apex).status_code == 404

        # 10 KB in every field: refused by the form with a message, nothing created.
        page = client.get("/", headers=apex)
        token = page.cookies["csrftoken"]
        huge = client.post(
            "/signup",
            headers={**apex, "Cookie": f"csrftoken={token}", "Accept": "application/json"},
            data={
                "name": "n" * 10_240,
                "slug": "s" * 10_240,
                "owner_name": "o" * 10_240,
                "owner_email": "e" * 10_240,
                "owner_password": "p" * 10_240,
                "csrfmiddlewaretoken": token,
            },
        )
        assert huge.status_code == 400, huge.text
        assert set(huge.json()["error"]["fields"]) == {"name", "slug", "owner_name", "owner_email", "owner_password"}

        # Probing names one after another meets the availability limit (60/minute per IP).
        started = time.monotonic()
        statuses = [
            client.get("/api/tenants/availability", params={"slug": f"probe-{n}"}, headers=apex).status_code
            for n in range(70)
        ]
        assert time.monotonic() - started < 60
        assert statuses[0] == 200 and statuses[-1] == 429, statuses

    # The page says so in words, and still lets the person sign up (signup checks again).
    view, problems, _ = page_open(browser, "probed")
    view.goto(f"{APEX}/")
    view.get_by_label("Subdomain").fill(f"after-{run}")
    assert "Too many checks" in slug_status(view, "unknown")
    view.screenshot(path=screenshots / "signup-11-too-many-checks.png")
    problems.failed = [failure for failure in problems.failed if "/api/tenants/availability" not in failure]
    problems.assert_none()
    view.context.close()
