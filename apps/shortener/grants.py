"""Signed tokens: the share grant a task link's visit hands to the projects service's shared
view, and the cookie that unlocks one protected link for a few minutes after its password."""

import hashlib

from django.conf import settings
from django.core import signing

from apps.shortener.models import Link

GRANT_SALT = "shortener.share-grant"
UNLOCK_SALT = "shortener.unlock"
UNLOCK_SECONDS = 600


def share_grant(link: Link) -> str:
    """Read by apps/projects (the /shared/<code> view), valid 120 s there."""
    payload = {"code": link.code, "tenant": link.tenant_id, "task": link.task_id}
    return signing.dumps(payload, key=settings.SHARE_GRANT_SECRET, salt=GRANT_SALT, compress=False)


def unlock_cookie_name(code: str) -> str:
    return f"slu_{code}"


def _password_fingerprint(link: Link) -> str:
    # A new password (or none) makes every cookie of the old one worthless.
    return hashlib.sha256(link.password_hash.encode()).hexdigest()[:16]


def unlock_token(link: Link) -> str:
    return signing.dumps({"c": link.code, "p": _password_fingerprint(link)}, salt=UNLOCK_SALT, compress=False)


def unlock_valid(link: Link, token: str | None) -> bool:
    if not token:
        return False
    try:
        payload = signing.loads(token, salt=UNLOCK_SALT, max_age=UNLOCK_SECONDS)
    except signing.BadSignature:
        return False
    return (
        isinstance(payload, dict) and payload.get("c") == link.code and payload.get("p") == _password_fingerprint(link)
    )
