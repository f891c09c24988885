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


@pytest.mark.parametrize("task", TASKS, ids=["everything", "nothing", "hostile"])
def test_a_card_is_the_bytes_its_template_renders(task: dict) -> None:
    assert card_html(task) == render_to_string("projects/_card.html", {"task": task})


def test_what_a_card_shows_is_escaped() -> None:
    html = cards_html(TASKS[2:])
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html
