"""Projects, boards, columns and labels run from the browser (Debian's chromium, Playwright),
through the gateway, without the API: the first hour of a team that just signed up.

The demo owner creates a project from the longer template and lands on its board, opens the
project's settings, adds a column and drags it to another place, renames the board, adds a
label, adds a teammate picked by email, archives the board and restores it, and archives the
project and restores it from the project list. Own stack: ports from SETTINGS_BROWSER_PORT_BASE
(19300), databases `settings_*`, Redis DB 6. Screenshots: artifacts/browser/settings-*.png.
"""

import os
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.demo import DEMO_EMAIL, DEMO_PASSWORD, demo_stack
from tests.browser.test_board import (
    CHROMIUM,
    SCREENSHOTS,
    WAIT_MS,
    PageProblems,
)
from tests.e2e.stack import Stack

PORT_BASE = int(os.environ.get("SETTINGS_BROWSER_PORT_BASE", "19300"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with demo_stack(tmp_path_factory, db_prefix="settings_", port_base=PORT_BASE, redis_db=6) as running:
        yield running


@pytest.fixture(scope="module")
def teammate(stack: Stack) -> str:
    """Ana, a member of the organization who accepted an invitation (the invitations' own UI is
    another journey's), so that the people picker has someone to find. Her email."""
    host = {"Host": f"demo.localhost:{PORT_BASE}"}
    base = f"http://127.0.0.1:{PORT_BASE}"
    token = httpx.post(
        f"{base}/api/auth/token", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}, headers=host, timeout=10
    ).json()["access"]
    owner = {**host, "Authorization": f"Bearer {token}"}
    invited = httpx.post(f"{base}/api/users", json={"email": "ana@demo.test", "role": "member"}, headers=owner)
    assert invited.status_code == 201, invited.text
    accepted = httpx.post(
        f"{base}/api/users/invitations/accept",
        json={"token": invited.json()["accept_url"].rsplit("/", 1)[-1], "password": "ana-pass-12345",
              "full_name": "Ana Lima"},
        headers=host,
    )  # fmt: skip
    assert accepted.status_code == 201, accepted.text
    deadline = time.monotonic() + WAIT_MS / 1000
    while not httpx.get(f"{base}/api/people?q=ana", headers=owner).json()["items"]:  # the directory hears of her
        assert time.monotonic() < deadline, "the people directory never heard of Ana"
        time.sleep(0.2)
    return "ana@demo.test"


def url(path: str) -> str:
    return f"http://demo.localhost:{PORT_BASE}{path}"


def shot(page: Page, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"settings-{name}.png", full_page=full_page)


def sign_in(browser: Browser) -> tuple[Page, PageProblems]:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    problems = PageProblems(page, "settings")
    page.on("dialog", lambda dialog: dialog.accept())  # the "Archive ...?" confirmations
    page.goto(url("/login"))
    page.fill("#id_email", DEMO_EMAIL)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/projects/")
    return page, problems


def column_names(page: Page, board_id: int) -> list[str]:
    return page.locator(f"#board-{board_id}-columns .column-item").evaluate_all(
        "items => items.map(item => item.dataset.name)"
    )


def handle_drag(page: Page, handle: Locator, target: Locator) -> None:
    """A person's drag by the handle, upwards onto the target row's top half, in small steps (the
    two rows scrolled into view first: the mouse only reaches what the viewport shows), pausing
    where a person's hand would so SortableJS's 150 ms animation settles on a loaded machine."""
    target.scroll_into_view_if_needed()
    handle.scroll_into_view_if_needed()
    start, end = handle.bounding_box(), target.bounding_box()
    assert start and end
    x, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.wait_for_timeout(100)
    page.mouse.move(x + 3, y - 8, steps=5)
    page.mouse.move(end["x"] + 20, end["y"] + end["height"] / 2, steps=25)
    page.wait_for_timeout(300)
    page.mouse.move(end["x"] + 20, end["y"] + 3, steps=10)
    page.wait_for_timeout(400)
    page.mouse.up()


def test_a_project_from_the_longer_template_run_from_its_settings(browser: Browser, teammate: str) -> None:
    page, problems = sign_in(browser)
    name = "Website relaunch"  # each run starts from fresh databases: the key WR is free
    shot(page, "01-projects")

    # Create the project: the key is suggested from the name, the longer flow picked.
    page.click("button[data-open-dialog=new-project]")
    page.fill("#new-project-name", name)
    assert page.input_value("#new-project-key") == "WR"
    page.check("#new-project-template-flow")
    shot(page, "02-create-dialog")
    page.click("#new-project-form button[type=submit]")
    page.wait_for_url("**/boards/*/")
    page.wait_for_selector("#live-state[data-state=live]")
    board_id = int(page.url.rstrip("/").split("/")[-1])
    flow = ["Backlog", "Ready", "In progress", "Review", "Done"]
    assert page.locator("section.column h2").all_text_contents() == flow
    shot(page, "03-new-board")

    # Settings, from the board's top bar.
    page.click("a.settings-link")
    page.wait_for_url("**/settings/")
    assert column_names(page, board_id) == ["Backlog", "Ready", "In progress", "Review", "Done"]

    # Add a column, then drag it from the end to second place.
    page.fill(f"#new-column-{board_id}-name", "QA")
    page.select_option(f"#board-{board_id}-columns .new-column select[name=category]", "doing")
    page.fill(f"#board-{board_id}-columns .new-column input[name=wip_limit]", "3")
    page.click(f"#board-{board_id}-columns .new-column button[type=submit]")
    page.wait_for_selector(f"#board-{board_id}-columns .column-item[data-name=QA]")
    assert column_names(page, board_id)[-1] == "QA"
    items = page.locator(f"#board-{board_id}-columns .column-item")
    handle_drag(page, items.last.locator(".drag-handle"), items.nth(1))
    expect(items.nth(1)).to_have_attribute("data-name", "QA")
    page.wait_for_selector("#page-status:has-text('QA moved to place 2')")
    shot(page, "04-column-dragged", full_page=True)

    # Rename the board.
    page.fill(f"#board-{board_id}-name", "Launch plan")
    page.click(f"#board-{board_id} button[type=submit]")
    page.wait_for_selector(f"#board-{board_id}-columns h3:has-text('Launch plan')")

    # Add a label (red), whose chip shows in the list.
    page.fill("#new-label-name", "Blocker")
    page.click(".new-label .swatch[data-colour='#c9372c']")
    page.click(".new-label button[type=submit]")
    page.wait_for_selector(".label-list .label[data-colour='#c9372c']:has-text('Blocker')")
    shot(page, "05-label-added", full_page=True)

    # Add Ana, found by her email, as a viewer; then make her a manager.
    page.fill("#member-search", teammate[:5])
    option = page.locator("#member-options li[role=option]", has_text="Ana Lima")
    option.wait_for()
    shot(page, "06-people-picker")
    page.keyboard.press("Enter")
    assert page.input_value("#member-search") == "Ana Lima"
    page.select_option("#member-role", "viewer")
    page.click(".member-add button[type=submit]")
    ana = page.locator("#section-members tbody tr", has_text="Ana Lima")
    ana.wait_for()
    assert ana.locator("select").input_value() == "viewer"
    assert page.locator("#section-members tbody tr", has_text="(you)").locator("text=the only manager").count() == 1
    ana.locator("select").select_option("manager")
    # Two managers now: the page (rendered afresh) lets either be removed.
    page.locator("#section-members tbody tr", has_text="(you)").locator("button:has-text('Remove')").wait_for()
    assert page.locator("#section-members tbody tr", has_text="Ana Lima").locator("select").input_value() == "manager"

    # The board shows what settings changed, after a reload.
    page.goto(url(f"/boards/{board_id}/"))
    page.wait_for_selector("#live-state[data-state=live]")
    assert page.locator("h1.board-title").inner_text() == "Launch plan"
    assert page.locator("section.column h2").all_text_contents() == [
        "Backlog",
        "QA",
        "Ready",
        "In progress",
        "Review",
        "Done",
    ]
    assert page.locator("section.column[data-wip='3'] h2").text_content() == "QA"

    # Archive the board: hidden from the list, its page read-only; then restore it.
    page.click("a.settings-link")
    page.click(f"#board-{board_id} button:has-text('Archive')")
    page.wait_for_selector(f".archived-boards #board-{board_id}")
    shot(page, "07-board-archived", full_page=True)
    page.goto(url(f"/boards/{board_id}/"))
    page.wait_for_selector(".board-archived")
    assert page.locator("form.quick-add").count() == 0
    shot(page, "08-archived-board-page")
    page.goto(url("/projects/"))
    assert page.locator(f"a[href='/boards/{board_id}/']").count() == 0
    page.locator(".project-row", has_text=name).locator("a", has_text="Settings").click()
    page.click(f".archived-boards #board-{board_id} button:has-text('Restore')")
    page.wait_for_selector(".archived-boards", state="detached")
    assert page.locator(f"#section-boards #board-{board_id}-name").input_value() == "Launch plan"

    # Archive the project; restore it from the project list's "Archived".
    page.click("#section-project button:has-text('Archive project')")
    page.wait_for_selector(".archived-banner:has-text('This project is archived')")
    shot(page, "09-project-archived", full_page=True)
    page.goto(url("/projects/"))
    archived = page.locator(".archived-list li", has_text=name)
    assert page.locator(".project-row", has_text=name).count() == 0
    shot(page, "10-projects-with-archived", full_page=True)
    archived.locator("button:has-text('Restore')").click()
    page.locator(".project-row", has_text=name).wait_for()
    assert page.locator(f".project-row a[href='/boards/{board_id}/']").inner_text() == "Launch plan"
    shot(page, "11-project-restored", full_page=True)

    problems.assert_none()
    page.context.close()


def test_form_errors_show_next_to_their_field_and_keep_what_was_typed(browser: Browser) -> None:
    page, problems = sign_in(browser)
    page.click("button[data-open-dialog=new-project]")
    page.fill("#new-project-name", "Another demo")
    page.fill("#new-project-key", "demo")  # the demo's key, typed in lower case
    assert page.input_value("#new-project-key") == "DEMO"
    page.click("#new-project-form button[type=submit]")

    error = page.locator("#new-project-key-error")
    error.wait_for()
    assert "DEMO" in error.inner_text()
    assert page.input_value("#new-project-name") == "Another demo"
    assert page.get_attribute("#new-project-key", "aria-invalid") == "true"
    shot(page, "12-duplicate-key")
    assert problems.failed == [f"409 POST {url('/api/projects')}"]
    page.context.close()
