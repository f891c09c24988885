"""A filtered board's live check (`GET /boards/<id>/cards/?ids=...&<filters>`): the cards it shows
are the cards a reload with the same URL shows, whatever the filter."""

import datetime as dt

import pytest
from django.test import Client

from apps.projects import selectors
from apps.projects.selectors import TaskFilters
from apps.projects.services import projects as project_services
from apps.projects.services import tasks as task_services
from tests.projects.conftest import MEMBER_PERMISSIONS
from tests.projects.tokens import make_token


@pytest.fixture
def cards(manager, board, columns) -> dict[str, int]:
    def create(title: str, **fields: object) -> int:
        return task_services.task_create(caller=manager, board_id=board.id, title=title, **fields).id

    return {
        "plain": create("Plain card"),
        "title": create("Fix the Login page"),
        "description": create("Tidy up", description="the login form forgets the email"),
        "ana": create("Ana's card", assignees=["user-ana"], column_id=columns[1].id),
        "label": create("Labelled", labels=["bug", "ui"]),
        "due": create("Due soon", due_date=dt.date(2026, 12, 1)),
        "late": create("Due later", due_date=dt.date(2027, 3, 1), labels=["bug"]),
    }


FILTERS = {
    "text in a title, any case": TaskFilters(text="login"),
    "text in a description only": TaskFilters(text="forgets"),
    "a key": TaskFilters(text="demo-3"),
    "an assignee": TaskFilters(assignee="user-ana"),
    "a label": TaskFilters(label="bug"),
    "due by a day": TaskFilters(due_before=dt.date(2026, 12, 31)),
    "a label and due by a day": TaskFilters(label="bug", due_before=dt.date(2026, 12, 31)),
    "nothing matches": TaskFilters(text="no such words"),
}


@pytest.mark.parametrize("filters", FILTERS.values(), ids=FILTERS.keys())
def test_the_live_check_shows_what_a_reload_shows(filters, member, board, cards) -> None:
    reload = selectors.board_get(caller=member, board_id=board.id, filters=filters)
    shown = {task["id"]: task for column in reload["columns"] for task in column["tasks"]}

    checked = selectors.board_cards(caller=member, board_id=board.id, task_ids=list(cards.values()), filters=filters)

    assert {card["id"] for card in checked} == set(shown)
    for card in checked:  # the card as the page shows it, in its column
        assert card == shown[card["id"]]


def test_a_card_enters_and_leaves_a_filtered_view_as_it_changes(manager, member, board, cards) -> None:
    by_label = TaskFilters(label="ui")
    plain = cards["plain"]
    assert selectors.board_cards(caller=member, board_id=board.id, task_ids=[plain], filters=by_label) == []

    task_services.task_update(caller=manager, task_id=plain, labels=["ui"])
    [entered] = selectors.board_cards(caller=member, board_id=board.id, task_ids=[plain], filters=by_label)
    assert entered["labels"] == ["ui"] and entered["version"] == 2

    task_services.task_update(caller=manager, task_id=plain, labels=[])
    assert selectors.board_cards(caller=member, board_id=board.id, task_ids=[plain], filters=by_label) == []


def test_the_check_answers_for_its_own_board_and_readers_only(manager, member, project, board, cards, tenant_a):
    other = project_services.project_create(caller=manager, key="OTHER", name="Other").boards.get()
    elsewhere = task_services.task_create(caller=manager, board_id=other.id, title="Fix the login elsewhere").id
    found = selectors.board_cards(
        caller=member, board_id=board.id, task_ids=[cards["title"], elsewhere], filters=TaskFilters(text="login")
    )
    assert [card["id"] for card in found] == [cards["title"]]

    from apps.common.exceptions import InvalidInput, NotFound
    from tests.projects.conftest import make_caller

    stranger = make_caller(tenant_a, "stranger", roles=("member",), permissions=MEMBER_PERMISSIONS)
    with pytest.raises(NotFound):
        selectors.board_cards(caller=stranger, board_id=board.id, task_ids=[cards["title"]], filters=TaskFilters())
    with pytest.raises(InvalidInput):
        selectors.board_cards(caller=member, board_id=board.id, task_ids=list(range(1, 200)), filters=TaskFilters())


def test_the_page_endpoint_reads_the_filters_as_the_page_does(member, board, cards, tenant_a) -> None:
    browser = Client()
    browser.cookies["access_token"] = make_token(
        user_id=member.user_id, tenant_id=tenant_a.tenant_id, permissions=MEMBER_PERMISSIONS
    )
    ids = ",".join(str(task_id) for task_id in cards.values())
    url = f"/boards/{board.id}/cards/"

    # The page strips and caps the text it filters on; so does the check.
    answer = browser.get(url, {"ids": ids, "q": "  LOGIN  "}, HTTP_X_TENANT_ID=tenant_a.tenant_id)
    assert answer.status_code == 200, answer.content
    assert {card["id"] for card in answer.json()["cards"]} == {cards["title"], cards["description"]}
    page = browser.get(f"/boards/{board.id}/", {"q": "  LOGIN  "}, HTTP_X_TENANT_ID=tenant_a.tenant_id)
    for task_id in cards.values():
        assert (f'data-task="{task_id}"' in page.content.decode()) == (
            task_id in (cards["title"], cards["description"])
        )

    labelled = browser.get(
        url, {"ids": ids, "label": "bug", "due_before": "2026-12-31"}, HTTP_X_TENANT_ID=tenant_a.tenant_id
    )
    assert labelled.json()["cards"] == []
    unfiltered = browser.get(url, {"ids": ids}, HTTP_X_TENANT_ID=tenant_a.tenant_id)
    assert len(unfiltered.json()["cards"]) == len(cards)

    for bad in ("1,x", "1;2", "-1", "9" * 40, "\u0661"):
        refused = browser.get(url, {"ids": bad}, HTTP_X_TENANT_ID=tenant_a.tenant_id)
        assert refused.status_code == 400, bad
    anonymous = Client().get(url, {"ids": ids}, HTTP_X_TENANT_ID=tenant_a.tenant_id)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login?next=")
