"""The live board over WebSocket: `/ws/boards/<id>/[?since=<seq>]`; and a shared task's
read-only live view, `/ws/shared/<code>/` (SharedTaskConsumer, at the end).

Thin: authenticate the handshake (apps.common.auth), then each database step runs in
one synchronous function that enters the tenant's context itself (never a tenant set in
one thread for queries in another: django-tenants #820). Board messages arrive from
live.board_broadcast through the board's group, already serialized, and are passed on
as they are, so fan-out to many viewers costs no JSON work per viewer.
"""

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.common.auth import InvalidToken, authenticate_websocket, jti_is_revoked
from apps.projects import live, selectors, share
from apps.projects.db import tenant_connection
from apps.projects.services import presence as presence_services

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_SILENT = 4408  # the client stopped answering the heartbeat: it is gone, or reconnects
SILENT_CLOSE_FACTOR = 3
PING = json.dumps({"seq": None, "type": "ping", "data": {}})
PONG = json.dumps({"seq": None, "type": "pong", "data": {}})

# Announcements of who is viewing, due after the coalescing window: held here, since the socket
# that scheduled one may close before it runs (and the loop keeps only weak references to tasks).
_announcements: set[asyncio.Task] = set()


@dataclass(frozen=True)
class Opened:
    schema: str
    viewer: dict


def _tenant_for(tenant_id: str) -> object | None:
    from apps.projects.tenants.models import ProvisioningStatus
    from apps.projects.tenants.selectors import tenant_get

    tenant = tenant_get(tenant_id=tenant_id)
    return tenant if tenant is not None and tenant.status == ProvisioningStatus.ACTIVE else None


def board_open(*, tenant_id: str, claims: object, board_id: int) -> Opened | None:
    """The tenant's schema and who this viewer is, or None when the board is not theirs to read."""
    from apps.projects.tenants.context import tenant_context

    tenant = _tenant_for(tenant_id)
    if tenant is None:
        return None
    with tenant_context(tenant):
        if not selectors.board_readable(caller=claims, board_id=board_id):
            return None
        return Opened(
            schema=tenant_connection().schema_name,
            viewer=selectors.board_viewer(user_id=claims.user_id),
        )


@dataclass(frozen=True)
class Joined:
    seq: int
    missed: list[str] | None  # None: too much was missed, the client reloads
    viewers: list[dict]
    announce: bool


def board_join(*, schema: str, board_id: int, channel_name: str, viewer: dict, since: int | None) -> Joined:
    """Records the view, and reads the board's sequence, what a reconnecting client missed and
    who is viewing (this view included)."""
    changed = presence_services.viewer_heard(schema=schema, board_id=board_id, channel_name=channel_name, viewer=viewer)
    announce = changed and presence_services.presence_changed(schema=schema, board_id=board_id)
    seq = live.board_seq(schema=schema, board_id=board_id)
    missed = [] if since is None else live.board_messages_since(schema=schema, board_id=board_id, since=since)
    viewers = presence_services.board_viewers(schema=schema, board_id=board_id)
    return Joined(seq=seq, missed=missed, viewers=viewers, announce=announce)


def board_leave(*, schema: str, board_id: int, channel_name: str) -> bool:
    """A view closed: True when the caller must announce the room."""
    changed = presence_services.viewer_left(schema=schema, board_id=board_id, channel_name=channel_name)
    return changed and presence_services.presence_changed(schema=schema, board_id=board_id)


def heartbeat_round(*, views: dict[tuple[str, int], list[tuple[str, dict]]]) -> list[tuple[str, int]]:
    """The views whose clients answered, by board: the boards whose room the caller must announce."""
    changed = presence_services.viewers_heard(views=views)
    return [board for board in changed if presence_services.presence_changed(schema=board[0], board_id=board[1])]


async def _announce_later(schema: str, board_id: int) -> None:
    await asyncio.sleep(live.PRESENCE_COALESCE_SECONDS)
    try:
        await sync_to_async(presence_services.presence_announce, thread_sensitive=False)(
            schema=schema, board_id=board_id
        )
    except Exception:  # Redis away: the next change or heartbeat sweep announces again
        logger.exception("presence announcement failed", extra={"board_id": board_id, "schema": schema})


def announce_later(schema: str, board_id: int) -> None:
    task = asyncio.create_task(_announce_later(schema, board_id))
    _announcements.add(task)
    task.add_done_callback(_announcements.discard)


class Heartbeat:
    """This process's open board sockets, and the one task that keeps them in presence: every
    HEARTBEAT_SECONDS it pings each socket, records in one Redis round trip (per board) the views
    whose clients answered since the last round, and closes (4408) the ones silent for
    SILENT_CLOSE_FACTOR x PRESENCE_EXPIRY_SECONDS. So a heartbeat costs no Redis call and no
    thread per socket, and a process that dies stops keeping its views alive: they expire."""

    def __init__(self) -> None:
        self.sockets: dict[str, BoardConsumer] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task | None = None

    def add(self, consumer: "BoardConsumer") -> None:
        loop = asyncio.get_running_loop()
        if self.loop is not loop or self.task is None or self.task.done():  # a new event loop (tests)
            self.loop, self.sockets = loop, {}
            self.task = loop.create_task(self._run())
        self.sockets[consumer.channel_name] = consumer

    def discard(self, consumer: "BoardConsumer") -> None:
        self.sockets.pop(consumer.channel_name, None)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(live.HEARTBEAT_SECONDS)
            try:
                await self.beat()
            except Exception:  # Redis away: views expire and come back with the next round that works
                logger.exception("presence heartbeat failed", extra={"sockets": len(self.sockets)})

    async def beat(self) -> None:
        now = time.monotonic()
        # Answered the last ping (one heartbeat ago), with a second of slack for a slow client.
        fresh = live.HEARTBEAT_SECONDS + 1.0
        views: dict[tuple[str, int], list[tuple[str, dict]]] = {}
        for consumer in list(self.sockets.values()):
            silent = now - consumer.heard_at
            if silent > SILENT_CLOSE_FACTOR * live.PRESENCE_EXPIRY_SECONDS:
                self.discard(consumer)
                await consumer.close(code=CLOSE_SILENT)
                continue
            if silent <= fresh:
                views.setdefault((consumer.schema, consumer.board_id), []).append(
                    (consumer.channel_name, consumer.viewer)
                )
            try:
                await consumer.send(text_data=PING)
            except (RuntimeError, OSError):  # closing as we speak: its disconnect takes it out
                continue
        if views:
            for schema, board_id in await sync_to_async(heartbeat_round, thread_sensitive=False)(views=views):
                announce_later(schema, board_id)


heartbeat = Heartbeat()


# How often an open board socket asks whether its token was revoked (logout, a new password,
# an address taken over): the socket outlives the handshake that checked it.
SESSION_RECHECK_SECONDS = 15.0


class BoardConsumer(AsyncWebsocketConsumer):
    """One open board. Besides the board's messages, it gets a `ping` every HEARTBEAT_SECONDS
    (Heartbeat); the client answers `pong` (as soon as the message arrives, so a background tab
    whose timers the browser slows down still answers), which keeps the view listed in presence.
    A client silent for SILENT_CLOSE_FACTOR x PRESENCE_EXPIRY_SECONDS is closed (4408): its socket
    is most likely half-open (a sleeping laptop), and its view expired long before. (Not sooner:
    a client that is only slow, on a loaded machine, would reconnect for nothing.)"""

    board_id: int
    group: str | None = None
    schema: str | None = None
    viewer: dict | None = None
    heard_at: float = 0.0
    session_watch: asyncio.Task | None = None

    async def connect(self) -> None:
        self.board_id = int(self.scope["url_route"]["kwargs"]["board_id"])
        try:
            claims, subprotocol = await authenticate_websocket(self.scope)
        except InvalidToken:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        opened = await database_sync_to_async(board_open)(
            tenant_id=claims.tenant_id, claims=claims, board_id=self.board_id
        )
        await self.accept(subprotocol=subprotocol)
        if opened is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.schema, self.viewer = opened.schema, opened.viewer
        self.session_watch = asyncio.create_task(self._session_watch(jti=claims.jti, expires_at=claims.expires_at))
        self.group = live.board_group(opened.schema, self.board_id)
        # Join first, then read what was missed: a message sent in between arrives twice
        # (clients drop repeated seqs) rather than never.
        await self.channel_layer.group_add(self.group, self.channel_name)
        joined = await sync_to_async(board_join, thread_sensitive=False)(
            schema=opened.schema,
            board_id=self.board_id,
            channel_name=self.channel_name,
            viewer=opened.viewer,
            since=self._since(),
        )
        self.heard_at = time.monotonic()
        heartbeat.add(self)
        if joined.announce:
            announce_later(opened.schema, self.board_id)
        hello = {
            "seq": None,
            "type": "hello",
            "data": {"seq": joined.seq, "viewers": joined.viewers, "heartbeat": live.HEARTBEAT_SECONDS},
        }
        await self.send(text_data=json.dumps(hello))
        if joined.missed is None:
            await self.send(text_data=json.dumps({"seq": None, "type": "resync", "data": {"seq": joined.seq}}))
        else:
            for text in joined.missed:
                await self.send(text_data=text)

    def _since(self) -> int | None:
        from urllib.parse import parse_qs

        raw = parse_qs(self.scope.get("query_string", b"").decode()).get("since", [""])[0]
        # ASCII digits only: str.isdigit() also takes "²" (int() then fails) and "٣" (int() reads 3).
        return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None

    async def _session_watch(self, *, jti: str, expires_at: int) -> None:
        """Closes the socket (4401: the board renews its token and reconnects, or signs in) once
        the token expires or is revoked; the client sees no more of the board than its token allows."""
        # Sockets opened together would re-check together: a random first wait spreads them out, and
        # the check runs on a worker thread, not the one thread that serves the sync views.
        wait = random.uniform(0.5, 1.0) * SESSION_RECHECK_SECONDS  # noqa: S311 (spreading load, not a secret)
        while (remaining := expires_at - time.time()) > 0:
            await asyncio.sleep(min(wait, remaining))
            wait = SESSION_RECHECK_SECONDS
            if await sync_to_async(jti_is_revoked, thread_sensitive=False)(jti):
                break
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def disconnect(self, code: int) -> None:
        if self.session_watch is not None:
            self.session_watch.cancel()
        if self.group is None:
            return
        heartbeat.discard(self)
        await self.channel_layer.group_discard(self.group, self.channel_name)
        if await sync_to_async(board_leave, thread_sensitive=False)(
            schema=self.schema, board_id=self.board_id, channel_name=self.channel_name
        ):
            announce_later(self.schema, self.board_id)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The board is read-only over the socket: changes go through the HTTP API. What a client
        # sends is its heartbeat: "pong" to the server's ping, or a "ping" of its own.
        if text_data in ("pong", "ping"):
            self.heard_at = time.monotonic()  # the next heartbeat round keeps the view listed
        if text_data == "ping":
            await self.send(text_data=PONG)

    async def board_message(self, event: dict) -> None:
        await self.send(text_data=event["text"])


# A shared task's live view: `/ws/shared/<code>/` (issue 11).

CLOSE_ENDED = 4410  # the link ended: the page says so, and does not reconnect
# What the board's group says that may change what a shared view shows: its task's own messages
# (`data.id`), its column's (a rename, or deleted with the task moved), and a board-wide resync.
_TASK_EVENTS = frozenset({"task.updated", "task.moved", "task.archived", "task.restored", "task.deleted"})
_COLUMN_EVENTS = frozenset({"column.updated", "column.deleted"})


@dataclass(frozen=True)
class SharedState:
    schema: str
    ended: str | None  # the link ended, for this reason
    task: dict | None  # None: the task is gone
    html: str


def shared_read(*, tenant_id: str, code: str, task_id: int) -> SharedState | None:
    """What the shared view shows now (None: no such active tenant). Everything in one function,
    in the tenant's context (django-tenants #820)."""
    from django.template.loader import render_to_string

    from apps.projects.tenants.context import tenant_context

    tenant = _tenant_for(tenant_id)
    if tenant is None:
        return None
    with tenant_context(tenant):
        schema = tenant_connection().schema_name
        ended = selectors.shared_link_ended(code=code)
        if share.ends_views(ended):
            return SharedState(schema=schema, ended=ended, task=None, html="")
        task = selectors.shared_task(task_id=task_id)
    html = render_to_string("projects/_shared_task.html", {"task": task}) if task is not None else ""
    return SharedState(schema=schema, ended=None, task=task, html=html)


class SharedTaskConsumer(AsyncWebsocketConsumer):
    """One open shared view, authorised by its cookie (apps/projects/share.py), never by a login.

    It listens to its task's board group, but forwards nothing the board says (cards carry
    assignees' ids, comments their authors): a message that concerns its task makes it read the
    task again (selectors.shared_task, the page's own fields) and send the re-rendered part when
    it changed. Reads coalesce: a burst of changes costs one read after the one running. The
    link's group (live.shared_group) tells it the link ended (4410); its pass's end closes it 4401
    (the visitor opens the link again); its task's deletion 4404."""

    code: str
    share_pass: share.SharePass | None = None
    schema: str | None = None
    groups_joined: tuple[str, ...] = ()
    column_id: int | None = None
    last_html: str = ""
    dirty: bool = False
    refreshing: asyncio.Task | None = None
    expiry: asyncio.Task | None = None

    async def connect(self) -> None:
        self.code = self.scope["url_route"]["kwargs"]["code"]
        try:
            tenant_id, token = share.socket_credentials(self.scope)
            self.share_pass = share.view_check(token, code=self.code, tenant_id=tenant_id)
        except share.PassRefused:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        state = await self._read()
        await self.accept()
        if not await self._apply(state):
            return
        self.schema = state.schema
        self.groups_joined = (
            live.shared_group(state.schema, self.code),
            live.board_group(state.schema, state.task["board_id"]),
        )
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        # Joined, then read again: a change between the first read and the join is not lost.
        self._refresh_soon()
        self.expiry = asyncio.create_task(self._expire(self.share_pass.expires_at))

    async def _read(self) -> SharedState | None:
        assert self.share_pass is not None
        return await database_sync_to_async(shared_read)(
            tenant_id=self.share_pass.tenant_id, code=self.code, task_id=self.share_pass.task_id
        )

    async def _apply(self, state: SharedState | None) -> bool:
        """Sends what changed; False when the view is over (and closed)."""
        if state is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return False
        if state.ended is not None:
            await self._ended(state.ended)
            return False
        if state.task is None:
            await self.send(text_data=json.dumps({"type": "gone", "data": {}}))
            await self.close(code=CLOSE_NOT_FOUND)
            return False
        self.column_id = state.task["column_id"]
        if state.html != self.last_html:
            self.last_html = state.html
            data = {
                "html": state.html,
                "digest": share.digest(state.html),
                "key": state.task["key"],
                "title": state.task["title"],
            }
            await self.send(text_data=json.dumps({"type": "task", "data": data}))
        return True

    async def _ended(self, reason: str) -> None:
        await self.send(text_data=json.dumps({"type": "ended", "data": {"reason": reason}}))
        await self.close(code=CLOSE_ENDED)

    def _refresh_soon(self) -> None:
        self.dirty = True
        if self.refreshing is None or self.refreshing.done():
            self.refreshing = asyncio.create_task(self._refresh())

    async def _refresh(self) -> None:
        while self.dirty:
            self.dirty = False
            try:
                state = await self._read()
            except Exception:  # the database away: the next change reads again; a reconnect heals
                logger.exception("shared view read failed", extra={"code": self.code})
                return
            if not await self._apply(state):
                return

    async def _expire(self, expires_at: float) -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        await self.send(text_data=json.dumps({"type": "expired", "data": {}}))
        await self.close(code=CLOSE_UNAUTHENTICATED)

    def _concerns(self, text: str) -> bool:
        try:
            message = json.loads(text)
        except ValueError:
            return False
        kind, data = message.get("type"), message.get("data") or {}
        if kind in _TASK_EVENTS:
            return self.share_pass is not None and data.get("id") == self.share_pass.task_id
        if kind in _COLUMN_EVENTS:
            return data.get("id") == self.column_id
        return kind == "resync"

    async def board_message(self, event: dict) -> None:
        if self._concerns(event["text"]):
            self._refresh_soon()

    async def shared_ended(self, event: dict) -> None:
        await self._ended(str(event.get("reason") or "ended"))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "ping":  # the page's keep-alive (proxies drop silent sockets)
            await self.send(text_data=PONG)

    async def disconnect(self, code: int) -> None:
        for task in (self.expiry, self.refreshing):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = ()
