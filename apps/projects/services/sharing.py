"""Shared tasks (issue 11): a short link of a task ended, so its shared view closes for good
(revoked, expired), or takes no more visitors (used up: apps/projects/share.py `ends_views`).

Called from handlers.py when the shortener's URLExpired arrives. Idempotent: the consumer may
deliver an event twice, and a link ends once (the first reason is kept).
"""

from datetime import UTC, datetime

from apps.projects import live
from apps.projects.models import SharedLinkEnd
from apps.projects.share import ends_views


def shared_link_end(*, code: str, reason: str, ended_at: datetime | None = None, event_id: str = "") -> bool:
    """Records that the link `code` ended, and when the reason shuts its views (share.ends_views),
    closes the open ones after commit. True when this recorded it, False when it had ended already
    (the first reason is kept, unless a reason that shuts the views follows one that did not)."""
    ended, created = SharedLinkEnd.objects.select_for_update().get_or_create(
        code=code[:64],
        defaults={"reason": reason[:32], "ended_at": ended_at or datetime.now(UTC), "event_id": event_id[:64]},
    )
    if not created and not ends_views(ended.reason) and ends_views(reason):
        ended.reason, ended.event_id = reason[:32], event_id[:64]
        ended.save(update_fields=["reason", "event_id"])
    if ends_views(ended.reason):
        live.shared_link_close(code=code, reason=ended.reason)  # again too: a view that opened in between
    return created
