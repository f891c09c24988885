"""Filters of the card panel (templates/projects/_panel.html)."""

import datetime as dt

from django import template
from django.utils import timezone

from apps.projects import history
from apps.projects.people import UNKNOWN_PERSON

register = template.Library()


@register.filter
def ago(value: object) -> str:
    """A moment as the panel says it: "3 min ago" (static/js/panel.js keeps it current)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, dt.datetime):
        return ""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return history.relative_time(value, timezone.now())


@register.filter
def person(user_id: object, people: dict) -> dict:
    """The person `user_id` names (a dict of people by id), or an "Unknown user"."""
    found = people.get(user_id) if isinstance(people, dict) else None
    return found or {**UNKNOWN_PERSON, "id": user_id}


@register.filter
def minutes(value: object) -> str:
    return history.minutes_text(value)
