"""The live board in a real browser (Debian's chromium, driven by Playwright), through the gateway.

The launcher boots a stack with the demo seed (ports from BROWSER_PORT_BASE, 18200; databases
`browser_*`; Redis DB 14). The demo owner signs in, adds a card with the quick add and drags it
to another column; a second browser context on the same board sees both without a reload.
Screenshots go to artifacts/browser/ (kept by CI).
"""

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, Response

from tests.browser.demo import DEMO_EMAIL, DEMO_PASSWORD, demo_stack
from tests.e2e.stack import ROOT, Stack

CHROMIUM = Path("/usr/bin/chromium")
PORT_BASE = int(os.environ.get("BROWSER_PORT_BASE", "18200"))
SCREENSHOTS = ROOT / "artifacts" / "browser"
WAIT_MS = 15_000
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP *.localhost 127.0.0.1",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with demo_stack(tmp_path_factory, db_prefix="browser_", port_base=PORT_BASE, redis_db=14) as running:
        yield running


class PageProblems:
    """Uncaught script errors, console errors and failed requests of a page, so breakage fails loudly."""

    def __init__(self, page: Page, name: str) -> None:
        self.name = name
        self.uncaught: list[str] = []
        self.console: list[str] = []
        self.failed: list[str] = []
        page.on("pageerror", lambda error: self.uncaught.append(str(error)))
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        # A failed load is logged without its URL; _response records it with the URL.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.console.append(message.text)

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.request.method} {response.url}")

    def assert_none(self) -> None:
        assert (self.uncaught, self.console, self.failed) == ([], [], []), self.name


def demo_url(path: str) -> str:
    return f"http://demo.localhost:{PORT_BASE}{path}"


def signed_in_page(
    browser: Browser, *, name: str, viewport: dict | None = None, screenshots: Path | None = None
) -> tuple[Page, PageProblems]:
    context = browser.new_context(viewport=viewport or {"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    problems = PageProblems(page, name)
    page.goto(demo_url("/login"))
    page.fill("#id_email", DEMO_EMAIL)
    page.fill("#id_password", DEMO_PASSWORD)
    if screenshots:
        page.screenshot(path=screenshots / "01-login.png")
    page.click("form button[type=submit]")
    page.wait_for_url("**/projects/")
    return page, problems


def board_open(page: Page, board_id: int) -> None:
    page.goto(demo_url(f"/boards/{board_id}/"))
    page.wait_for_selector("#live-state[data-state=live]")


def api_call(page: Page, method: str, path: str) -> httpx.Response:
    """The API outside the browser, through the gateway, with the page's own access token."""
    access = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "access_token")
    return httpx.request(
        method,
        f"http://127.0.0.1:{PORT_BASE}{path}",
        headers={"Host": f"demo.localhost:{PORT_BASE}", "Authorization": f"Bearer {access}"},
        timeout=10,
    )


def board_read(page: Page, board_id: int) -> dict:
    response = api_call(page, "GET", f"/api/boards/{board_id}")
    assert response.status_code == 200, response.text
    return response.json()


def task_column(board: dict, task_id: int) -> int | None:
    for column in board["columns"]:
        if any(task["id"] == task_id for task in column["tasks"]):
            return column["id"]
    return None


def card_drag(page: Page, card: Locator, target: Locator) -> None:
    """A human's drag to the end of the target list: press, move across in small steps, sweep down, release.

    SortableJS decides between before and after from the direction of travel over a card, so
    the pointer ends by moving down over the lower half of the target list's last card.
    """
    card.scroll_into_view_if_needed()
    start = card.bounding_box()
    last = target.locator("li.card").last
    end = last.bounding_box() if last.count() else target.bounding_box()
    assert start and end
    x, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 10, y + 5, steps=5)
    target_x = end["x"] + end["width"] / 2
    # Sideways first, at the card's own height, so the pointer does not sweep over its neighbours
    # in the source column on the way (which would only reorder it there).
    page.mouse.move(target_x, y + 5, steps=20)
    page.mouse.move(target_x, end["y"] + 4, steps=10)
    page.mouse.move(target_x, end["y"] + end["height"] - 3, steps=10)
    page.mouse.up()


def test_quick_add_and_drag_show_up_live_in_a_second_browser(browser: Browser, screenshots: Path) -> None:
    owner, owner_problems = signed_in_page(browser, name="owner", screenshots=screenshots)
    board_link = owner.locator("a[href^='/boards/']").first
    board_id = int(board_link.get_attribute("href").strip("/").split("/")[-1])
    owner.screenshot(path=screenshots / "02-projects.png")

    watcher, watcher_problems = signed_in_page(browser, name="watcher")
    board_open(owner, board_id)
    board_open(watcher, board_id)
    owner.screenshot(path=screenshots / "03-board.png")

    columns = owner.locator("section.column")
    assert columns.count() >= 2, "the demo board has several columns"
    source_column = int(columns.nth(0).get_attribute("data-column"))
    title = f"Browser card {secrets.token_hex(3)}"

    added_at = time.monotonic()
    quick_add = columns.nth(0).locator("form.quick-add input[name=title]")
    quick_add.fill(title)
    quick_add.press("Enter")
    card = owner.locator("li.card", has_text=title)
    card.wait_for()
    task_id = int(card.get_attribute("data-task"))
    seen_card = watcher.locator(f"li.card[data-task='{task_id}']")
    seen_card.wait_for()
    seconds_to_watcher_add = time.monotonic() - added_at
    assert watcher.locator(f"ol.cards[data-column='{source_column}'] li.card[data-task='{task_id}']").count() == 1
    assert seen_card.locator(".card-title").inner_text() == title
    assert task_column(board_read(owner, board_id), task_id) == source_column
    owner.screenshot(path=screenshots / "04-card-added.png")
    watcher.screenshot(path=screenshots / "05-card-seen-by-second-browser.png")

    # The first other column that has room: a full WIP limit would (rightly) refuse the move.
    target = next(
        columns.nth(index)
        for index in range(1, columns.count())
        if "wip-full" not in (columns.nth(index).locator(".wip").get_attribute("class") or "")
    )
    target_column = int(target.get_attribute("data-column"))
    moved_at = time.monotonic()
    card_drag(owner, card, target.locator("ol.cards"))
    owner.locator(f"ol.cards[data-column='{target_column}'] li.card[data-task='{task_id}']").wait_for()

    deadline = time.monotonic() + WAIT_MS / 1000
    while task_column(board_read(owner, board_id), task_id) != target_column:
        assert time.monotonic() < deadline, "the API never saw the card move"
        time.sleep(0.1)
    watcher.locator(f"ol.cards[data-column='{target_column}'] li.card[data-task='{task_id}']").wait_for()
    seconds_to_watcher_move = time.monotonic() - moved_at
    assert watcher.locator(f"ol.cards[data-column='{source_column}'] li.card[data-task='{task_id}']").count() == 0
    assert watcher.locator("#live-state").get_attribute("data-state") == "live"
    owner.screenshot(path=screenshots / "06-card-dragged.png")
    watcher.screenshot(path=screenshots / "07-move-seen-by-second-browser.png")
    print(
        f"watcher saw the new card after {seconds_to_watcher_add:.2f}s, the move after {seconds_to_watcher_move:.2f}s"
    )

    # Leave the demo board as it was (its databases outlive the run); the watcher sees that live too.
    deleted = api_call(owner, "DELETE", f"/api/tasks/{task_id}")
    assert deleted.status_code == 204, deleted.text
    watcher.locator(f"li.card[data-task='{task_id}']").wait_for(state="detached")
    owner_problems.assert_none()
    watcher_problems.assert_none()
    owner.context.close()
    watcher.context.close()


def test_board_on_a_phone_sized_screen(browser: Browser, screenshots: Path) -> None:
    phone, problems = signed_in_page(browser, name="phone", viewport={"width": 390, "height": 844})
    phone.screenshot(path=screenshots / "08-phone-projects.png", full_page=True)
    href = phone.locator("a[href^='/boards/']").first.get_attribute("href")
    board_open(phone, int(href.strip("/").split("/")[-1]))
    assert phone.locator("li.card").count() > 0, "the demo board has cards"
    phone.screenshot(path=screenshots / "09-phone-board.png")
    # The page itself must not scroll sideways; the columns may, inside their own strip.
    page_width = phone.evaluate("document.documentElement.scrollWidth")
    assert page_width <= 390, f"the page is {page_width}px wide on a 390px screen"
    problems.assert_none()
    phone.context.close()


def test_an_expired_access_token_renews_without_signing_in_again(browser: Browser) -> None:
    page, problems = signed_in_page(browser, name="expired")
    href = page.locator("a[href^='/boards/']").first.get_attribute("href")
    # What a browser does when the access cookie's max-age runs out: it stops sending it.
    page.context.clear_cookies(name="access_token")

    page.goto(demo_url(href))

    assert page.url == demo_url(href), f"expected the board, landed on {page.url}"
    page.wait_for_selector("#live-state[data-state=live]")
    assert any(cookie["name"] == "access_token" for cookie in page.context.cookies())
    problems.assert_none()
    page.context.close()
