"""The passes of a shared task's read-only view (docs/projects.md, "Shared tasks").

The shortener answers a granted visit of a task link (password, limits and bots checked there)
with a 302 to `/shared/<code>?grant=<token>`: a grant it signed with SHARE_GRANT_SECRET, good for
GRANT_MAX_AGE seconds, naming the link's code, tenant and task. The shared view checks it (its code
is the path's, its tenant the request's), spends it (a grant opens one browser, once: a visit
counted once is not a link anyone can pass on for two minutes), and gives the browser a view pass
of its own instead: a cookie scoped to the page and its WebSocket, good for VIEW_MAX_AGE seconds.

Pure functions of signing and Redis, no database: whether the link has ended since is the tenant's
(selectors.shared_link_ended), asked by the page and the socket on every use.
"""

import hashlib
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing

GRANT_SALT = "shortener.share-grant"
GRANT_MAX_AGE = 120
VIEW_SALT = "projects.shared-view"
VIEW_MAX_AGE = 30 * 60
# The pass travels as two cookies of one value, each scoped to its one path (a response carries
# one cookie per name): the page's, and its WebSocket's.
COOKIE = "shared_view"
SOCKET_COOKIE = "shared_view_ws"
# A link's code (the shortener's base62 codes and its validated aliases).
CODE_LENGTH_MAX = 64
CODE_PATTERN = rf"[A-Za-z0-9_-]{{1,{CODE_LENGTH_MAX}}}"
_SPENT_PREFIX = "projects:share:grant-spent"


def ends_views(reason: str | None) -> bool:
    """Whether a link that ended (URLExpired) for `reason` shuts its views: its passes refused, its
    open views closed. Every reason does but "used_up": the shortener ends a link in the very visit
    that reaches its limit, so the last visitor's grant is on its way as the event is. A used-up
    link takes no more visitors; the passes it gave run out by themselves (VIEW_MAX_AGE)."""
    return reason is not None and reason != "used_up"


class PassRefused(Exception):
    """A grant or a view pass that does not open this view; `reason` says why, for the page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "missing", "expired", "invalid" or "spent"


@dataclass(frozen=True)
class SharePass:
    code: str
    tenant_id: str
    task_id: int
    expires_at: float  # epoch seconds


def _payload(data: object, *, code: str, tenant_id: str) -> tuple[str, str, int]:
    if not isinstance(data, dict):
        raise PassRefused("invalid")
    found_code, tenant, task = data.get("code"), data.get("tenant"), data.get("task")
    if not isinstance(found_code, str) or not isinstance(tenant, str) or isinstance(task, bool):
        raise PassRefused("invalid")
    try:
        task_id = int(task)  # the shortener's task ids travel as numbers or strings
    except (TypeError, ValueError):
        raise PassRefused("invalid") from None
    # Another link's grant, or a grant of this code in another tenant: not this view's.
    if found_code != code or tenant.lower() != tenant_id.lower():
        raise PassRefused("invalid")
    return found_code, tenant_id, task_id


def grant_check(token: str, *, code: str, tenant_id: str) -> SharePass:
    """The shortener's grant for `code` in `tenant_id`, or PassRefused."""
    if not token:
        raise PassRefused("missing")
    try:
        data = signing.loads(token, key=settings.SHARE_GRANT_SECRET, salt=GRANT_SALT, max_age=GRANT_MAX_AGE)
    except signing.SignatureExpired:
        raise PassRefused("expired") from None
    except signing.BadSignature:
        raise PassRefused("invalid") from None
    code, tenant_id, task_id = _payload(data, code=code, tenant_id=tenant_id)
    return SharePass(code=code, tenant_id=tenant_id, task_id=task_id, expires_at=time.time() + VIEW_MAX_AGE)


def grant_spend(token: str, *, redis_client: object) -> bool:
    """True the first time a grant is spent; False when it was already (a second browser, a replay)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    return bool(redis_client.set(f"{_SPENT_PREFIX}:{digest}", "1", nx=True, ex=GRANT_MAX_AGE + 10))


def view_token(share: SharePass) -> str:
    data = {"code": share.code, "tenant": share.tenant_id, "task": share.task_id, "until": int(share.expires_at)}
    return signing.dumps(data, salt=VIEW_SALT)


def view_check(token: str | None, *, code: str, tenant_id: str) -> SharePass:
    """The view pass a cookie carries for `code` in `tenant_id`, or PassRefused."""
    if not token:
        raise PassRefused("missing")
    try:
        data = signing.loads(token, salt=VIEW_SALT, max_age=VIEW_MAX_AGE + 5)
    except signing.SignatureExpired:
        raise PassRefused("expired") from None
    except signing.BadSignature:
        raise PassRefused("invalid") from None
    code, tenant_id, task_id = _payload(data, code=code, tenant_id=tenant_id)
    until = data.get("until")
    if not isinstance(until, int) or until <= time.time():
        raise PassRefused("expired")
    return SharePass(code=code, tenant_id=tenant_id, task_id=task_id, expires_at=float(until))


def digest(html: str) -> str:
    """A shared view's rendering, in short: the page and its socket compare them (nothing changed)."""
    return hashlib.sha256(html.encode()).hexdigest()[:16]


def page_path(code: str) -> str:
    return f"/shared/{code}"


def socket_path(code: str) -> str:
    return f"/ws/shared/{code}/"


def socket_credentials(scope: dict) -> tuple[str, str | None]:
    """(tenant id, view pass) of a shared view's WebSocket handshake, or PassRefused: X-Tenant-ID
    from the gateway, the cookie, and an Origin of this very host (a browser sends the cookie with
    a cross-site handshake too: another site must not open the view with it)."""
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}
    try:
        tenant_id = str(uuid.UUID(headers.get("x-tenant-id", "")))
    except ValueError:
        raise PassRefused("invalid") from None
    host = headers.get("x-forwarded-host") or headers.get("host", "")
    origin = headers.get("origin", "")
    if not origin or not host or urlsplit(origin).netloc.lower() != host.lower():
        raise PassRefused("invalid")
    pairs = (part.strip().partition("=") for part in headers.get("cookie", "").split(";"))
    return tenant_id, next((value for name, _, value in pairs if name == SOCKET_COOKIE and value), None)


def cookie_paths(code: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """(cookie name, path) of the page's and the socket's copy of the pass."""
    return (COOKIE, page_path(code)), (SOCKET_COOKIE, socket_path(code))
