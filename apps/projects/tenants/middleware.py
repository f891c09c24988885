"""Points each request at its tenant's schema or database.

The gateway sends `X-Tenant-ID` (having stripped any the client sent); without it the
Host names the tenant (`acme.localhost`), and a host that names none is the apex, served
from the public schema.
"""

from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from psycopg_pool import PoolTimeout

from apps.common.dbpool import busy_response, pool_exhausted
from apps.common.errors import error_response
from apps.projects.tenants import selectors
from apps.projects.tenants.context import tenant_activate
from apps.projects.tenants.models import ProvisioningStatus


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant_activate(None)  # the registry lives in public; a reused thread may hold another tenant
        tenant_header = request.headers.get("X-Tenant-ID")
        try:
            if tenant_header:
                tenant = selectors.tenant_get_for_request(tenant_id=tenant_header)
                if tenant is None:
                    return error_response(request, 404, "tenant_not_found", "No tenant with this X-Tenant-ID")
            else:
                tenant = selectors.tenant_get_for_host(host=request.get_host())
            if tenant is not None and tenant.status != ProvisioningStatus.ACTIVE:
                return error_response(
                    request, 503, "tenant_not_ready", f"The tenant is {tenant.status}, not active yet"
                )
            request.tenant = tenant
            tenant_activate(tenant)
        except (DatabaseError, PoolTimeout) as exc:  # a middleware's error never reaches process_exception
            if pool_exhausted(exc):
                tenant_activate(None)
                return busy_response(request)
            raise
        try:
            return self.get_response(request)
        finally:
            tenant_activate(None)
