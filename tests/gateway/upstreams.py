"""Small real services the gateway is tested against: each one a Starlette app on its own port.

They answer like the Django services do at the paths the gateway cares about
(`/readyz`, `/openapi.json`, tenancy's `/api/tenants/<slug>`, identity's JWKS), and echo
everything else so a test can see exactly what the gateway forwarded.
"""

import asyncio
import hashlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


@dataclass
class UpstreamState:
    ready: bool = True
    readiness_checks: int = 0
    tenants: dict[str, dict] = field(default_factory=dict)
    tenant_lookups: dict[str, int] = field(default_factory=dict)
    jwks: dict = field(default_factory=lambda: {"keys": []})
    jwks_fetches: int = 0
    jwks_failures: int = 0  # how many of the next JWKS fetches answer 503
    openapi: dict | None = None
    first_chunk_seen: threading.Event = field(default_factory=threading.Event)
    websocket_close_codes: list[int | None] = field(default_factory=list)


def upstream_app(service: str, state: UpstreamState) -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse(
            {
                "service": service,
                "method": request.method,
                "path": request.url.path,
                "raw_path": request.scope["raw_path"].decode(),
                "query": request.url.query,
                "headers": dict(request.headers.items()),
                "header_list": [[name.decode(), value.decode()] for name, value in request.scope["headers"]],
                "body_len": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "client_port": request.client.port if request.client else None,
            },
            headers={"X-Served-By": service},
        )

    async def readyz(request: Request) -> JSONResponse:
        state.readiness_checks += 1
        if state.ready:
            return JSONResponse({"status": "ok", "service": service, "checks": {"database": "ok"}})
        return JSONResponse(
            {"status": "unavailable", "service": service, "checks": {"database": "down"}}, status_code=503
        )

    async def openapi(request: Request) -> JSONResponse:
        if state.openapi is None:
            return JSONResponse({"detail": "no schema"}, status_code=404)
        return JSONResponse(state.openapi)

    async def tenant(request: Request) -> JSONResponse:
        slug = request.path_params["slug"]
        state.tenant_lookups[slug] = state.tenant_lookups.get(slug, 0) + 1
        if slug not in state.tenants:
            return JSONResponse({"error": {"code": "not_found", "message": "no tenant"}}, status_code=404)
        return JSONResponse(state.tenants[slug])

    async def jwks(request: Request) -> JSONResponse:
        state.jwks_fetches += 1
        if state.jwks_failures > 0:
            state.jwks_failures -= 1
            return JSONResponse({"error": "starting"}, status_code=503)
        return JSONResponse(state.jwks)

    async def upload(request: Request) -> JSONResponse:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            if chunk and not state.first_chunk_seen.is_set():
                state.first_chunk_seen.set()
            digest.update(chunk)
            size += len(chunk)
        return JSONResponse({"body_len": size, "body_sha256": digest.hexdigest()})

    async def download(request: Request) -> StreamingResponse:
        megabytes = int(request.query_params.get("mb", "1"))

        async def chunks():
            block = bytes(range(256)) * 4096  # 1 MiB
            for _ in range(megabytes):
                yield block

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    async def drip(request: Request) -> StreamingResponse:
        async def chunks():
            yield b"first;"
            await asyncio.sleep(1.5)
            yield b"second"

        return StreamingResponse(chunks(), media_type="text/plain")

    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(float(request.query_params.get("s", "3")))
        return JSONResponse({"slept": True})

    async def cookies(request: Request) -> Response:
        response = JSONResponse({"ok": True})
        response.set_cookie("first", "1")
        response.set_cookie("second", "2")
        return response

    async def websocket_echo(websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        if websocket.url.path.endswith("/refuse/"):
            await websocket.close(code=1008)
            return
        await websocket.accept(subprotocol="bearer" if "bearer" in offered else None)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    state.websocket_close_codes.append(message.get("code"))
                    return
                text = message.get("text")
                if text is None:
                    await websocket.send_bytes(message["bytes"])
                elif text == "whoami":
                    await websocket.send_json(
                        {
                            "service": service,
                            "path": websocket.url.path,
                            "query": websocket.url.query,
                            "subprotocols": offered,
                            "headers": dict(websocket.headers.items()),
                        }
                    )
                elif text.startswith("close:"):
                    await websocket.close(code=int(text.split(":")[1]), reason="bye")
                    return
                else:
                    await websocket.send_text(f"echo:{text}")
        except WebSocketDisconnect:
            return

    return Starlette(
        routes=[
            Route("/readyz", readyz),
            Route("/openapi.json", openapi),
            Route("/api/tenants/{slug}", tenant, methods=["GET"]),
            Route("/.well-known/jwks.json", jwks),
            Route("/api/tasks/upload", upload, methods=["POST"]),
            Route("/api/tasks/download", download),
            Route("/api/tasks/drip", drip),
            Route("/api/tasks/slow", slow),
            Route("/api/tasks/cookies", cookies),
            WebSocketRoute("/ws/{rest:path}", websocket_echo),
            Route("/{rest:path}", echo, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        ]
    )


@contextmanager
def broken_server(answer: bytes) -> Iterator[str]:
    """A TCP server that reads a request and answers `answer` (b"": closes at once); yields its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    if answer:
                        conn.sendall(answer)
                except OSError:
                    pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
