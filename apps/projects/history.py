"""A task's history in words: each Activity row (services record them) as a sentence with names.

"Ana moved DEMO-4 from To do to In progress". Plain text: the page escapes it like any other
text. Names come from the caller (the people directory, else project members' display names);
columns are named as they were when the row was written, else as they are now.
"""

import datetime as dt
from collections.abc import Callable, Mapping

MAX_QUOTED = 80

FIELD_WORDS = {
    "title": "the title",
    "description": "the description",
    "labels": "the labels",
    "priority": "the priority",
    "due_date": "the due date",
    "estimate_minutes": "the estimate",
    "assignees": "the assignees",
}


def _quoted(text: object) -> str:
    value = str(text or "")
    if len(value) > MAX_QUOTED:
        value = value[: MAX_QUOTED - 1] + "…"
    return f"“{value}”"


def _listed(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def minutes_text(minutes: object) -> str:
    if not isinstance(minutes, int) or minutes <= 0:
        return "no time"
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


def _day(value: object) -> str:
    try:
        day = dt.date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{day.day} {day:%b %Y}"


def _field_change(field: str, values: object, key: str) -> str:
    """One field's change: "set the priority of DEMO-4 to high"."""
    new = values[1] if isinstance(values, list) and len(values) == 2 else None
    if field == "title":
        return f"renamed {key} to {_quoted(new)}"
    if field == "priority":
        return f"set the priority of {key} to {new}"
    if field == "due_date":
        return f"set {key} due on {_day(new)}" if new else f"removed the due date of {key}"
    if field == "estimate_minutes":
        return f"estimated {key} at {minutes_text(new)}" if new else f"removed the estimate of {key}"
    if field == "labels":
        old_labels, new_labels = values if isinstance(values, list) and len(values) == 2 else ([], [])
        added = [label for label in new_labels or [] if label not in (old_labels or [])]
        removed = [label for label in old_labels or [] if label not in (new_labels or [])]
        parts = []
        if added:
            parts.append(f"labelled {key} {_listed([_quoted(label) for label in added])}")
        if removed:
            parts.append(f"removed the label{'s' if len(removed) > 1 else ''} {_listed([_quoted(x) for x in removed])}")
        return " and ".join(parts) or f"changed the labels of {key}"
    return f"changed {FIELD_WORDS.get(field, field.replace('_', ' '))} of {key}"


def activity_text(
    entry: Mapping,
    *,
    key: str,
    name: Callable[[str], str],
    column_name: Callable[[object], str],
) -> str:
    """The sentence for one activity row (`verb`, `actor_id`, `data`)."""
    actor = name(entry["actor_id"])
    data = entry.get("data") or {}
    verb = entry["verb"]
    what = _phrase(verb, data, key=key, name=name, column_name=column_name, actor_id=entry["actor_id"])
    return f"{actor} {what}"


def _phrase(
    verb: str,
    data: Mapping,
    *,
    key: str,
    name: Callable[[str], str],
    column_name: Callable[[object], str],
    actor_id: str,
) -> str:
    if verb == "created":
        return f"created {key}" + (f" in {column_name(data['column'])}" if data.get("column") else "")
    if verb == "moved":
        source = data.get("from_name") or column_name(data.get("from_column"))
        target = data.get("to_name") or column_name(data.get("to_column"))
        if data.get("from_column") == data.get("to_column"):
            return f"reordered {key} in {target}"
        return f"moved {key} from {source} to {target}"
    if verb == "updated":
        fields = [field for field in data.get("fields") or [] if field != "assignees"]
        changes = data.get("changes") or {}
        if len(fields) == 1:
            return _field_change(fields[0], changes.get(fields[0]), key)
        return f"changed {_listed([FIELD_WORDS.get(f, f.replace('_', ' ')) for f in fields]) or 'details'} of {key}"
    if verb == "assigned":
        added = [name(user) for user in data.get("added") or []]
        removed = [name(user) for user in data.get("removed") or []]
        parts = []
        if added:
            parts.append(f"assigned {_listed(added)} to {key}")
        if removed:
            parts.append(f"unassigned {_listed(removed)} from {key}")
        if parts:
            return " and ".join(parts)
        return f"changed who works on {key}"
    if verb == "archived":
        return f"archived {key}"
    if verb == "restored":
        return f"restored {key}" + (f" to {data['column_name']}" if data.get("column_name") else "")
    if verb == "commented":
        return f"commented on {key}"
    if verb == "comment_deleted":
        author = data.get("author")
        if not author or author == actor_id:
            return f"deleted their comment on {key}"
        return f"deleted a comment by {name(author)} on {key}"
    if verb == "subtask_added":
        return f"added the subtask {_quoted(data.get('title'))} to {key}"
    if verb == "subtask_renamed":
        return f"renamed the subtask {_quoted(data.get('old'))} to {_quoted(data.get('title'))}"
    if verb == "subtask_done":
        return f"completed the subtask {_quoted(data['title'])}" if data.get("title") else "completed a subtask"
    if verb == "subtask_reopened":
        return f"reopened the subtask {_quoted(data['title'])}" if data.get("title") else "reopened a subtask"
    if verb == "subtask_removed":
        return f"removed the subtask {_quoted(data.get('title'))} from {key}"
    if verb == "attachment_added":
        return f"attached {_quoted(data.get('filename'))} to {key}"
    if verb == "attachment_removed":
        return f"removed the attachment {_quoted(data.get('filename'))} from {key}"
    if verb == "work_logged":
        return f"logged {minutes_text(data.get('minutes'))} on {key}" + (
            f" for {_day(data['day'])}" if data.get("day") else ""
        )
    if verb == "work_edited":
        return f"changed a work log on {key} to {minutes_text(data.get('minutes'))}"
    if verb == "work_removed":
        return f"deleted {minutes_text(data.get('minutes'))} of logged work from {key}"
    return f"{verb.replace('_', ' ')} {key}"


def relative_time(moment: dt.datetime, now: dt.datetime) -> str:
    """'just now', '3 min ago', '2 h ago', 'yesterday', '4 days ago', else the date
    (static/js/panel.js says the same, and keeps it current)."""
    seconds = (now - moment).total_seconds()
    if seconds < 45:
        return "just now"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min ago"
    hours = round(seconds / 3600)
    if hours < 24:
        return f"{hours} h ago"
    days = (now.date() - moment.date()).days
    if days <= 1:
        return "yesterday"
    if days < 7:
        return f"{days} days ago"
    return f"{moment.day} {moment:%b %Y}"
