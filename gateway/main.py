"""The gateway app. Run: `uvicorn gateway.main:app --http gateway.server:HttpProtocol --no-proxy-headers`
(platform/processes.toml), or `--factory gateway.main:create_app`.

The proxy path is plain ASGI (no framework routing or dependency injection on it: that layer
cost half of the throughput, docs/benchmarks.md); FastAPI serves only the gateway's own
endpoints (health, the merged OpenAPI, Swagger UI) and runs the lifespan.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.admission import Admission, Gate
from gateway.auth import JwksCache, VerifiedTokens
from gateway.body import ClientDisconnected, body_limit, body_read, declared_length
from gateway.clientip import ClientIpResolver, trusted_networks_parse
from gateway.config import GatewaySettings, get_settings
from gateway.errors import GatewayError, error_body, error_response
from gateway.health import ServicesReadiness
from gateway.logging import logging_configure
from gateway.middleware import RequestContextMiddleware
from gateway.pages import error_page, wants_page
from gateway.paths import path_normalize, target_check
from gateway.proxy import (
    UpstreamBrokeOff,
    forwarded_headers,
    http_forward,
    http_session_create,
    websocket_deny,
    websocket_forward,
)
from gateway.ratelimit import RateLimiter
from gateway.redis_pipe import RedisPipe
from gateway.routes import docs, health
from gateway.shortlinks import EdgeRedirects
from gateway.tenant_events import TenantEventSubscriber
from gateway.tenants import TenantDirectory
from gateway.upstream import UpstreamPool
from gateway.visit_inbox import VisitInbox
from gateway.visitors import Visitors, visitors_warm

logger = logging.getLogger(__name__)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _gateway_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, GatewayError)
    return error_response(error, request_id=_request_id(request))


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(error.detail), request_id=_request_id(request)),
        status_code=error.status_code,
        headers=error.headers,
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return JSONResponse(
        error_body("invalid_request", "The request is malformed", request_id=_request_id(request)), status_code=400
    )


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unhandled error in the gateway", exc_info=error)
    return JSONResponse(
        error_body("internal_error", "The gateway failed to handle this request", request_id=_request_id(request)),
        status_code=500,
    )


# The gateway's own endpoints (FastAPI); every other path is proxied.
_OWN_PATHS = frozenset({"/healthz", "/readyz", "/api/openapi.json", "/api/docs", "/api/docs/"})
_OWN_PREFIXES = (docs.SWAGGER_ASSETS_URL + "/",)
# The body is forwarded whole, framed by the gateway (gateway/body.py).
_BODY_FRAMING = frozenset({"content-length", "expect"})


def _own_endpoint(path: str) -> bool:
    return path in _OWN_PATHS or path.startswith(_OWN_PREFIXES)


def _host_single(headers: list[tuple[bytes, bytes]]) -> None:
    # Two Host headers: the gateway, the tenant lookup and the service could each pick another.
    if sum(1 for name, _ in headers if name == b"host") > 1:
        raise GatewayError(400, "invalid_host", "The request has more than one Host header")


def _site_create(settings: GatewaySettings) -> FastAPI:
    """The FastAPI app: the gateway's own endpoints, and the lifespan that owns every client."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        session = http_session_create(settings=settings)
        pool = UpstreamPool(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.upstream_timeout,
            max_connections=settings.max_connections,
        )
        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=0.5, socket_timeout=1.0)
        jwks = JwksCache(settings=settings, client=session)
        tenants = TenantDirectory(settings=settings, client=session, redis=redis)
        tenant_events = TenantEventSubscriber(
            settings=settings, on_tenant_changed=tenants.invalidate, on_subscribed=tenants.local_cache_clear
        )
        # The hot path's one Redis call per request goes over its own pipelined connection.
        hot_redis = RedisPipe(settings.redis_url, timeout=0.5, connect_timeout=0.5)
        # Short links: the visitor facts of every /s/ request, and the cached ones answered here.
        visitors_warm()
        visitors = Visitors(hot_redis)
        limiter = RateLimiter(settings=settings, redis=hot_redis, salts=visitors.salts)
        inbox = VisitInbox(settings.visits_database, timeout=settings.visits_timeout)
        app.state.visitors = visitors
        app.state.edge_redirects = EdgeRedirects(redis=hot_redis, inbox=inbox, enabled=settings.edge_redirects_enabled)
        app.state.visit_inbox = inbox
        app.state.settings = settings
        app.state.http_client = session
        app.state.upstream_pool = pool
        app.state.redis = redis
        app.state.jwks = jwks
        app.state.tenants = tenants
        app.state.tenant_events = tenant_events
        app.state.limiter = limiter
        app.state.gate = Gate(settings=settings, tenants=tenants, jwks=jwks, limiter=limiter, verified=VerifiedTokens())
        app.state.openapi_cache = {}
        app.state.readiness = ServicesReadiness(client=session, settings=settings)
        jwks.refresh_start()  # warm the keys without delaying start-up
        tenant_events.start()  # in the background: a broker outage must not keep the gateway down
        try:
            yield
        finally:
            await tenant_events.aclose()
            await jwks.aclose()
            await session.close()
            pool.close()
            await inbox.aclose()
            await hot_redis.aclose()
            await redis.aclose()

    site = FastAPI(title="Kanban platform gateway", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    site.state.settings = settings
    site.add_exception_handler(GatewayError, _gateway_error)
    site.add_exception_handler(StarletteHTTPException, _http_error)
    site.add_exception_handler(RequestValidationError, _validation_error)
    site.add_exception_handler(Exception, _unexpected_error)
    site.include_router(health.router)
    site.include_router(docs.router)
    site.mount(docs.SWAGGER_ASSETS_URL, StaticFiles(directory=docs.SWAGGER_ASSETS, check_dir=False), name="swagger")
    return site


class GatewayApp:
    """The ASGI app uvicorn runs: request id and access log, one path, one client IP, then the
    gateway's own endpoints or the proxy."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.site = _site_create(settings)
        self.state = self.site.state
        self._client_ip = ClientIpResolver(trusted_networks_parse(settings.trusted_proxies))
        self._asgi = RequestContextMiddleware(self._dispatch)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.site(scope, receive, send)
            return
        await self._asgi(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = scope["state"]["request_id"]
        try:
            path = path_normalize(scope.get("raw_path") or scope["path"].encode("utf-8"))
            target_check(path, scope["query_string"])
            _host_single(scope["headers"])
        except GatewayError as error:
            await self._refuse(scope, receive, send, error, request_id)
            return
        # Everything after this point (FastAPI included) sees the one normalized path.
        scope["raw_path"] = path.encode("ascii")
        scope["path"] = unquote(path)
        if _own_endpoint(path):
            await self.site(scope, receive, send)
        elif scope["type"] == "http":
            await self._proxy_http(scope, receive, send, path, request_id)
        else:
            await self._proxy_websocket(scope, receive, send, path, request_id)

    def _scheme(self, scope: Scope) -> str:
        """http or https, as the client used it: a trusted proxy that terminated TLS says so."""
        client = scope.get("client")
        if client and self._client_ip.trusted(client[0]):
            for name, value in scope["headers"]:
                if name == b"x-forwarded-proto" and value in (b"http", b"https"):
                    return value.decode()
        secure = scope.get("scheme") in ("https", "wss")
        return "https" if secure else "http"

    def _forwarded(
        self,
        scope: Scope,
        admission: Admission,
        *,
        client_ip: str,
        request_id: str,
        drop: frozenset[str] = frozenset(),
    ) -> list[tuple[str, str]]:
        tenant = (admission.tenant.id, admission.tenant.slug) if admission.tenant else None
        return forwarded_headers(
            scope["headers"],
            client_ip=client_ip,
            scheme=self._scheme(scope),
            request_id=request_id,
            tenant=tenant,
            drop=drop,
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, error: GatewayError, request_id: str) -> None:
        if scope["type"] == "websocket":
            await websocket_deny(WebSocket(scope, receive, send), error, request_id=request_id)
            return
        # A browser on a page path reads a page; an API client (or a redirect) gets the JSON contract.
        if error.status >= 400 and wants_page(path=scope["path"], headers=Headers(scope=scope)):
            await error_page(error, request_id=request_id)(scope, receive, send)
        else:
            await error_response(error, request_id=request_id)(scope, receive, send)

    async def _proxy_http(self, scope: Scope, receive: Receive, send: Send, path: str, request_id: str) -> None:
        settings = self.settings
        try:
            has_body, declared = declared_length(scope["headers"])
            limit = body_limit(path, settings) if has_body else 0
            if declared is not None and declared > limit:
                await body_read(receive, limit=limit, declared=declared, settings=settings)  # raises 413
            client = scope.get("client")
            client_ip = self._client_ip.resolve(client[0] if client else None, scope["headers"])
            request_headers = Headers(scope=scope)
            admission = await self.state.gate.admit(
                method=scope["method"],
                path=path,
                query=scope["query_string"].decode("latin-1"),
                headers=request_headers,
                client_ip=client_ip,
                state=scope["state"],
            )
            body = await body_read(receive, limit=limit, declared=declared, settings=settings) if has_body else None
            visitor: list[tuple[str, str]] = []
            if path.startswith("/s/") and await self._short_link(
                scope, send, path, request_headers, client_ip, visitor, has_body=has_body
            ):
                return
            headers = self._forwarded(scope, admission, client_ip=client_ip, request_id=request_id, drop=_BODY_FRAMING)
            headers += visitor
            await http_forward(
                send,
                pool=self.state.upstream_pool,
                session=self.state.http_client,
                settings=settings,
                method=scope["method"],
                service=admission.service,
                path=path,
                query_string=scope["query_string"],
                headers=headers,
                body=body,
            )
        except GatewayError as error:
            await self._refuse(scope, receive, send, error, request_id)
        except (ClientDisconnected, UpstreamBrokeOff):
            return  # nobody to answer, or the answer was cut: uvicorn closes the connection
        except Exception as error:
            if scope["state"].get("response_started"):  # set by RequestContextMiddleware
                raise
            logger.exception("unhandled error in the gateway", exc_info=error)
            response = JSONResponse(
                error_body("internal_error", "The gateway failed to handle this request", request_id=request_id),
                status_code=500,
            )
            await response(scope, receive, send)

    async def _short_link(
        self,
        scope: Scope,
        send: Send,
        path: str,
        request_headers: Headers,
        client_ip: str,
        forwarded: list[tuple[str, str]],
        *,
        has_body: bool,
    ) -> bool:
        """A short link's visit: answered here when its link is cached and its visit committed
        (True), else `forwarded` gets the visitor facts the shortener records (False)."""
        user_agent = request_headers.get("user-agent")
        facts = await self.state.visitors.facts(client_ip=client_ip, user_agent=user_agent or "")
        if not has_body:
            answer = await self.state.edge_redirects.answer(
                method=scope["method"],
                path=path,
                facts=facts,
                referrer=request_headers.get("referer"),
                user_agent=user_agent,
            )
            if answer is not None:
                scope["state"]["service"] = "edge"
                await send({"type": "http.response.start", "status": 302, "headers": answer})
                await send({"type": "http.response.body", "body": b""})
                return True
        forwarded += facts.headers()
        return False

    async def _proxy_websocket(self, scope: Scope, receive: Receive, send: Send, path: str, request_id: str) -> None:
        websocket = WebSocket(scope, receive, send)
        client = scope.get("client")
        client_ip = self._client_ip.resolve(client[0] if client else None, scope["headers"])
        try:
            admission = await self.state.gate.admit(
                method="GET",
                path=path,
                query=scope["query_string"].decode("latin-1"),
                headers=Headers(scope=scope),
                client_ip=client_ip,
                state=scope["state"],
                subprotocols=list(scope.get("subprotocols") or []),
            )
        except GatewayError as error:
            await websocket_deny(websocket, error, request_id=request_id)
            return
        headers = self._forwarded(scope, admission, client_ip=client_ip, request_id=request_id)
        await websocket_forward(
            websocket,
            settings=self.settings,
            service=admission.service,
            path=path,
            headers=headers,
            request_id=request_id,
        )


def create_app(settings: GatewaySettings | None = None) -> GatewayApp:
    settings = settings or get_settings()
    logging_configure(level=settings.log_level)
    return GatewayApp(settings)


app = create_app()
