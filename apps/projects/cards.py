"""A board's cards as HTML, written in Python: the same bytes as templates/projects/_card.html.

The template stays the definition a reader edits (the board's JavaScript clones it for new
cards), and tests/projects/test_cards.py holds the two to the same output. This exists because a
2,000-card board page spent most of its time in Django's template engine, about 60 us a card
resolving variables and filters (bench/board.py, docs/benchmarks.md); this is a few us a card.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from apps.projects.people import UNKNOWN_PERSON


def _text(value: object) -> str:
    return str(conditional_escape("" if value is None else value))


def _avatar(user_id: str, people: Mapping[str, dict]) -> str:
    person = people.get(user_id) or UNKNOWN_PERSON
    return (
        f'<span class="avatar avatar-c{_text(person["palette"])}" title="{_text(person["name"])}">'
        f"{_text(person['initials'])}</span>"
    )


def _label(name: str, colours: Mapping[str, str]) -> str:
    colour = colours.get(name)
    attribute = f' data-colour="{_text(colour)}"' if colour else ""
    return f'<span class="label"{attribute}>{_text(name)}</span>'


def card_html(task: Mapping[str, Any], people: Mapping[str, dict], label_colours: Mapping[str, str]) -> str:
    labels = "".join(_label(label, label_colours) for label in task["labels"])
    due = task.get("due_date")
    subtasks = task.get("subtasks_total")
    comments = task.get("comment_count")
    assignees = "".join(_avatar(user, people) for user in task["assignees"])
    return (
        f'<li class="card priority-{_text(task.get("priority") or "medium")}" tabindex="0" '
        f'data-task="{_text(task["id"])}" data-rank="{_text(task["rank"])}" data-version="{_text(task["version"])}">'
        f'<span class="card-key">{_text(task["key"])}</span>'
        f'<button class="card-more" aria-haspopup="menu" aria-label="Move {_text(task["key"])}">⋯</button>'
        f'<span class="card-title">{_text(task["title"])}</span>'
        f'<span class="card-meta"><span class="labels">{labels}</span>'
        + (f'<time class="due" datetime="{_text(due)}">{_text(due)}</time>' if due else "")
        + (f'<span class="subtasks">{_text(task["subtasks_done"])}/{_text(subtasks)}</span>' if subtasks else "")
        + (f'<span class="comments">{_text(comments)}</span>' if comments else "")
        + f'<span class="assignees">{assignees}</span></span></li>\n'
    )


def cards_html(
    tasks: Iterable[Mapping[str, Any]], people: Mapping[str, dict], label_colours: Mapping[str, str]
) -> SafeString:
    """A column's cards, in order, ready for the template (each value escaped above); `people`
    by id, as selectors.people_get gives them; the project's label colours by name."""
    return mark_safe("".join(card_html(task, people, label_colours) for task in tasks))  # noqa: S308 (built from escaped parts)
