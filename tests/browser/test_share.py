"""Sharing a card, in a real browser, through the gateway (issue 11's "done when").

A stack with the demo seed (ports from SHARE_PORT_BASE, 18700; databases `share_*`; Redis DB 7).
The demo owner shares DEMO-1 from the card panel with a password and a visit limit; the link's QR
code shows and is read back from the screen; a second browser context without any login opens the
URL read from it, passes its password
gate and lands on the read-only shared view (no comments, no emails, no people); the owner renames
the card and adds a subtask, and the shared view follows live; the owner revokes the link, and the
open shared view says it ended, and refuses a reload. Screenshots: artifacts/browser/share-*.png.
"""

import io
import os
import re
import secrets
from collections.abc import Iterator

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.browser.demo import DEMO_EMAIL, DEMO_PASSWORD, demo_stack, patient_expect
from tests.browser.test_board import CHROMIUM, SCREENSHOTS, PageProblems
from tests.e2e.stack import Stack

PORT_BASE = int(os.environ.get("SHARE_PORT_BASE", "18700"))
LINK_PASSWORD = "share-pass-2026"
PERSON_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
WAIT_MS = 20_000
AXE = "/static/vendor/axe-core/axe.min.js"


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with demo_stack(tmp_path_factory, db_prefix="share_", port_base=PORT_BASE, redis_db=7) as running:
        yield running


@pytest.fixture(autouse=True)
def _patient_expect() -> Iterator[None]:
    with patient_expect(WAIT_MS):
        yield


def demo_url(path: str) -> str:
    return f"http://demo.localhost:{PORT_BASE}{path}"


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"share-{name}.png")


def axe_violations(page: Page) -> list[dict]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE)
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [{"id": v["id"], "help": v["help"]} for v in result if v["impact"] in ("serious", "critical")]


def test_a_card_shared_with_a_password_and_a_limit_opens_without_login_and_follows_live(browser: Browser) -> None:
    # 1. The owner, on the board, opens DEMO-1 and its Share dialog.
    a_context = browser.new_context(viewport={"width": 1400, "height": 1000})
    a_context.set_default_timeout(WAIT_MS)
    a = a_context.new_page()
    a_problems = PageProblems(a, "owner")
    a.goto(demo_url("/login"))
    a.fill("#id_email", DEMO_EMAIL)
    a.fill("#id_password", DEMO_PASSWORD)
    a.click("form button[type=submit]")
    a.wait_for_url("**/projects/")
    href = a.locator("a[href^='/boards/']").first.get_attribute("href")
    a.goto(demo_url(href))
    a.wait_for_selector("#live-state[data-state=live]")
    a.locator("li.card", has=a.locator(".card-key", has_text=re.compile(r"^DEMO-1$"))).first.click()
    panel = a.locator("#panel .panel-inner[data-key-text='DEMO-1']")
    expect(panel).to_be_visible()
    panel.get_by_role("button", name="Share", exact=True).click()
    dialog = a.get_by_role("dialog", name="Share DEMO-1")
    expect(dialog).to_be_visible()
    expect(a.locator("#share-expires")).to_be_focused()
    expect(a.locator("#share-links-status")).to_have_text("No links yet.")

    # 2. A link with a password and a limit of 3 visits (expiry: a week from now, in the page's clock).
    a.get_by_label("Visit limit").fill("0")
    a.get_by_role("button", name="Create link").click()
    expect(a.locator("#share-error")).to_contain_text("whole number")
    a.get_by_label("Visit limit").fill("3")
    a.get_by_label("Password").fill(LINK_PASSWORD)
    week = a.evaluate(
        "() => { const d = new Date(Date.now() + 7 * 864e5); d.setSeconds(0, 0);"
        " return new Date(d - d.getTimezoneOffset() * 6e4).toISOString().slice(0, 16); }"
    )
    a.locator("#share-expires").fill(week)
    a.get_by_role("button", name="Create link").click()
    url_box = a.get_by_label("Short link")
    expect(url_box).to_have_value(re.compile(r"^https?://[^/]+/s/[A-Za-z0-9_-]{8,}$"))
    short_url = url_box.input_value()
    code = short_url.rsplit("/", 1)[1]
    qr = a.locator("#share-qr")
    expect(qr).to_have_attribute("src", re.compile(rf"/api/links/{code}/qr\.svg$"))
    assert a.evaluate("() => document.getElementById('share-qr').naturalWidth") > 0
    # The QR code as the screen shows it, read the way a phone's camera reads it.
    scanned = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.screenshot())))
    assert [found.text for found in scanned] == [short_url]
    listed = a.locator(f".share-link[data-code='{code}']")
    expect(listed).to_contain_text("0 / 3 visits")
    expect(listed.get_by_role("img", name="Password protected")).to_be_visible()
    expect(listed).to_contain_text("Active")
    a.get_by_role("button", name="Copy", exact=True).click()
    expect(a.locator("#share-links-status")).to_have_text(re.compile("Copied|Selected"))
    assert axe_violations(a) == []
    shot(a, "01-link-created")
    a.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(panel.get_by_role("button", name="Share", exact=True)).to_be_focused()

    # 3. Someone outside the organization: a browser with no login opens the link, and its password gate.
    # (with a desktop browser's user agent: crawlerdetect rightly counts HeadlessChrome as a bot,
    # and a bot is shown a preview that consumes no visit, never the task)
    b_context = browser.new_context(viewport={"width": 1100, "height": 900}, user_agent=PERSON_AGENT)
    b_context.set_default_timeout(WAIT_MS)
    b = b_context.new_page()
    b_problems = PageProblems(b, "outsider")
    b.goto(scanned[0].text)
    shot(b, "02-password-gate")
    b.get_by_label(re.compile("password", re.IGNORECASE)).fill(LINK_PASSWORD)
    b.keyboard.press("Enter")
    b.wait_for_url(re.compile(rf"/shared/{code}$"))
    title = panel.locator(".title-view").inner_text()
    expect(b.locator("#shared-title")).to_have_text(title)
    expect(b.locator("#live-state")).to_have_attribute("data-state", "live")
    body = b.locator("body").inner_text()
    for absent in (DEMO_EMAIL, "Comments", "Attachments", "Work log", "History", "Reporter", "Assignees"):
        assert absent not in body, absent
    assert axe_violations(b) == []
    shot(b, "03-shared-view")

    # 4. The owner changes the card; the shared view follows without a reload.
    run = secrets.token_hex(2)
    panel.locator(".title-view").click()
    panel.locator("input[name=title]").first.fill(f"Shared and renamed {run}")
    panel.locator("input[name=title]").first.press("Enter")
    expect(b.locator("#shared-title")).to_have_text(f"Shared and renamed {run}")
    panel.locator("input[name=title][id^=subtask-new]").fill(f"A step added live {run}")
    panel.locator("input[name=title][id^=subtask-new]").press("Enter")
    expect(b.locator(".shared-subtasks")).to_contain_text(f"A step added live {run}")
    assert b.evaluate("() => performance.getEntriesByType('navigation').length") == 1  # never reloaded
    shot(b, "04-shared-view-live")

    # 5. The visit counted; the owner revokes the link; the open view says it ended, and stays ended.
    panel.get_by_role("button", name="Share", exact=True).click()
    listed = a.locator(f".share-link[data-code='{code}']")
    expect(listed).to_contain_text("1 / 3 visits")
    listed.get_by_role("button", name=f"Revoke {short_url}").click()
    expect(listed.get_by_role("button", name="Keep it")).to_be_focused()
    listed.get_by_role("button", name="Revoke", exact=True).click()
    expect(a.locator(f".share-link[data-code='{code}']")).to_contain_text("Revoked")
    shot(a, "05-revoked")
    expect(b.locator("#shared-notice")).to_contain_text("This link has ended")
    expect(b.locator("#shared-title")).to_have_count(0)
    shot(b, "06-shared-view-ended")
    response = b.reload()
    assert response is not None and response.status == 410
    expect(b.get_by_role("heading", name="This link has ended")).to_be_visible()
    # Asked for: the password gate's 401 and the ended view's 410.
    expected = (f"401 GET {short_url}", f"410 GET {demo_url(f'/shared/{code}')}")
    b_problems.failed = [line for line in b_problems.failed if line not in expected]

    a_problems.assert_none()
    b_problems.assert_none()
    a_context.close()
    b_context.close()
