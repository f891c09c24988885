"""FastAPI dependencies as Annotated aliases; the objects live on the app for its lifespan."""

from typing import Annotated

import aiohttp
from fastapi import Depends
from redis.asyncio import Redis
from starlette.requests import HTTPConnection

from gateway.auth import JwksCache
from gateway.config import GatewaySettings
from gateway.health import ServicesReadiness
from gateway.ratelimit import RateLimiter
from gateway.tenant_events import TenantEventSubscriber
from gateway.tenants import TenantDirectory


def _settings(conn: HTTPConnection) -> GatewaySettings:
    return conn.app.state.settings


def _http_client(conn: HTTPConnection) -> aiohttp.ClientSession:
    return conn.app.state.http_client


def _redis(conn: HTTPConnection) -> Redis:
    return conn.app.state.redis


def _tenants(conn: HTTPConnection) -> TenantDirectory:
    return conn.app.state.tenants


def _tenant_events(conn: HTTPConnection) -> TenantEventSubscriber:
    return conn.app.state.tenant_events


def _jwks(conn: HTTPConnection) -> JwksCache:
    return conn.app.state.jwks


def _limiter(conn: HTTPConnection) -> RateLimiter:
    return conn.app.state.limiter


def _readiness(conn: HTTPConnection) -> ServicesReadiness:
    return conn.app.state.readiness


def request_id(conn: HTTPConnection) -> str:
    return conn.state.request_id


Settings = Annotated[GatewaySettings, Depends(_settings)]
HttpClient = Annotated[aiohttp.ClientSession, Depends(_http_client)]
RedisClient = Annotated[Redis, Depends(_redis)]
Tenants = Annotated[TenantDirectory, Depends(_tenants)]
TenantEvents = Annotated[TenantEventSubscriber, Depends(_tenant_events)]
Jwks = Annotated[JwksCache, Depends(_jwks)]
Limiter = Annotated[RateLimiter, Depends(_limiter)]
RequestId = Annotated[str, Depends(request_id)]
Readiness = Annotated[ServicesReadiness, Depends(_readiness)]
