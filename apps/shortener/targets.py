"""What a link may point at: http(s) URLs on other sites, never a script, data or a trick.

A URL is taken apart once, strictly: an absolute http or https URL with a host, no user info
(`https://platform@evil.example` reads as the platform), no control characters or spaces
anywhere (browsers strip some of them and would see another scheme), and not this platform's
own hosts (a link that opens the platform belongs to a task link, which checks its reader).
"""

import ipaddress
import re
from urllib.parse import urlsplit

from django.conf import settings

MAX_TARGET_LENGTH = 2048
_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x20\x7f-\x9f\\]")
_HOST = re.compile(r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}")


def target_problem(url: str) -> str | None:
    """Why `url` cannot be a link's target, or None when it can."""
    if not url:
        return "Give the address the link opens"
    if len(url) > MAX_TARGET_LENGTH:
        return f"An address is at most {MAX_TARGET_LENGTH} characters long"
    if _FORBIDDEN_CHARACTERS.search(url):
        return "An address may not contain spaces, control characters or backslashes"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "This is not a valid address"
    if parts.scheme not in ("http", "https"):
        return "A link opens http:// or https:// addresses only"
    if not url.lower().startswith(("http://", "https://")) or not parts.netloc:
        return "Give the whole address, starting with https://"
    if "@" in parts.netloc:
        return "An address with a user name or password in it is refused"
    host = (parts.hostname or "").rstrip(".")
    if not host or not (_HOST.fullmatch(host) or _is_ip(host)):
        return "The address has no valid host"
    if port == 0:
        return "The address has no valid port"
    if is_platform_host(host):
        return "Links to this platform's own pages are task links: share the task instead"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_platform_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    base = settings.BASE_DOMAIN.lower()
    return host == base or host.endswith(f".{base}")
