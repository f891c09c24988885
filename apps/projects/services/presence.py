"""Who is viewing a board."""

from apps.projects import live
from apps.projects.db import tenant_connection


def board_presence(*, board_id: int, channel_name: str, viewer: dict | None) -> list[dict]:
    """Record that someone opened (viewer) or closed (None) the board; tell its viewers."""
    viewers = live.presence_set(
        schema=tenant_connection().schema_name, board_id=board_id, channel_name=channel_name, viewer=viewer
    )
    live.board_broadcast(board_id=board_id, event="presence", data={"viewers": viewers}, sequenced=False)
    return viewers
