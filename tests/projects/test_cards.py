"""The board's cards written in Python (apps/projects/cards.py) are the bytes templates/projects/_card.html renders."""

import pytest
from django.template.loader import render_to_string

from apps.projects.cards import card_html, cards_html

TASKS = [
    {
        "id": 7, "rank": "a0", "version": 3, "key": "DEMO-7", "title": "Ship it", "priority": "high",
        "labels": ["ops", "urgent"], "due_date": "2026-12-24", "subtasks_done": 1, "subtasks_total": 4,
        "comment_count": 2, "assignees": ["ana", "bo"],
    },
    {
        "id": 8, "rank": "a1", "version": 1, "key": "DEMO-8", "title": "Nothing else set", "priority": None,
        "labels": [], "due_date": None, "subtasks_done": 0, "subtasks_total": 0, "comment_count": 0,
        "assignees": [],
    },
    {
        "id": 9, "rank": "a2", "version": 12, "key": "DEMO-9", "title": '<script>alert("x")</script> & \'quotes\'',
        "priority": "low", "labels": ['"><img src=x onerror=alert(1)>'], "due_date": "2027-01-01",
        "subtasks_done": 0, "subtasks_total": 1, "comment_count": 0, "assignees": ["<b>éva</b>", "z"],
    },
]  # fmt: skip


PEOPLE = {
    "ana": {"id": "ana", "name": "Ana Lima", "initials": "AL", "colour": "#1d4ed8", "palette": 0},
    "<b>éva</b>": {"id": "<b>éva</b>", "name": '<b>Éva</b> "x"', "initials": "<B", "colour": "#047857", "palette": 1},
}


COLOURS = {"ops": "#216e4e", '"><img src=x onerror=alert(1)>': '"><b>x'}


@pytest.mark.parametrize("task", TASKS, ids=["everything", "nothing", "hostile"])
def test_a_card_is_the_bytes_its_template_renders(task: dict) -> None:
    context = {"task": task, "people": PEOPLE, "label_colours": COLOURS}
    assert card_html(task, PEOPLE, COLOURS) == render_to_string("projects/_card.html", context)


def test_a_card_shows_its_assignees_by_name_and_initials() -> None:
    html = card_html(TASKS[0], PEOPLE, COLOURS)
    assert '<span class="avatar avatar-c0" title="Ana Lima">AL</span>' in html
    # Someone the directory has not heard of yet: grey, "Unknown user", never their id.
    assert 'title="Unknown user">?</span>' in html and ">BO<" not in html


def test_what_a_card_shows_is_escaped() -> None:
    html = cards_html(TASKS[2:], PEOPLE, COLOURS)
    assert "<script>" not in html and "<img" not in html and "<b>" not in html and "<B" not in html
    assert "&lt;script&gt;" in html


def test_a_label_chip_carries_its_projects_colour() -> None:
    html = card_html(TASKS[0], PEOPLE, COLOURS)
    assert '<span class="label" data-colour="#216e4e">ops</span>' in html
    assert '<span class="label">urgent</span>' in html
