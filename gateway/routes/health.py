from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.deps import Readiness, RedisClient, Settings, TenantEvents
from gateway.health import redis_readiness

router = APIRouter()


@router.get("/healthz")
async def healthz(readiness: Readiness) -> JSONResponse:
    services = await readiness.states()
    failing = sorted(name for name, state in services.items() if state != "ok")
    if failing:
        return JSONResponse({"status": "degraded", "services": services, "failing": failing}, status_code=503)
    return JSONResponse({"status": "ok", "services": services})


@router.get("/readyz")
async def readyz(redis: RedisClient, settings: Settings, tenant_events: TenantEvents) -> JSONResponse:
    checks = {"redis": await redis_readiness(redis=redis, timeout=settings.health_timeout)}
    ready = all(state == "ok" for state in checks.values())
    return JSONResponse(
        {
            "status": "ok" if ready else "unavailable",
            "service": "gateway",
            "checks": checks,
            # Reported, not required: without events the tenant cache still expires by TTL.
            "tenant_events": tenant_events.state,
        },
        status_code=200 if ready else 503,
    )
