"""The card panel in a real browser (Debian's chromium, Playwright), through the gateway.

A stack with the demo seed (ports from PANEL_PORT_BASE, 19400; databases `panel_*`; Redis DB 7).
The demo owner opens DEMO-1 and edits everything the panel offers; a second browser context
changes the card while the first is typing, and what the first typed survives, with the
conflict shown. Screenshots go to artifacts/browser/panel-*.png.
"""

import os
import struct
import time
import zlib
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.demo import DEMO_EMAIL, DEMO_PASSWORD, demo_stack, patient_expect
from tests.browser.test_board import CHROMIUM, SCREENSHOTS, PageProblems
from tests.e2e.stack import Stack

PORT_BASE = int(os.environ.get("PANEL_PORT_BASE", "19400"))
WAIT_MS = 15_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with demo_stack(tmp_path_factory, db_prefix="panel_", port_base=PORT_BASE, redis_db=7) as running:
        yield running


@pytest.fixture(autouse=True)
def _patient_expect() -> Iterator[None]:
    with patient_expect(WAIT_MS):
        yield


def demo_url(path: str) -> str:
    return f"http://demo.localhost:{PORT_BASE}{path}"


def png(width: int = 48, height: int = 32) -> bytes:
    """A small real PNG: a blue and orange picture."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + b"".join(b"\x1d\x6f\xe0" if x < width // 2 else b"\xf5\xa6\x23" for x in range(width))
        for _ in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def sign_in(browser: Browser, name: str) -> tuple[Page, PageProblems]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    problems = PageProblems(page, name)
    page.goto(demo_url("/login"))
    page.fill("#id_email", DEMO_EMAIL)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/projects/")
    return page, problems


def demo_board(page: Page) -> int:
    href = page.locator("a[href^='/boards/']").first.get_attribute("href")
    board_id = int(href.strip("/").split("/")[-1])
    page.goto(demo_url(f"/boards/{board_id}/"))
    page.wait_for_selector("#live-state[data-state=live]")
    return board_id


def open_card(page: Page, key: str) -> None:
    page.locator("li.card", has=page.locator(".card-key", has_text=key)).first.click()
    expect(page.locator(f".panel-inner[data-key-text='{key}']")).to_be_visible()


def task_json(page: Page, task_id: str) -> dict:
    """The task as the API has it, read outside the browser with the page's token, through the gateway."""
    access = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "access_token")
    response = httpx.get(
        f"http://127.0.0.1:{PORT_BASE}/api/tasks/{task_id}",
        headers={"Host": f"demo.localhost:{PORT_BASE}", "Authorization": f"Bearer {access}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"panel-{name}.png")


def test_every_part_of_a_card_is_edited_in_the_panel(browser: Browser) -> None:
    page, problems = sign_in(browser, "editor")
    board_id = demo_board(page)
    open_card(page, "DEMO-1")
    panel = page.locator("#panel .panel-inner")
    task_id = panel.get_attribute("data-task")
    expect(page.locator("#panel [role=dialog]")).to_have_attribute("aria-labelledby", f"panel-heading-{task_id}")
    shot(page, "01-open")

    # Title, inline: Esc cancels, Enter saves; the board's card follows.
    original = panel.locator(".title-view").inner_text()
    panel.locator(".title-view").click()
    title_input = panel.locator("input[name=title]").first
    title_input.fill("Not this one")
    title_input.press("Escape")
    expect(panel.locator(".title-view")).to_have_text(original)
    panel.locator(".title-view").click()
    title_input.fill("Write the onboarding guide for new teammates")
    title_input.press("Enter")
    expect(panel.locator(".title-view")).to_have_text("Write the onboarding guide for new teammates")
    expect(page.locator(f"li.card[data-task='{task_id}'] .card-title")).to_have_text(
        "Write the onboarding guide for new teammates"
    )
    expect(panel.locator(".title-view")).to_be_focused()

    # Description: markdown, previewed by the server, raw HTML shown as text.
    panel.locator("[data-key=description] [data-action=edit]").first.click()
    description = panel.locator("textarea[name=description]")
    description.fill("Steps for **new** people:\n\n- accounts\n- the board\n\n<img src=x onerror=window.__xss=1>")
    panel.locator("[role=tab][data-tab=preview]").click()
    preview = panel.locator("[data-tabpanel=preview]")
    expect(preview.locator("strong")).to_have_text("new")
    expect(preview.locator("li")).to_have_count(2)
    expect(preview).to_contain_text("<img src=x onerror=window.__xss=1>")
    shot(page, "02-description-preview")
    panel.locator("[data-form=description] button:has-text('Save')").click()
    expect(panel.locator(".description-view strong")).to_have_text("new")
    assert page.evaluate("window.__xss") is None

    # An assignee, picked by name; a label; the due date; the priority; an estimate.
    picker = panel.locator("[data-picker=people]")
    picker.fill("Demo")
    option = panel.locator(".picker-options [role=option]", has_text="Demo Owner")
    option.click()
    expect(panel.locator("[data-key=assignee-chips] .chip")).to_contain_text("Demo Owner")
    label = panel.locator("input[name=label]")
    label.fill("onboarding")
    label.press("Enter")
    expect(panel.locator("[data-key=label-chips]")).to_contain_text("onboarding")
    panel.locator("[data-input=due_date]").fill("2027-01-15")
    panel.locator("[data-input=due_date]").dispatch_event("change")
    panel.locator("[data-input=priority]").select_option("high")
    estimate = panel.locator("[data-input=estimate_minutes]")
    estimate.fill("1h 30m")
    estimate.press("Enter")
    expect(estimate).to_have_value("1 h 30 min")
    expect(page.locator(f"li.card[data-task='{task_id}'] .avatar")).to_have_count(1)
    deadline = time.monotonic() + 10
    while True:
        saved = task_json(page, task_id)
        if saved["estimate_minutes"] == 90 and saved["due_date"] == "2027-01-15" and saved["priority"] == "high":
            break
        assert time.monotonic() < deadline, saved
        time.sleep(0.2)
    assert "onboarding" in saved["labels"]
    assert saved["assignees"] and saved["description"].startswith("Steps for **new**")
    shot(page, "03-fields")

    # Subtasks: add, tick, rename, reorder (Alt+Up, and the buttons), delete.
    new_subtask = panel.locator("input[name=title][id^=subtask-new]")
    for title in ("Create accounts", "Tour the board", "Read the handbook"):
        new_subtask.fill(title)
        new_subtask.press("Enter")
        expect(panel.locator(".subtask-title", has_text=title)).to_be_visible()
    expect(new_subtask).to_be_focused()
    items = panel.locator("[data-subtask-item]")
    items.nth(0).locator("input[type=checkbox]").check()
    expect(panel.locator("[data-key=subtasks-head]")).to_contain_text("1/3")
    items.nth(1).locator("[data-action=edit]").click()
    rename = items.nth(1).locator("input[name=title]")
    rename.fill("Tour the board together")
    rename.press("Enter")
    expect(items.nth(1).locator(".subtask-title")).to_have_text("Tour the board together")
    items.nth(2).locator("input[type=checkbox]").focus()
    page.keyboard.press("Alt+ArrowUp")
    expect(items.nth(1).locator(".subtask-title")).to_have_text("Read the handbook")
    items.nth(0).locator("[data-action=subtask-down]").click()
    expect(items.nth(0).locator(".subtask-title")).to_have_text("Read the handbook")
    panel.locator("[data-subtask-item]", has_text="Create accounts").locator("[data-action=subtask-delete]").click()
    expect(items).to_have_count(2)
    assert [s["title"] for s in task_json(page, task_id)["subtasks"]] == [
        "Read the handbook",
        "Tour the board together",
    ]
    shot(page, "04-subtasks")

    # Comments: write (markdown, no script), edit (marked edited), delete.
    comment_box = panel.locator("textarea[name=body][id^=comment-new]")
    comment_box.fill("Welcome! <script>window.__xss=2</script> *soon*")
    panel.locator("[data-form=comment-add] button").click()
    comment = panel.locator("li.comment").first
    expect(comment.locator(".markdown em")).to_have_text("soon")
    comment.locator("[data-action=edit]").click()
    comment.locator("textarea[name=body]").fill("Welcome aboard, *soon*")
    comment.locator("button:has-text('Save')").click()
    expect(comment.locator(".edited")).to_be_visible()
    expect(comment.locator(".markdown")).to_contain_text("Welcome aboard")
    assert page.evaluate("window.__xss") is None
    shot(page, "05-comment-edited")
    comment.locator("[data-action=confirm]").click()
    comment.locator("[data-action=comment-delete]").click()
    expect(panel.locator("li.comment")).to_have_count(0)
    expect(panel.locator("[data-key=history]")).to_contain_text("Demo Owner deleted their comment on DEMO-1")

    # An image: uploaded, previewed as a thumbnail, enlarged. (The merges the comment's live events
    # asked for are let finish first, so that the step reads what it did, not a merge's timing.)
    expect(page.locator("#panel .panel-inner[aria-busy]")).to_have_count(0)
    panel.locator("input[type=file]").set_input_files(
        files=[{"name": "whiteboard.png", "mimeType": "image/png", "buffer": png()}]
    )
    upload = panel.locator("[data-form=attachment-add]")
    with page.expect_response(lambda r: r.url.endswith("/attachments") and r.request.method == "POST") as sent:
        upload.locator("button").click()
    assert sent.value.status == 201, (sent.value.status, upload.locator("[data-error]").inner_text())
    thumb = panel.locator(".thumb img")
    expect(thumb).to_be_visible(timeout=30_000)
    page.wait_for_function("() => document.querySelector('#panel .thumb img').naturalWidth === 48")
    panel.locator(".thumb").click()
    viewer = page.locator("#image-viewer")
    expect(viewer).to_be_visible()
    shot(page, "06-image-enlarged")
    viewer.locator("button").click()
    expect(viewer).to_be_hidden()

    # A work log: logged, then deleted.
    worklog_form = panel.locator("[data-form=worklog-add]")
    worklog_form.locator("input[name=minutes]").fill("25")
    worklog_form.locator("input[name=note]").fill("wrote the outline")
    worklog_form.locator("button").click()
    log = panel.locator("li.worklog")
    expect(log).to_contain_text("25 min")
    log.locator("[data-action=confirm]").click()
    log.locator("[data-action=worklog-delete]").click()
    expect(panel.locator("li.worklog")).to_have_count(0)

    # The history, in words, with names and relative times.
    history = panel.locator("[data-key=history]")
    expect(history).to_contain_text("Demo Owner renamed DEMO-1 to “Write the onboarding guide for new teammates”")
    expect(history).to_contain_text("Demo Owner assigned Demo Owner to DEMO-1")
    expect(history).to_contain_text("Demo Owner attached “whiteboard.png” to DEMO-1")
    expect(history).to_contain_text("Demo Owner deleted 25 min of logged work from DEMO-1")
    expect(history.locator("time").first).to_have_text("just now")
    page.evaluate("document.querySelector('#panel [data-key=history]').scrollIntoView()")
    shot(page, "07-history")

    # A stale save (the version the panel holds is old): retried, since this field did not change.
    page.evaluate("document.querySelector('#panel .panel-inner').dataset.version = '1'")
    panel.locator("[data-input=priority]").select_option("urgent")
    expect(panel.locator("[data-key=priority] [data-error]")).to_be_empty()
    deadline = time.monotonic() + 10
    while task_json(page, task_id)["priority"] != "urgent":
        assert time.monotonic() < deadline
        time.sleep(0.2)

    # Archive: off the board; restore: back. Esc closes the panel and gives the card the focus.
    panel.locator("[data-action=archive]").click()
    expect(panel.locator(".badge")).to_have_text("Archived")
    expect(page.locator(f"li.card[data-task='{task_id}']")).to_have_count(0)
    shot(page, "08-archived")
    panel.locator("[data-key=task-actions] [data-action=restore]").click()
    expect(page.locator(f"li.card[data-task='{task_id}']")).to_have_count(1)
    expect(panel.locator(".badge")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(page.locator("#panel")).to_be_hidden()
    expect(page.locator(f"li.card[data-task='{task_id}']")).to_be_focused()

    # An archived card is found again in the board's archived cards, and restored from there.
    open_card(page, "DEMO-1")
    panel.locator("[data-action=archive]").click()
    expect(page.locator(f"li.card[data-task='{task_id}']")).to_have_count(0)
    page.locator("[data-open-archived]").click()
    listed = page.locator(f"#panel [data-archived-task='{task_id}']")
    expect(listed).to_contain_text("DEMO-1")
    shot(page, "08b-archived-list")
    listed.locator("[data-action=restore-listed]").click()
    expect(listed).to_have_count(0)
    expect(page.locator(f"li.card[data-task='{task_id}']")).to_have_count(1)
    page.locator("#panel [data-close-panel]").click()

    # Delete (after a confirmation), on a card of its own.
    quick_add = page.locator("section.column").first.locator("form.quick-add input[name=title]")
    quick_add.fill("A card to delete")
    quick_add.press("Enter")
    doomed = page.locator("li.card", has_text="A card to delete")
    doomed.click()
    panel.locator("[data-key=task-actions] [data-action=confirm]").click()
    shot(page, "09-delete-confirm")
    panel.locator("[data-action=task-delete]").click()
    expect(page.locator("#panel")).to_be_hidden()
    expect(doomed).to_have_count(0)

    problems.failed = [failure for failure in problems.failed if not failure.startswith("409 PATCH")]
    problems.assert_none()
    page.context.close()
    assert board_id


def test_a_change_from_elsewhere_never_eats_what_is_being_typed(browser: Browser) -> None:
    typist, typist_problems = sign_in(browser, "typist")
    other, other_problems = sign_in(browser, "other")
    demo_board(typist)
    demo_board(other)
    open_card(typist, "DEMO-2")
    open_card(other, "DEMO-2")
    panel = typist.locator("#panel .panel-inner")
    task_id = panel.get_attribute("data-task")
    before = task_json(typist, task_id)

    # The typist edits the title and the description, and is halfway through a comment.
    panel.locator(".title-view").click()
    panel.locator("input[name=title]").first.fill("Invite the design team (mine)")
    panel.locator("[data-key=description] [data-action=edit]").first.click()
    panel.locator("textarea[name=description]").fill("My plan: invite them on Monday")
    comment = panel.locator("textarea[name=body][id^=comment-new]")
    comment.click()
    comment.type("Half a thought about the inv")
    caret = comment.evaluate("node => node.selectionStart")

    # Meanwhile the other person renames the card and rewrites its description, in their panel.
    theirs = other.locator("#panel .panel-inner")
    theirs.locator(".title-view").click()
    theirs.locator("input[name=title]").first.fill("Invite the design and brand teams")
    theirs.locator("input[name=title]").first.press("Enter")
    expect(theirs.locator(".title-view")).to_have_text("Invite the design and brand teams")
    theirs.locator("[data-key=description] [data-action=edit]").first.click()
    theirs.locator("textarea[name=description]").fill("Their plan: a kickoff on Tuesday")
    theirs.locator("[data-form=description] button:has-text('Save')").click()
    expect(theirs.locator(".description-view")).to_contain_text("Their plan")

    # The typist's card on the board follows; the panel shows both conflicts and keeps every word.
    expect(typist.locator(f"li.card[data-task='{task_id}'] .card-title")).to_have_text(
        "Invite the design and brand teams"
    )
    title_conflict = panel.locator("[data-key=title] .conflict")
    expect(title_conflict).to_contain_text("Demo Owner changed the title to")
    expect(title_conflict).to_contain_text("Invite the design and brand teams")
    description_conflict = panel.locator("[data-key=description] .conflict")
    expect(description_conflict).to_contain_text("Their plan: a kickoff on Tuesday")
    expect(comment).to_have_value("Half a thought about the inv")
    expect(comment).to_be_focused()
    assert comment.evaluate("node => node.selectionStart") == caret
    expect(panel.locator("input[name=title]").first).to_have_value("Invite the design team (mine)")
    expect(panel.locator("textarea[name=description]")).to_have_value("My plan: invite them on Monday")
    shot(typist, "10-conflict")

    comment.type("itation list")
    expect(comment).to_have_value("Half a thought about the invitation list")

    # Theirs for the title, mine for the description (saved over theirs), and the comment goes out.
    title_conflict.locator("[data-action=use-theirs]").click()
    expect(panel.locator(".title-view")).to_have_text("Invite the design and brand teams")
    description_conflict.locator("[data-action=keep-mine]").click()
    panel.locator("[data-form=description] button:has-text('Save')").click()
    expect(panel.locator(".description-view")).to_contain_text("My plan: invite them on Monday")
    panel.locator("[data-form=comment-add] button").click()
    expect(panel.locator("li.comment .markdown")).to_contain_text("Half a thought about the invitation list")
    expect(other.locator("#panel li.comment .markdown")).to_contain_text("the invitation list")
    after = task_json(typist, task_id)
    assert after["title"] == "Invite the design and brand teams"
    assert after["description"] == "My plan: invite them on Monday"
    assert after["version"] > before["version"]
    shot(typist, "11-resolved")

    # Esc closes the card with a half-written comment; opening the card again brings it back.
    comment.fill("Not finished yet")
    typist.keyboard.press("Escape")
    expect(typist.locator("#panel")).to_be_hidden()
    expect(typist.locator(f"li.card[data-task='{task_id}']")).to_be_focused()
    typist.keyboard.press("Enter")
    expect(panel.locator("textarea[name=body][id^=comment-new]")).to_have_value("Not finished yet")

    typist_problems.assert_none()
    other_problems.assert_none()
    typist.context.close()
    other.context.close()


def test_a_panel_error_is_shown_next_to_the_field_and_keeps_the_input(browser: Browser) -> None:
    page, problems = sign_in(browser, "errors")
    demo_board(page)
    open_card(page, "DEMO-3")
    panel = page.locator("#panel .panel-inner")

    estimate = panel.locator("[data-input=estimate_minutes]")
    estimate.fill("soon-ish")
    estimate.press("Enter")
    expect(panel.locator("[data-key=estimate] [data-error]")).to_contain_text("Write minutes")
    expect(estimate).to_have_value("soon-ish")

    # The server refuses a file type: its message, next to the upload.
    panel.locator("input[type=file]").set_input_files(
        files=[{"name": "page.svg", "mimeType": "image/svg+xml", "buffer": b"<svg onload='alert(1)'/>"}]
    )
    panel.locator("[data-form=attachment-add] button").click()
    expect(panel.locator("[data-form=attachment-add] [data-error]")).to_contain_text("are not accepted")
    shot(page, "12-errors")

    problems.failed = [failure for failure in problems.failed if "/attachments" not in failure]
    problems.assert_none()
    page.context.close()
