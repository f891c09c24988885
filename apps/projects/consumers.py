"""The live board over WebSocket: `/ws/boards/<id>/[?since=<seq>]`.

Thin: authenticate the handshake (apps.common.auth), then each database step runs in
one synchronous function that enters the tenant's context itself (never a tenant set in
one thread for queries in another: django-tenants #820). Board messages arrive from
live.board_broadcast through the board's group, already serialized, and are passed on
as they are, so fan-out to many viewers costs no JSON work per viewer.
"""

import asyncio
import json
import random
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.common.auth import InvalidToken, authenticate_websocket, jti_is_revoked
from apps.projects import live, selectors
from apps.projects.db import tenant_connection
from apps.projects.services import presence as presence_services

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


@dataclass(frozen=True)
class Opened:
    schema: str
    viewers: list[dict]


def _tenant_for(tenant_id: str) -> object | None:
    from apps.projects.tenants.models import ProvisioningStatus
    from apps.projects.tenants.selectors import tenant_get

    tenant = tenant_get(tenant_id=tenant_id)
    return tenant if tenant is not None and tenant.status == ProvisioningStatus.ACTIVE else None


def board_open(*, tenant_id: str, claims: object, board_id: int, channel_name: str) -> Opened | None:
    from apps.projects.tenants.context import tenant_context

    tenant = _tenant_for(tenant_id)
    if tenant is None:
        return None
    with tenant_context(tenant):
        if not selectors.board_readable(caller=claims, board_id=board_id):
            return None
        schema = tenant_connection().schema_name
        name = selectors.people_get(user_ids=[claims.user_id])[claims.user_id]["name"]
        viewers = presence_services.board_presence(
            board_id=board_id, channel_name=channel_name, viewer={"user_id": claims.user_id, "name": name}
        )
        return Opened(schema=schema, viewers=viewers)


def board_catch_up(*, schema: str, board_id: int, since: int | None) -> tuple[int, list[str] | None]:
    """The board's sequence now, and what a reconnecting client missed (None: too much, reload)."""
    seq = live.board_seq(schema=schema, board_id=board_id)
    if since is None:
        return seq, []
    return seq, live.board_messages_since(schema=schema, board_id=board_id, since=since)


def board_close(*, tenant_id: str, board_id: int, channel_name: str) -> None:
    from apps.projects.tenants.context import tenant_context

    tenant = _tenant_for(tenant_id)
    if tenant is None:
        return
    with tenant_context(tenant):
        presence_services.board_presence(board_id=board_id, channel_name=channel_name, viewer=None)


# How often an open board socket asks whether its token was revoked (logout, a new password,
# an address taken over): the socket outlives the handshake that checked it.
SESSION_RECHECK_SECONDS = 15.0


class BoardConsumer(AsyncWebsocketConsumer):
    board_id: int
    group: str | None = None
    tenant_id: str | None = None
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
            tenant_id=claims.tenant_id, claims=claims, board_id=self.board_id, channel_name=self.channel_name
        )
        await self.accept(subprotocol=subprotocol)
        if opened is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.tenant_id = claims.tenant_id
        self.session_watch = asyncio.create_task(self._session_watch(jti=claims.jti, expires_at=claims.expires_at))
        self.group = live.board_group(opened.schema, self.board_id)
        # Join first, then read what was missed: a message sent in between arrives twice
        # (clients drop repeated seqs) rather than never.
        await self.channel_layer.group_add(self.group, self.channel_name)
        seq, missed = await sync_to_async(board_catch_up)(
            schema=opened.schema, board_id=self.board_id, since=self._since()
        )
        hello = {"seq": None, "type": "hello", "data": {"seq": seq, "viewers": opened.viewers}}
        await self.send(text_data=json.dumps(hello))
        if missed is None:
            await self.send(text_data=json.dumps({"seq": None, "type": "resync", "data": {"seq": seq}}))
        else:
            for text in missed:
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
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await database_sync_to_async(board_close)(
            tenant_id=self.tenant_id, board_id=self.board_id, channel_name=self.channel_name
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The board is read-only over the socket: changes go through the HTTP API.
        if text_data == "ping":
            await self.send(text_data='{"seq": null, "type": "pong", "data": {}}')

    async def board_message(self, event: dict) -> None:
        await self.send(text_data=event["text"])
