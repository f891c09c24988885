import base64
import hashlib
import re
import time
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.requests import Request

from gateway.deps import HttpClient, Settings
from gateway.openapi import openapi_merge, service_schemas_fetch

SWAGGER_ASSETS = Path(__file__).resolve().parents[2] / "static" / "vendor" / "swagger-ui"
SWAGGER_ASSETS_URL = "/api/docs/assets"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)

router = APIRouter()


@router.get("/api/openapi.json")
async def merged_openapi(request: Request, client: HttpClient, settings: Settings) -> JSONResponse:
    # Rebuilding on every hit would fan out to five services; a short cache is plenty for docs.
    cache = request.app.state.openapi_cache
    now = time.monotonic()
    if cache.get("expires", 0) <= now:
        documents = await service_schemas_fetch(client=client, settings=settings)
        cache["document"] = openapi_merge(documents)
        missing = cache["document"]["info"]["x-missing-services"]
        # A partial document is not cached, so a service coming back shows up at once.
        cache["expires"] = now + (settings.openapi_cache_seconds if not missing else 0)
    return JSONResponse(cache["document"])


@router.get("/api/docs", response_class=HTMLResponse)
async def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url="/api/openapi.json",
        title="Kanban platform API",
        swagger_js_url=f"{SWAGGER_ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER_ASSETS_URL}/favicon-32x32.png",
    )
    page.headers["Content-Security-Policy"] = swagger_policy(bytes(page.body).decode())
    return page


def swagger_policy(html: str) -> str:
    """A policy that runs Swagger UI's own bundle and its one inline start-up script, by hash, and nothing else."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
