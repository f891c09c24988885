"""Search in a real browser (Debian's chromium, driven by Playwright), through the gateway.

The launcher boots a stack with the demo seed (ports from SEARCH_BROWSER_PORT_BASE, 19700;
databases `search_*`; Redis DB 10). The demo owner gives cards words in a description and a
comment, then finds them with the quick-open (Ctrl-K, a word being typed, arrows, Enter opens
the card's panel on its board) and on the search page. Screenshots go to
artifacts/browser/search-*.png.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.demo import DEMO_EMAIL, DEMO_PASSWORD, demo_stack
from tests.browser.test_board import CHROMIUM, PageProblems
from tests.e2e.stack import Stack

PORT_BASE = int(os.environ.get("SEARCH_BROWSER_PORT_BASE", "19700"))
WAIT_MS = 15_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with demo_stack(tmp_path_factory, db_prefix="search_", port_base=PORT_BASE, redis_db=10) as running:
        yield running


def demo_url(path: str) -> str:
    return f"http://demo.localhost:{PORT_BASE}{path}"


def signed_in_page(browser: Browser, name: str) -> tuple[Page, PageProblems]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    problems = PageProblems(page, name)
    page.goto(demo_url("/login"))
    page.fill("#id_email", DEMO_EMAIL)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/projects/")
    return page, problems


def api(page: Page, method: str, path: str, body: dict | None = None) -> dict:
    """The API outside the browser, through the gateway, with the page's own access token."""
    access = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "access_token")
    response = httpx.request(
        method,
        f"http://127.0.0.1:{PORT_BASE}{path}",
        headers={"Host": f"demo.localhost:{PORT_BASE}", "Authorization": f"Bearer {access}"},
        json=body,
        timeout=10,
    )
    assert response.status_code < 300, response.text
    return response.json()


def quickopen_type(page: Page, text: str) -> None:
    page.keyboard.press("Control+k")
    expect(page.locator("#quickopen")).to_be_visible()
    expect(page.locator("#quickopen-input")).to_be_focused()
    page.keyboard.type(text, delay=40)


def test_quick_open_finds_a_card_by_a_word_of_its_description_and_opens_it(browser: Browser, screenshots: Path) -> None:
    page, problems = signed_in_page(browser, "search")
    board_id = int(page.locator("a[href^='/boards/']").first.get_attribute("href").strip("/").split("/")[-1])
    cards = [task for column in api(page, "GET", f"/api/boards/{board_id}")["columns"] for task in column["tasks"]]
    described, commented, other = cards[0], cards[1], cards[2]
    api(page, "PATCH", f"/api/tasks/{described['id']}", {"description": "Ask legal about the **flamingo** clause."})
    api(page, "POST", f"/api/tasks/{commented['id']}/comments", {"body": "The flamingos arrive on Tuesday"})
    api(
        page,
        "POST",
        "/api/tasks",
        {"board": board_id, "title": "<img src=x onerror=window.__xss=1> pelican", "description": "<b>pelican</b>"},
    )

    # From the projects page: a word being typed finds the description and the comment.
    quickopen_type(page, "flamin")
    options = page.locator("#quickopen-list [role=option]")
    expect(options).to_have_count(2)
    expect(options.first).to_contain_text(described["key"])
    expect(options.first.locator("mark")).to_have_text("flamingo")
    expect(options.nth(1)).to_contain_text("in a comment")
    field = page.locator("#quickopen-input")
    expect(field).to_have_attribute("aria-expanded", "true")
    expect(field).to_have_attribute("aria-activedescendant", options.first.get_attribute("id"))
    expect(options.first).to_have_attribute("aria-selected", "true")
    page.screenshot(path=screenshots / "search-01-quickopen.png")
    page.keyboard.press("ArrowDown")
    expect(field).to_have_attribute("aria-activedescendant", options.nth(1).get_attribute("id"))
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowUp")
    expect(options.first).to_have_attribute("aria-selected", "true")

    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/boards/{board_id}/$"))  # the ?task= it came with is spent
    panel = page.locator("#panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".card-key")).to_have_text(described["key"])
    expect(panel.locator(".markdown strong")).to_have_text("flamingo")
    page.wait_for_selector("#live-state[data-state=live]")
    page.screenshot(path=screenshots / "search-02-card-opened.png")

    # On the board: a key, typed in lower case, opens that card's panel in place.
    page.locator("[data-close-panel]").click()
    quickopen_type(page, other["key"].lower())
    expect(options.first).to_contain_text(other["key"])
    page.keyboard.press("Enter")
    expect(panel.locator(".card-key")).to_have_text(other["key"])
    assert page.url == demo_url(f"/boards/{board_id}/"), "no reload for a card of this board"

    # The visible control opens the same dialog; hostile text is shown as text.
    page.locator("[data-close-panel]").click()
    page.locator("[data-quick-open]").click()
    expect(page.locator("#quickopen")).to_be_visible()
    page.keyboard.type("pelican", delay=20)  # replaces the selected text of the last search
    expect(options.first.locator(".quickopen-title")).to_contain_text("<img src=x onerror=window.__xss=1>")
    expect(options).to_have_count(1)
    assert page.locator("#quickopen-list img, #quickopen-list b").count() == 0
    assert page.evaluate("window.__xss") is None
    page.screenshot(path=screenshots / "search-03-hostile-text.png")
    page.keyboard.press("Control+a")
    page.keyboard.type("zebracorn", delay=20)
    expect(page.locator("#quickopen-status")).to_have_text("No tasks match “zebracorn”")
    page.keyboard.press("Escape")
    expect(page.locator("#quickopen")).to_be_hidden()
    expect(panel).to_be_hidden()

    # The search page: marked snippets, links that open the card.
    page.goto(demo_url("/search/?q=flamingo"))
    hits = page.locator(".search-hit")
    expect(hits).to_have_count(2)
    expect(hits.first.locator(".search-hit-snippet mark")).to_have_text("flamingo")
    page.screenshot(path=screenshots / "search-04-page.png", full_page=True)
    hits.nth(1).locator("a").click()
    expect(panel.locator(".card-key")).to_have_text(commented["key"])
    page.screenshot(path=screenshots / "search-05-page-result-opened.png")

    # An archived card is off the board, but found, marked, and opened in the panel all the same.
    api(page, "POST", f"/api/tasks/{other['id']}/archive", {})
    page.reload()
    page.wait_for_selector("#live-state[data-state=live]")
    expect(page.locator(f"li.card[data-task='{other['id']}']")).to_have_count(0)
    quickopen_type(page, other["key"])
    expect(options.first).to_contain_text(other["key"])
    expect(options.first.locator(".quickopen-where")).to_contain_text("archived")
    page.keyboard.press("Enter")
    expect(panel.locator(".card-key")).to_have_text(other["key"])
    page.screenshot(path=screenshots / "search-07-archived-card-opened.png")

    problems.assert_none()
    page.context.close()


def test_quick_open_on_a_phone_sized_screen(browser: Browser, screenshots: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    problems = PageProblems(page, "phone")
    page.goto(demo_url("/login"))
    page.fill("#id_email", DEMO_EMAIL)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/projects/")
    page.locator("[data-quick-open]").click()
    page.keyboard.type("the", delay=20)
    expect(page.locator("#quickopen-list [role=option]").first).to_be_visible()
    page.screenshot(path=screenshots / "search-06-phone.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the top bar and the dialog fit
    problems.assert_none()
    context.close()
