"""What a service may believe about the HTTP client behind the gateway."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _ip_or_none(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str:
    """The client's IP: the gateway's one X-Forwarded-For value when the peer is the gateway, else the peer.

    The gateway replaces whatever X-Forwarded-For a client sent with the one address it computed
    (CONTRACT: shared client IP), so only the last entry is ever meaningful, and only when the
    request came from an address in TRUSTED_PROXY_IPS. Anyone else reaching the service directly
    is judged by their socket address, so rotating the header escapes no per-IP limit.
    """
    peer = request.META.get("REMOTE_ADDR", "") or ""
    peer_ip = _ip_or_none(peer)
    if peer_ip is not None and peer_ip in _trusted_proxies():
        forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            claimed = _ip_or_none(forwarded[-1])
            if claimed is not None:
                return claimed
    return peer_ip or "unknown"


def _trusted_proxies() -> frozenset[str]:
    return frozenset(filter(None, (_ip_or_none(entry) for entry in settings.TRUSTED_PROXY_IPS)))
