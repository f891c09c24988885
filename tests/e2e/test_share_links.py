"""Share links through the whole stack (issue 11): the gateway, the shortener, projects' shared view.

Its own stack: ports from E2E_LINKS_PORT_BASE (18800), databases `e2e_links_*`, Redis DB 13, the
demo seed. Every request goes to the gateway, as a browser or an API client would send it.
"""

import os
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.e2e.stack import Stack, stack_run

pytestmark = pytest.mark.e2e

PORT_BASE = int(os.environ.get("E2E_LINKS_PORT_BASE", "18800"))
DB_PREFIX = "e2e_links_"
GATEWAY = f"http://127.0.0.1:{PORT_BASE}"
DEMO = {"Host": f"demo.localhost:{PORT_BASE}"}
APEX = {"Host": f"localhost:{PORT_BASE}"}
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
PAGE = {"User-Agent": BROWSER, "Accept": "text/html,application/xhtml+xml"}
PASSWORD = "open-sesame-2026"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("e2e-links-data")
    with stack_run(port_base=PORT_BASE, db_prefix=DB_PREFIX, redis_db=13, data_dir=data_dir, seed=True) as running:
        yield running


@pytest.fixture(scope="module")
def owner(stack: Stack) -> dict[str, str]:
    response = httpx.post(
        f"{GATEWAY}/api/auth/token",
        json={"email": "owner@demo.test", "password": "demo-pass-123"},
        headers=DEMO,
        timeout=20,
    )
    assert response.status_code == 200, response.text
    return {**DEMO, "Authorization": f"Bearer {response.json()['access']}"}


@pytest.fixture(scope="module")
def task(owner: dict[str, str]) -> dict:
    projects = httpx.get(f"{GATEWAY}/api/projects", headers=owner, timeout=20)
    assert projects.status_code == 200, projects.text
    board_id = projects.json()[0]["boards"][0]["id"]
    board = httpx.get(f"{GATEWAY}/api/boards/{board_id}", headers=owner, timeout=20).json()
    return next(task for column in board["columns"] for task in column["tasks"])


def link_create(owner: dict[str, str], **fields: object) -> dict:
    response = httpx.post(f"{GATEWAY}/api/links", json=fields, headers=owner, timeout=20)
    assert response.status_code == 201, response.text
    return response.json()


def link_get(owner: dict[str, str], code: str) -> dict:
    response = httpx.get(f"{GATEWAY}/api/links/{code}", headers=owner, timeout=20)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_password_link_is_a_gate_then_the_read_only_shared_view(owner: dict[str, str], task: dict) -> None:
    link = link_create(owner, task=task["id"], password=PASSWORD, max_visits=5)
    assert link["has_password"] and "password" not in link
    path = f"/s/{link['code']}"
    with httpx.Client(base_url=GATEWAY, headers=APEX, timeout=20) as outsider:
        gate = outsider.get(path, headers=PAGE)
        assert gate.status_code == 401 and "text/html" in gate.headers["content-type"]
        assert 'type="password"' in gate.text
        api = outsider.get(path, headers={"Accept": "application/json"})
        assert api.status_code == 401 and api.json()["error"]["code"] == "password_required"
        wrong = outsider.post(path, data={"password": "not-it"}, headers=PAGE)
        assert wrong.status_code == 401

        opened = outsider.post(path, data={"password": PASSWORD}, headers=PAGE)
        assert opened.status_code == 302, opened.text
        grant = httpx.URL(opened.headers["location"])
        assert grant.path == f"/shared/{link['code']}" and grant.host == "demo.localhost"
        # The outsider's browser follows it to the organization's host, without any login.
        with httpx.Client(base_url=GATEWAY, headers=DEMO, timeout=20) as browser:
            landed = browser.get(f"{grant.path}?{grant.query.decode()}", headers=PAGE)
            assert landed.status_code == 302 and landed.headers["location"].endswith(f"/shared/{link['code']}")
            view = browser.get(grant.path, headers=PAGE)
            assert view.status_code == 200, view.text
            assert task["key"] in view.text and "owner@demo.test" not in view.text
            # The grant was spent: a second use of the same URL opens nothing.
            again = httpx.get(f"{GATEWAY}{grant.path}?{grant.query.decode()}", headers={**DEMO, **PAGE}, timeout=20)
            assert again.status_code in (401, 403, 410), again.status_code
    assert link_get(owner, link["code"])["visits"] == 1


def test_password_guesses_are_throttled_and_the_right_one_then_waits_too(owner: dict[str, str], task: dict) -> None:
    link = link_create(owner, task=task["id"], password=PASSWORD)
    path = f"/s/{link['code']}"
    statuses = []
    with httpx.Client(base_url=GATEWAY, headers=APEX, timeout=20) as guesser:
        for attempt in range(8):
            statuses.append(guesser.post(path, json={"password": f"guess-{attempt}"}).status_code)
        refused = guesser.post(path, json={"password": PASSWORD})
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"]["code"]
    assert link_get(owner, link["code"])["visits"] == 0


def test_a_visit_limit_of_10_holds_for_50_simultaneous_visitors(owner: dict[str, str]) -> None:
    link = link_create(owner, target="https://example.com/launch", max_visits=10)
    path = f"/s/{link['code']}"
    statuses: list[int] = []
    start = threading.Barrier(50)

    def visit(number: int) -> None:
        with httpx.Client(base_url=GATEWAY, headers=APEX, timeout=60) as client:
            start.wait()
            headers = {"User-Agent": BROWSER, "Accept": "application/json", "X-Forwarded-For": f"198.51.100.{number}"}
            statuses.append(client.get(path, headers=headers).status_code)

    threads = [threading.Thread(target=visit, args=(number,)) for number in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [302] * 10 + [410] * 40
    after = link_get(owner, link["code"])
    assert after["visits"] == 10 and after["status"] == "used_up"


def test_link_previewers_see_a_preview_and_never_use_up_a_link(owner: dict[str, str]) -> None:
    link = link_create(owner, target="https://example.com/once", max_visits=1)
    path = f"/s/{link['code']}"
    for agent in (
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "WhatsApp/2.23.20.0",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
    ):
        preview = httpx.get(f"{GATEWAY}{path}", headers={**APEX, "User-Agent": agent}, timeout=20)
        assert preview.status_code == 200, (agent, preview.status_code)
        assert "example.com/once" not in preview.headers.get("location", "")
    assert link_get(owner, link["code"])["visits"] == 0
    person = httpx.get(f"{GATEWAY}{path}", headers={**APEX, "User-Agent": BROWSER}, timeout=20)
    assert person.status_code == 302 and person.headers["location"] == "https://example.com/once"
    assert httpx.get(f"{GATEWAY}{path}", headers={**APEX, "User-Agent": BROWSER}, timeout=20).status_code == 410


def test_a_cached_link_is_answered_at_the_edge_and_its_visits_reach_the_outbox(owner: dict[str, str]) -> None:
    link = link_create(owner, target="https://example.com/plain")
    path = f"/s/{link['code']}"
    for _ in range(5):
        answer = httpx.get(
            f"{GATEWAY}{path}", headers={**APEX, "User-Agent": BROWSER, "Referer": "https://news.example/x"}
        )
        assert answer.status_code == 302 and answer.headers["location"] == "https://example.com/plain"
        assert answer.headers["cache-control"] == "private, no-store"
    deadline = time.monotonic() + 30
    while link_get(owner, link["code"])["visits"] < 5:
        assert time.monotonic() < deadline, "the edge's visits never reached the shortener"
        time.sleep(0.3)
    with psycopg.connect(f"postgres://postgres@127.0.0.1:5432/{DB_PREFIX}shortener") as db:
        events = db.execute(
            "SELECT body FROM events_outboxevent WHERE event_type = 'URLAccessed' AND body LIKE %s",
            (f'%"{link["code"]}"%',),
        ).fetchall()
    assert len(events) == 5
    for (body,) in events:
        assert "news.example" in body and "127.0.0.1" not in body


def test_edits_and_revocation_reach_the_edge_at_once(owner: dict[str, str]) -> None:
    link = link_create(owner, target="https://example.com/before")
    path = f"/s/{link['code']}"
    assert httpx.get(f"{GATEWAY}{path}", headers=APEX).headers["location"] == "https://example.com/before"
    edited = httpx.patch(
        f"{GATEWAY}/api/links/{link['code']}", json={"target": "https://example.com/after"}, headers=owner, timeout=20
    )
    assert edited.status_code == 200, edited.text
    assert httpx.get(f"{GATEWAY}{path}", headers=APEX).headers["location"] == "https://example.com/after"
    assert httpx.delete(f"{GATEWAY}/api/links/{link['code']}", headers=owner, timeout=20).status_code in (200, 204)
    gone = httpx.get(f"{GATEWAY}{path}", headers={**APEX, **PAGE})
    assert gone.status_code == 410 and "text/html" in gone.headers["content-type"]
    unknown = httpx.get(f"{GATEWAY}/s/NoSuchCode1", headers={**APEX, "Accept": "application/json"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"]


def test_a_link_never_points_anywhere_but_http(owner: dict[str, str]) -> None:
    for target in ("javascript:alert(1)", "data:text/html,hi", "//evil.example/", "ftp://example.com/x"):
        response = httpx.post(f"{GATEWAY}/api/links", json={"target": target}, headers=owner, timeout=20)
        assert response.status_code in (400, 422), (target, response.status_code)
        assert response.json()["error"]["code"]
