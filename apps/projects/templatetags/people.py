"""People in templates: `{% load people %}`, then `{% avatar user_id people %}` and
`{{ user_id|person_name:people }}`, where `people` is a board's or a task's `people` (a list of
selectors.people_get's dicts, or that dict by id)."""

from collections.abc import Iterable, Mapping

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.projects.people import UNKNOWN_PERSON

register = template.Library()


def _lookup(user_id: object, people: Mapping[str, dict] | Iterable[dict] | None) -> dict:
    user_id = str(user_id)
    if isinstance(people, Mapping):
        found = people.get(user_id)
    else:
        found = next((person for person in people or () if person["id"] == user_id), None)
    return found or {**UNKNOWN_PERSON, "id": user_id}


@register.simple_tag
def avatar(user_id: object, people: Mapping[str, dict] | Iterable[dict] | None) -> SafeString:
    person = _lookup(user_id, people)
    return format_html(
        '<span class="avatar avatar-c{}" title="{}">{}</span>', person["palette"], person["name"], person["initials"]
    )


@register.filter
def person_name(user_id: object, people: Mapping[str, dict] | Iterable[dict] | None) -> str:
    return _lookup(user_id, people)["name"]


@register.filter
def label_colour(name: object, colours: Mapping[str, str] | None) -> str:
    """A label's hex colour by its name (`{{ label|label_colour:label_colours }}`), or ""."""
    return (colours or {}).get(str(name), "")
