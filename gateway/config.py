"""Gateway settings: one pydantic-settings class, read from the environment.

Service URLs share their variable names with the Django settings (`IDENTITY_URL`, ...),
so one environment configures the whole stack. A malformed value fails at start-up.
"""

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("identity", "tenancy", "projects", "shortener", "analytics")


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    identity_url: str = Field("http://127.0.0.1:8001", validation_alias=_env("IDENTITY_URL"))
    tenancy_url: str = Field("http://127.0.0.1:8002", validation_alias=_env("TENANCY_URL"))
    projects_url: str = Field("http://127.0.0.1:8003", validation_alias=_env("PROJECTS_URL"))
    projects_ws_url: str = Field("http://127.0.0.1:8006", validation_alias=_env("PROJECTS_WS_URL"))
    shortener_url: str = Field("http://127.0.0.1:8004", validation_alias=_env("SHORTENER_URL"))
    analytics_url: str = Field("http://127.0.0.1:8005", validation_alias=_env("ANALYTICS_URL"))

    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=_env("GATEWAY_REDIS_URL", "REDIS_URL"))
    # Namespaces every Redis key the gateway writes, so two stacks (or test runs) can share a server.
    redis_key_prefix: str = Field("gw", validation_alias=_env("GATEWAY_REDIS_PREFIX"))
    base_domain: str = Field("localhost", validation_alias=_env("BASE_DOMAIN"))

    upstream_timeout: float = Field(10.0, gt=0, validation_alias=_env("GATEWAY_UPSTREAM_TIMEOUT"))
    connect_timeout: float = Field(2.0, gt=0, validation_alias=_env("GATEWAY_CONNECT_TIMEOUT"))
    health_timeout: float = Field(2.0, gt=0, validation_alias=_env("GATEWAY_HEALTH_TIMEOUT"))
    # How long one answer of the services' readiness serves /healthz (gateway/health.py); 0 asks every time.
    health_cache_seconds: float = Field(1.0, ge=0, validation_alias=_env("GATEWAY_HEALTH_CACHE_SECONDS"))
    max_connections: int = Field(200, gt=0, validation_alias=_env("GATEWAY_MAX_CONNECTIONS"))
    websocket_max_message: int = Field(2**20, gt=0, validation_alias=_env("GATEWAY_WS_MAX_MESSAGE"))

    # Slow clients (issue 8, item 3): the gateway reads the whole request before any service sees
    # it, within these bounds. Headers: from the connection (or the previous response) to the end
    # of the headers (enforced by gateway.server's protocol). Body: `body_timeout` seconds plus
    # one second per `body_min_rate` bytes declared or received, whichever is more.
    header_timeout: float = Field(10.0, gt=0, validation_alias=_env("GATEWAY_HEADER_TIMEOUT"))
    body_timeout: float = Field(10.0, gt=0, validation_alias=_env("GATEWAY_BODY_TIMEOUT"))
    body_min_rate: int = Field(64 * 1024, gt=0, validation_alias=_env("GATEWAY_BODY_MIN_RATE"))
    # Per-route body limits (bytes): sign-in and signup are tiny; task attachments carry a file
    # (projects accepts PROJECTS_ATTACHMENT_MAX_BYTES, 10 MiB, plus the multipart envelope).
    body_limit_default: int = Field(1024 * 1024, gt=0, validation_alias=_env("GATEWAY_BODY_LIMIT"))
    body_limit_auth: int = Field(64 * 1024, gt=0, validation_alias=_env("GATEWAY_BODY_LIMIT_AUTH"))
    body_limit_upload: int = Field(11 * 1024 * 1024, gt=0, validation_alias=_env("GATEWAY_BODY_LIMIT_UPLOAD"))

    # Client IP (issue 8, item 6): the socket peer, unless it is one of these proxies (IPs or
    # CIDRs, comma-separated); only then is X-Forwarded-For believed. None by default.
    trusted_proxies: str = Field("", validation_alias=_env("GATEWAY_TRUSTED_PROXIES"))

    tenant_cache_ttl: int = Field(60, gt=0, validation_alias=_env("GATEWAY_TENANT_CACHE_TTL"))
    # Not-yet-active and unknown tenants change soon (provisioning finishes, signup lands): cache briefly.
    tenant_transient_ttl: int = Field(5, gt=0, validation_alias=_env("GATEWAY_TENANT_TRANSIENT_TTL"))
    tenant_local_ttl: float = Field(5.0, ge=0, validation_alias=_env("GATEWAY_TENANT_LOCAL_TTL"))
    tenant_retry_after: int = Field(5, gt=0, validation_alias=_env("GATEWAY_TENANT_RETRY_AFTER"))

    # Tenant events (docs/events.md) invalidate the tenant cache; the same variables as the Django services.
    events_broker_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672//", validation_alias=_env("EVENTS_BROKER_URL", "BROKER_URL")
    )
    events_exchange: str = Field("platform.events", min_length=1, validation_alias=_env("EVENTS_EXCHANGE"))
    # Set false to run without the subscriber; the cache TTLs alone then bound staleness.
    tenant_events_enabled: bool = Field(True, validation_alias=_env("GATEWAY_TENANT_EVENTS_ENABLED"))
    tenant_events_max_backoff: float = Field(30.0, gt=0, validation_alias=_env("GATEWAY_TENANT_EVENTS_MAX_BACKOFF"))

    jwt_issuer: str = Field("kanban-identity", validation_alias=_env("JWT_ISSUER"))
    jwt_audience: str = Field("kanban-platform", validation_alias=_env("JWT_AUDIENCE"))
    jwt_leeway: int = Field(10, ge=0, validation_alias=_env("GATEWAY_JWT_LEEWAY"))
    jwks_cache_ttl: int = Field(300, gt=0, validation_alias=_env("GATEWAY_JWKS_CACHE_TTL"))
    # An unknown `kid` refetches the JWKS at most this often, so forged kids cannot hammer identity.
    jwks_refetch_interval: float = Field(10.0, ge=0, validation_alias=_env("GATEWAY_JWKS_REFETCH_INTERVAL"))

    rate_limit_ip: str = Field("600/minute", validation_alias=_env("GATEWAY_RATE_LIMIT_IP"))
    rate_limit_user: str = Field("1200/minute", validation_alias=_env("GATEWAY_RATE_LIMIT_USER"))
    rate_limit_login: str = Field("10/minute", validation_alias=_env("GATEWAY_RATE_LIMIT_LOGIN"))
    rate_limit_signup: str = Field("5/minute", validation_alias=_env("GATEWAY_RATE_LIMIT_SIGNUP"))
    # The signup form's live slug check: a person typing makes one call per pause, not per key.
    rate_limit_availability: str = Field("60/minute", validation_alias=_env("GATEWAY_RATE_LIMIT_AVAILABILITY"))
    rate_limit_enabled: bool = Field(True, validation_alias=_env("GATEWAY_RATE_LIMIT_ENABLED"))

    # The edge redirect (gateway/shortlinks.py): cached short links answered here, each visit committed
    # to the shortener's visit inbox first. The inbox's database is the shortener's own, named as the
    # services name theirs (config/settings/base.py `database_for`) unless GATEWAY_VISITS_DATABASE_URL says.
    edge_redirects_enabled: bool = Field(True, validation_alias=_env("GATEWAY_EDGE_REDIRECTS"))
    visits_database_url: str = Field("", validation_alias=_env("GATEWAY_VISITS_DATABASE_URL"))
    postgres_url: str = Field("postgres://postgres@127.0.0.1:5432", validation_alias=_env("POSTGRES_URL"))
    db_name_prefix: str = Field("", validation_alias=_env("DB_NAME_PREFIX"))
    visits_timeout: float = Field(2.0, gt=0, validation_alias=_env("GATEWAY_VISITS_TIMEOUT"))

    openapi_cache_seconds: float = Field(30.0, ge=0, validation_alias=_env("GATEWAY_OPENAPI_CACHE_SECONDS"))
    log_level: str = Field("INFO", validation_alias=_env("GATEWAY_LOG_LEVEL"))

    def service_url(self, service: str) -> str:
        return getattr(self, f"{service}_url").rstrip("/")

    @property
    def visits_database(self) -> str:
        return self.visits_database_url or f"{self.postgres_url.rstrip('/')}/{self.db_name_prefix}shortener"

    @property
    def service_urls(self) -> dict[str, str]:
        return {service: self.service_url(service) for service in SERVICES}


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
