"""The gateway app. Run: `uvicorn gateway.main:app --port 8000` (or `--factory gateway.main:create_app`)."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.staticfiles import StaticFiles

from gateway.auth import JwksCache
from gateway.config import GatewaySettings, get_settings
from gateway.errors import GatewayError, error_body, error_response
from gateway.logging import logging_configure
from gateway.middleware import RequestContextMiddleware
from gateway.proxy import http_client_create
from gateway.ratelimit import RateLimiter
from gateway.routes import docs, forward, health
from gateway.tenant_events import TenantEventSubscriber
from gateway.tenants import TenantDirectory

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


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging_configure(level=settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http_client = http_client_create(settings=settings)
        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=0.5, socket_timeout=1.0)
        jwks = JwksCache(settings=settings, client=http_client)
        app.state.settings = settings
        app.state.http_client = http_client
        app.state.redis = redis
        app.state.jwks = jwks
        tenants = TenantDirectory(settings=settings, client=http_client, redis=redis)
        app.state.tenants = tenants
        tenant_events = TenantEventSubscriber(
            settings=settings, on_tenant_changed=tenants.invalidate, on_subscribed=tenants.local_cache_clear
        )
        app.state.tenant_events = tenant_events
        app.state.limiter = RateLimiter(settings=settings)
        app.state.openapi_cache = {}
        jwks.refresh_start()  # warm the keys without delaying start-up
        tenant_events.start()  # in the background: a broker outage must not keep the gateway down
        try:
            yield
        finally:
            await tenant_events.aclose()
            await jwks.aclose()
            await app.state.limiter.aclose()
            await http_client.aclose()
            await redis.aclose()

    app = FastAPI(
        title="Kanban platform gateway",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(RequestContextMiddleware)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)

    app.include_router(health.router)
    app.include_router(docs.router)
    app.mount(docs.SWAGGER_ASSETS_URL, StaticFiles(directory=docs.SWAGGER_ASSETS, check_dir=False), name="swagger")
    app.include_router(forward.router)  # last: it matches every path
    return app


app = create_app()
