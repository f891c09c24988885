"""What every page's top bar needs (templates/_topbar.html), from the verified token a page view
put on the request (`request.claims`), the person it looked up (`request.topbar_person`) and the
organization's name (`request.topbar_org`)."""

from django.http import HttpRequest

ADMIN_ROLES = frozenset({"owner", "admin"})
NOBODY = {"name": "", "initials": "?", "palette": 12}


def topbar(request: HttpRequest) -> dict:
    claims = getattr(request, "claims", None)
    if claims is None:
        return {}
    return {
        "topbar": {
            "person": getattr(request, "topbar_person", None) or NOBODY,
            # The gateway names the tenant it resolved from the host.
            "org": request.headers.get("X-Tenant-Slug", ""),
            "org_name": getattr(request, "topbar_org", "") or request.headers.get("X-Tenant-Slug", ""),
            "host": request.get_host(),
            "is_admin": bool(ADMIN_ROLES.intersection(claims.roles)),
        }
    }
