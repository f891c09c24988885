"""Everything that is not the gateway's own endpoint goes to a service, by the route table."""

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from gateway.admission import request_admit
from gateway.deps import HttpClient, Jwks, Limiter, RequestId, Settings, Tenants
from gateway.errors import GatewayError
from gateway.proxy import forwarded_headers, http_forward, websocket_deny, websocket_forward

router = APIRouter()

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@router.api_route("/{path:path}", methods=METHODS, include_in_schema=False)
async def forward_http(
    request: Request,
    client: HttpClient,
    settings: Settings,
    tenants: Tenants,
    jwks: Jwks,
    limiter: Limiter,
    request_id: RequestId,
) -> Response:
    admission = await request_admit(
        request, method=request.method, settings=settings, tenants=tenants, jwks=jwks, limiter=limiter
    )
    headers = forwarded_headers(
        request.scope["headers"],
        client_ip=request.client.host if request.client else None,
        scheme=request.url.scheme,
        request_id=request_id,
        tenant=(admission.tenant.id, admission.tenant.slug) if admission.tenant else None,
    )
    return await http_forward(request, client=client, settings=settings, service=admission.service, headers=headers)


@router.websocket("/{path:path}")
async def forward_websocket(
    websocket: WebSocket,
    settings: Settings,
    tenants: Tenants,
    jwks: Jwks,
    limiter: Limiter,
    request_id: RequestId,
) -> None:
    try:
        admission = await request_admit(
            websocket, method="GET", settings=settings, tenants=tenants, jwks=jwks, limiter=limiter
        )
    except GatewayError as error:
        await websocket_deny(websocket, error, request_id=request_id)
        return
    headers = forwarded_headers(
        websocket.scope["headers"],
        client_ip=websocket.client.host if websocket.client else None,
        scheme="https" if websocket.url.scheme == "wss" else "http",
        request_id=request_id,
        tenant=(admission.tenant.id, admission.tenant.slug) if admission.tenant else None,
    )
    await websocket_forward(
        websocket, settings=settings, service=admission.service, headers=headers, request_id=request_id
    )
