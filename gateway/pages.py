"""What a browser gets when the gateway itself refuses a page: a short HTML page, not JSON.

The services answer a browser on a page path with an HTML error page (apps/common/errors.py);
the gateway's own refusals of the same paths (a rate limit on the signup form, an organization
still being set up, an unknown organization's host) must read the same way, or a person who
clicked a link meets raw JSON. API paths, scripts and anything that does not ask for HTML keep
the JSON error contract. The page carries its one style block by hash (CSP without
`unsafe-inline`) and no script; an organization being set up reloads itself after Retry-After.
"""

import base64
import hashlib
from html import escape

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse

from gateway.errors import GatewayError

# The same split as apps/common/errors.py: these are API paths, whatever the client accepts. Not
# `/s/`: people follow short links, so the gateway's own refusals of one (a rate limit, a malformed
# path) are pages for a browser, as the shortener's are.
API_PREFIXES = ("/api/", "/.well-known/", "/internal/", "/ws/")
API_PATHS = frozenset({"/api", "/ws", "/openapi.json", "/healthz", "/readyz"})

TITLES = {
    400: "Bad request",
    401: "Sign in first",
    403: "Not allowed",
    404: "Page not found",
    408: "Too slow",
    413: "Too large",
    414: "Address too long",
    429: "Too many requests",
    502: "Something went wrong",
    503: "Not available right now",
    504: "Something went wrong",
}
# What the person can do, for the refusals someone meets by following a link or submitting a form.
ADVICE = {
    "tenant_provisioning": "This page reloads itself when the organization should be ready.",
    "tenant_not_found": "Check the address: no organization has signed up under it.",
    "rate_limited": "Wait a moment, then go back and try again.",
    "not_found": "There is nothing at this address. It may have moved, or the link may be mistyped.",
}

_STYLE = (
    "body{margin:0;min-height:100vh;display:grid;place-items:center;padding:1rem;background:#f4f5f7;"
    "color:#172b4d;font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;line-height:1.5}"
    "main{max-width:420px;background:#fff;border-radius:12px;padding:2rem;box-shadow:0 8px 28px rgba(9,30,66,.12)}"
    ".status{font-size:2.5rem;font-weight:700;color:#5e6c84;margin:0}h1{font-size:1.35rem;margin:.25rem 0 1rem}"
    ".hint{color:#5e6c84;font-size:.85rem}code{background:#f4f5f7;padding:0 .25em;border-radius:3px}a{color:#0c66e4}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def wants_page(*, path: str, headers: Headers) -> bool:
    """A browser on a page path: it names text/html and does not prefer JSON."""
    if path in API_PATHS or path.startswith(API_PREFIXES):
        return False
    accept = headers.get("accept", "").lower()
    return "text/html" in accept and "json" not in accept.split(",")[0]


def error_page(error: GatewayError, *, request_id: str | None) -> HTMLResponse:
    title = TITLES.get(error.status) or ("Something went wrong" if error.status >= 500 else "Bad request")
    advice = ADVICE.get(error.code, "")
    refresh = ""
    retry_after = error.headers.get("Retry-After", "")
    if error.code == "tenant_provisioning" and retry_after.isdigit():
        refresh = f'<meta http-equiv="refresh" content="{int(retry_after)}">'
    reference = f'<p class="hint">If you ask for help, quote request <code>{escape(request_id or "")}</code>.</p>'
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · Kanban</title>{refresh}<style>{_STYLE}</style></head><body><main>"
        f'<p class="status">{error.status}</p><h1>{escape(title)}</h1><p>{escape(error.message.rstrip("."))}.</p>'
        + (f"<p>{escape(advice)}</p>" if advice else "")
        + (reference if request_id else "")
        + "</main></body></html>"
    )
    headers = {**error.headers, "Content-Security-Policy": POLICY}
    return HTMLResponse(html, status_code=error.status, headers=headers)
