"""The live board with two people, in a real browser (Debian's chromium, Playwright), through the gateway.

The launcher boots a stack with the demo seed (ports from LIVE_BROWSER_PORT_BASE, 19500; databases
`live_*`; Redis DB 8). The demo owner invites a teammate (the invitation mail read from the
development SMTP server), who accepts it and joins the DEMO project. Then, on the same board:
- the owner filters the board; the teammate's edits and moves make cards enter and leave the
  owner's filtered view live, with the columns' totals right, and a reload shows the same cards;
- presence shows both names, and drops the teammate within 10 s of their page closing;
- `[` / `]` and Alt+Up / Alt+Down move the focused card (and the card's menu does the same), and
  the moves are announced in an aria-live region;
- axe-core finds no serious or critical violation on the board, with a card's menu open, filtered,
  and with a card panel open (report in artifacts/browser/axe-board.json).
Screenshots: artifacts/browser/live-*.png.
"""

import email
import email.policy
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.browser.test_board import CHROMIUM, WAIT_MS, PageProblems
from tests.e2e.stack import ROOT, Stack, stack_run

PORT_BASE = int(os.environ.get("LIVE_BROWSER_PORT_BASE", "19500"))
HOST = f"demo.localhost:{PORT_BASE}"
SCREENSHOTS = ROOT / "artifacts" / "browser"
AXE = "/static/vendor/axe-core/axe.min.js"
TEAMMATE = {"email": "bea@demo.test", "password": "bea-pass-4567-long", "name": "Bea Teammate"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]


def url(path: str) -> str:
    return f"http://{HOST}{path}"


class Api:
    """The API through the gateway, as one signed-in person (outside the browser)."""

    def __init__(self, email_address: str, password: str) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{PORT_BASE}", headers={"Host": HOST}, timeout=20)
        for _ in range(20):
            answer = self.client.post("/api/auth/token", json={"email": email_address, "password": password})
            if answer.status_code != 429:
                break
            time.sleep(float(answer.headers.get("Retry-After", "2")))
        assert answer.status_code == 200, answer.text
        self.client.headers["Authorization"] = f"Bearer {answer.json()['access']}"

    def call(self, method: str, path: str, json_body: object = None, expect_status: int = 200) -> dict:
        answer = self.client.request(method, path, json=json_body)
        assert answer.status_code == expect_status, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else {}


def invitation_token(mail_dir: Path, address: str, *, timeout: float = 30) -> str:
    """The invitation link's token, from the mail the development SMTP server kept."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.eml"), reverse=True):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if address in str(message["To"]):
                body = message.get_body(preferencelist=("plain",)).get_content()
                found = re.search(r"/login/invitation/([A-Za-z0-9_\-.]+)", body)
                if found:
                    return found.group(1)
        time.sleep(0.3)
    raise AssertionError(f"no invitation mail to {address} in {mail_dir}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("live-browser-data")
    # The invitation link goes to the mailbox only (as in production), so accepting it verifies the address.
    env = {"INVITATION_LINK_IN_RESPONSE": "0", "GATEWAY_RATE_LIMIT_ENABLED": "0"}
    with stack_run(
        port_base=PORT_BASE, db_prefix="live_", redis_db=8, data_dir=data_dir, seed=True, env=env
    ) as running:
        assert any("demo seeded" in line for line in running.lines), running.log_tail()
        yield running


@pytest.fixture(scope="module")
def team(stack: Stack) -> dict:
    """The DEMO board, with the demo owner and a teammate who accepted an invitation."""
    owner = Api(DEMO_EMAIL, DEMO_PASSWORD)
    owner.call("POST", "/api/users", {"email": TEAMMATE["email"], "role": "member"}, expect_status=201)
    token = invitation_token(stack.data_dir / "mail", TEAMMATE["email"])
    joined = owner.client.post(
        "/api/users/invitations/accept",
        json={"token": token, "password": TEAMMATE["password"], "full_name": TEAMMATE["name"]},
        headers={"Authorization": ""},
    )
    assert joined.status_code == 201, joined.text
    projects = owner.call("GET", "/api/projects")
    projects = projects["items"] if isinstance(projects, dict) else projects
    project = next(project for project in projects if project["key"] == "DEMO")
    owner.call(
        "POST",
        f"/api/projects/{project['id']}/members",
        {"user_id": joined.json()["user_id"], "role": "member"},
        expect_status=201,
    )
    deadline = time.monotonic() + 30  # identity's user events reach the people directory
    while not owner.call("GET", "/api/people?q=Bea")["items"]:
        assert time.monotonic() < deadline, "the people directory never heard of the teammate"
        time.sleep(0.3)
    return {
        "board": project["boards"][0]["id"],
        "owner": owner,
        "teammate": Api(TEAMMATE["email"], TEAMMATE["password"]),
        "teammate_id": joined.json()["user_id"],
    }


def signed_in(browser: Browser, address: str, password: str, name: str) -> tuple[Page, PageProblems]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    problems = PageProblems(page, name)
    page.goto(url("/login"))
    page.fill("#id_email", address)
    page.fill("#id_password", password)
    page.click("form button[type=submit]")
    page.wait_for_url("**/projects/**")
    return page, problems


def board_open(page: Page, board_id: int, query: str = "") -> None:
    page.goto(url(f"/boards/{board_id}/{query}"))
    page.wait_for_selector("#live-state[data-state=live]")


def shown_ids(page: Page) -> list[int]:
    return [int(value) for value in page.eval_on_selector_all("li.card", "cards => cards.map(c => c.dataset.task)")]


def column_count(page: Page, column_id: int) -> int:
    return int(page.locator(f"section.column[data-column='{column_id}'] .wip .count").inner_text())


def board_columns(api: Api, board_id: int) -> list[dict]:
    return api.call("GET", f"/api/boards/{board_id}")["columns"]


def announced(page: Page, pattern: str) -> None:
    expect(page.locator("#announcer")).to_have_text(re.compile(pattern))


def test_a_filtered_board_follows_a_teammates_edits_and_moves(browser: Browser, team: dict, screenshots: Path) -> None:
    board_id, owner, teammate = team["board"], team["owner"], team["teammate"]
    word = f"falcon{secrets.token_hex(2)}"
    columns = board_columns(owner, board_id)
    first, second = columns[0]["id"], columns[1]["id"]
    totals = {column["id"]: len(column["tasks"]) for column in columns}
    card = columns[0]["tasks"][0]

    ana, ana_problems = signed_in(browser, DEMO_EMAIL, DEMO_PASSWORD, "owner")
    bea, bea_problems = signed_in(browser, TEAMMATE["email"], TEAMMATE["password"], "teammate")
    board_open(ana, board_id)
    board_open(bea, board_id)

    # The owner filters the board with the filter bar, as a person does: nothing matches yet.
    ana.fill("#filter-bar input[name=q]", word)
    ana.wait_for_url(re.compile(rf"q={word}"))
    expect(ana.locator("#columns[data-filtered=true]")).to_have_count(1)
    expect(ana.locator("li.card")).to_have_count(0)
    assert column_count(ana, first) == totals[first]  # a column's count is all its cards, filtered or not

    # The teammate renames a card to match: it enters the owner's view, in its column.
    teammate.call("PATCH", f"/api/tasks/{card['id']}", {"title": f"{card['title']} ({word})"})
    entered = ana.locator(f"ol.cards[data-column='{first}'] li.card[data-task='{card['id']}']")
    entered.wait_for()
    expect(entered.locator(".card-title")).to_contain_text(word)
    ana.screenshot(path=screenshots / "live-01-filtered-card-entered.png")

    # ... moves it with the keyboard on their own board: it moves in the owner's view, announced there.
    bea.locator(f"li.card[data-task='{card['id']}']").focus()
    bea.keyboard.press("]")
    ana.locator(f"ol.cards[data-column='{second}'] li.card[data-task='{card['id']}']").wait_for()
    announced(ana, rf"^{card['key']} moved to {columns[1]['name']}, 1 of 1$")
    totals[first], totals[second] = totals[first] - 1, totals[second] + 1
    expect(ana.locator(f"section.column[data-column='{first}'] .wip .count")).to_have_text(str(totals[first]))
    expect(ana.locator(f"section.column[data-column='{second}'] .wip .count")).to_have_text(str(totals[second]))

    # A card added that does not match stays out of the view, but counts; one that matches comes in.
    other = teammate.call("POST", "/api/tasks", {"board": board_id, "column": first, "title": "Unrelated"}, 201)
    matching = teammate.call("POST", "/api/tasks", {"board": board_id, "column": first, "title": f"A {word}"}, 201)
    ana.locator(f"li.card[data-task='{matching['id']}']").wait_for()
    totals[first] += 2
    expect(ana.locator(f"section.column[data-column='{first}'] .wip .count")).to_have_text(str(totals[first]))
    assert ana.locator(f"li.card[data-task='{other['id']}']").count() == 0
    ana.screenshot(path=screenshots / "live-02-filtered-board-after-moves.png")

    # A reload with the same URL shows the same cards.
    before = sorted(shown_ids(ana))
    assert before == sorted([card["id"], matching["id"]])
    ana.reload()
    ana.wait_for_selector("#live-state[data-state=live]")
    assert sorted(shown_ids(ana)) == before
    assert column_count(ana, first) == totals[first] and column_count(ana, second) == totals[second]

    # Renamed so it no longer matches: it leaves the view, and a screen reader hears why.
    teammate.call("PATCH", f"/api/tasks/{card['id']}", {"title": card["title"]})
    ana.locator(f"li.card[data-task='{card['id']}']").wait_for(state="detached")
    announced(ana, rf"^{card['key']} no longer matches the filter$")
    assert shown_ids(ana) == [matching["id"]]
    ana.screenshot(path=screenshots / "live-03-filtered-card-left.png")

    for task in (other, matching):
        teammate.call("DELETE", f"/api/tasks/{task['id']}", expect_status=204)
    teammate.call("POST", f"/api/tasks/{card['id']}/move", {"column": first, "index": 0})
    ana_problems.assert_none()
    bea_problems.assert_none()
    ana.context.close()
    bea.context.close()


def test_presence_names_both_and_drops_a_closed_page_within_ten_seconds(
    browser: Browser, team: dict, screenshots: Path
) -> None:
    board_id = team["board"]
    ana, ana_problems = signed_in(browser, DEMO_EMAIL, DEMO_PASSWORD, "owner")
    bea, bea_problems = signed_in(browser, TEAMMATE["email"], TEAMMATE["password"], "teammate")
    board_open(ana, board_id)
    board_open(bea, board_id)

    expect(ana.locator("#viewers li")).to_have_count(1)
    expect(ana.locator("#viewers li")).to_have_attribute("aria-label", TEAMMATE["name"])
    expect(ana.locator("#viewers")).to_have_attribute("aria-label", f"Also viewing: {TEAMMATE['name']}")
    expect(bea.locator("#viewers li")).to_have_attribute("aria-label", "Demo Owner")
    expect(bea.locator("#viewers li")).to_have_text("DO")
    ana.screenshot(path=screenshots / "live-04-presence-both.png")
    bea.screenshot(path=screenshots / "live-05-presence-seen-by-teammate.png")

    closed = time.monotonic()
    bea.context.close()
    expect(ana.locator("#viewers li")).to_have_count(0, timeout=10_000)
    gone_after = time.monotonic() - closed
    assert gone_after < 10, gone_after
    expect(ana.locator("#viewers")).to_be_hidden()
    print(f"the closed page left presence after {gone_after:.2f} s")

    # A fresh page never lists someone who left.
    ana.reload()
    ana.wait_for_selector("#live-state[data-state=live]")
    ana.wait_for_timeout(500)  # the hello and any announcement after it
    expect(ana.locator("#viewers li")).to_have_count(0)
    ana_problems.assert_none()
    bea_problems.assert_none()
    ana.context.close()


def card_place(api: Api, board_id: int, task_id: int) -> tuple[int, int]:
    """(column index, place in it) of a card, as the API has it."""
    for index, column in enumerate(board_columns(api, board_id)):
        ids = [task["id"] for task in column["tasks"]]
        if task_id in ids:
            return index, ids.index(task_id)
    raise AssertionError(f"card {task_id} is on no column")


def test_keyboard_and_menu_moves_keep_the_place_and_are_announced(
    browser: Browser, team: dict, screenshots: Path
) -> None:
    board_id, owner = team["board"], team["owner"]
    columns = board_columns(owner, board_id)
    # Enough cards on both sides to see a card keep its place.
    added = [
        owner.call("POST", "/api/tasks", {"board": board_id, "column": columns[1]["id"], "title": f"Keyboard {n}"}, 201)
        for n in range(2)
    ]
    columns = board_columns(owner, board_id)
    card = columns[0]["tasks"][1]  # the second card of the first column
    ana, problems = signed_in(browser, DEMO_EMAIL, DEMO_PASSWORD, "owner")
    board_open(ana, board_id)
    watcher, watcher_problems = signed_in(browser, TEAMMATE["email"], TEAMMATE["password"], "teammate")
    board_open(watcher, board_id)
    card_in = ana.locator(f"li.card[data-task='{card['id']}']")

    def moved_to(column: int, place: int) -> None:
        deadline = time.monotonic() + 10
        while card_place(owner, board_id, card["id"]) != (column, place):
            assert time.monotonic() < deadline, f"the card is at {card_place(owner, board_id, card['id'])}"
            time.sleep(0.1)
        column_id = columns[column]["id"]
        for page in (ana, watcher):  # the page that moved it, and another viewer live
            expect(page.locator(f"ol.cards[data-column='{column_id}'] > li.card").nth(place)).to_have_attribute(
                "data-task", str(card["id"])
            )

    card_in.focus()
    ana.keyboard.press("]")
    moved_to(1, 1)
    total = len(columns[1]["tasks"]) + 1
    announced(ana, rf"^{card['key']} moved to {columns[1]['name']}, 2 of {total}$")
    announced(watcher, rf"^{card['key']} moved to {columns[1]['name']}, 2 of {total}$")
    expect(card_in).to_be_focused()

    ana.keyboard.press("Alt+ArrowDown")
    moved_to(1, 2)
    announced(ana, rf"^{card['key']} moved to {columns[1]['name']}, 3 of {total}$")
    ana.keyboard.press("Alt+ArrowUp")
    ana.keyboard.press("Alt+ArrowUp")
    moved_to(1, 0)
    announced(ana, rf"^{card['key']} moved to {columns[1]['name']}, 1 of {total}$")
    ana.keyboard.press("Alt+ArrowUp")
    announced(ana, rf"^{card['key']} is already first$")
    ana.screenshot(path=screenshots / "live-06-keyboard-moves.png")

    # Every shortcut has a control: the card's menu moves it back, keeping its place.
    card_in.locator(".card-more").click()
    menu = ana.locator("#card-menu")
    expect(menu).to_be_visible()
    expect(menu.get_by_role("menuitem", name=re.compile("^Move up"))).to_be_disabled()
    expect(menu.get_by_role("menuitem", name=re.compile("^Move left"))).to_be_focused()
    ana.screenshot(path=screenshots / "live-07-card-menu.png")
    menu.get_by_role("menuitem", name=re.compile("^Move left")).click()
    moved_to(0, 0)
    announced(ana, rf"^{card['key']} moved to {columns[0]['name']}, 1 of {len(columns[0]['tasks'])}$")
    expect(menu).to_be_hidden()
    assert ana.locator("#panel").is_hidden()  # the menu's button does not open the card

    # The menu by keyboard: Enter on the button, arrows, Escape back to the button.
    card_in.locator(".card-more").focus()
    ana.keyboard.press("Enter")
    expect(menu).to_be_visible()
    ana.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name=re.compile("^Move down"))).to_be_focused()
    ana.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(card_in.locator(".card-more")).to_be_focused()
    assert ana.locator("#panel").is_hidden()  # Enter on the button is the button's, not the card's

    ana.keyboard.press("[")  # already in the first column
    announced(ana, rf"^{card['key']} is in the first column$")
    owner.call("POST", f"/api/tasks/{card['id']}/move", {"column": columns[0]["id"], "index": 1})
    for task in added:
        owner.call("DELETE", f"/api/tasks/{task['id']}", expect_status=204)
    problems.assert_none()
    watcher_problems.assert_none()
    ana.context.close()
    watcher.context.close()


def axe_run(page: Page, context: str | None = None) -> list[dict]:
    """axe-core's violations on the page (or inside `context`), loaded from the site's static
    files (the page's CSP allows no other script)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE)
    results = page.evaluate(
        "async (context) => await axe.run(context ? document.querySelector(context) : document, "
        "{resultTypes: ['violations']})",
        context,
    )
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [node["target"] for node in violation["nodes"]][:10],
        }
        for violation in results["violations"]
    ]


def serious(violations: list[dict]) -> list[dict]:
    return [violation for violation in violations if violation["impact"] in ("serious", "critical")]


def test_the_board_passes_axe_core(browser: Browser, team: dict, screenshots: Path) -> None:
    board_id = team["board"]
    page, problems = signed_in(browser, DEMO_EMAIL, DEMO_PASSWORD, "owner")
    board_open(page, board_id)
    viewer, viewer_problems = signed_in(browser, TEAMMATE["email"], TEAMMATE["password"], "teammate")
    board_open(viewer, board_id)
    expect(page.locator("#viewers li")).to_have_count(1)  # presence shown, so it is checked too

    report: dict[str, list[dict]] = {"board": axe_run(page)}
    first_card = page.locator("li.card").first
    first_card.locator(".card-more").click()
    expect(page.locator("#card-menu")).to_be_visible()
    report["board with a card's menu open"] = axe_run(page)
    page.keyboard.press("Escape")
    page.locator("#filter-bar input[name=q]").fill("zzz-nothing")
    page.wait_for_url(re.compile(r"q=zzz-nothing"))
    expect(page.locator("li.card")).to_have_count(0)
    report["filtered board, no card shown"] = axe_run(page)
    board_open(page, board_id)

    first = page.locator("li.card").first
    key = first.locator(".card-key").inner_text()
    first.locator(".card-title").click()
    expect(page.locator(f"#panel .panel-inner[data-key-text='{key}'] .title-view")).to_be_visible()  # loaded
    page.screenshot(path=screenshots / "live-08-panel-open.png")
    report["board with a card panel open"] = axe_run(page)
    report["card panel alone"] = axe_run(page, "#panel")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "axe-board.json").write_text(json.dumps(report, indent=1))
    for name, violations in report.items():
        print(f"axe, {name}: {[(v['id'], v['impact'], len(v['nodes'])) for v in violations]}")
    found = {name: serious(violations) for name, violations in report.items()}
    assert found == {name: [] for name in found}, json.dumps(found, indent=1)
    problems.assert_none()
    viewer_problems.assert_none()
    page.context.close()
    viewer.context.close()
