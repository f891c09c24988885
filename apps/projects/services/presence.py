"""Who is viewing a board: the board's sockets (apps/projects/consumers.py) call these.

A view is recorded when its socket joins and each time its client answers the heartbeat, and
forgotten when it closes or stops answering (live.py holds the details). Changes are announced
to the board's viewers as one `presence` message per coalescing window, whatever the number of
joins in it, with everyone viewing as `{"user_id", "name"}` (one entry per person).
"""

from apps.projects import live


def viewer_heard(*, schema: str, board_id: int, channel_name: str, viewer: dict) -> bool:
    """A view joined or answered the heartbeat. True when the room changed and must be told
    (presence_changed)."""
    return live.presence_touch(schema=schema, board_id=board_id, channel_name=channel_name, viewer=viewer)


def viewers_heard(*, views: dict[tuple[str, int], list[tuple[str, dict]]]) -> list[tuple[str, int]]:
    """Many views answered the heartbeat (one process's round, by board). The boards whose room
    changed and must be told (presence_changed)."""
    return live.presence_touch_many(views=views)


def viewer_left(*, schema: str, board_id: int, channel_name: str) -> bool:
    """A view closed. True when the room changed."""
    return live.presence_leave(schema=schema, board_id=board_id, channel_name=channel_name)


def board_viewers(*, schema: str, board_id: int) -> list[dict]:
    return live.presence_list(schema=schema, board_id=board_id)


def presence_changed(*, schema: str, board_id: int) -> bool:
    """Who is viewing changed. True when the caller must call presence_announce after
    live.PRESENCE_COALESCE_SECONDS; False when an announcement is already due."""
    return live.presence_claim(schema=schema, board_id=board_id)


def presence_announce(*, schema: str, board_id: int) -> list[dict]:
    """Tell the board's viewers who is viewing now."""
    live.presence_unclaim(schema=schema, board_id=board_id)
    viewers = board_viewers(schema=schema, board_id=board_id)
    live.board_broadcast(board_id=board_id, event="presence", data={"viewers": viewers}, sequenced=False, schema=schema)
    return viewers
