"""What a tenant's subdomain may be: a DNS label, lowercase, 3-40 characters, not reserved.

Signup and the signup form's live availability check both ask `slug_check`, so a slug the
form calls available is one signup accepts (unless someone takes it first).
"""

import re
from typing import NamedTuple

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")
MIN_LENGTH, MAX_LENGTH = 3, 40

# Hosts the platform serves itself or may one day; names that read as the platform's own.
# "availability" names tenancy's own `GET /api/tenants/availability`, beside `/api/tenants/<slug>`.
RESERVED_SLUGS = frozenset(
    {
        "www", "admin", "api", "static", "mail", "app", "docs", "status",
        "assets", "media", "cdn", "files", "img", "auth", "login", "logout", "signup", "register", "account",
        "accounts", "help", "support", "blog", "dashboard", "billing", "security", "abuse", "postmaster",
        "smtp", "imap", "pop", "ftp", "ns1", "ns2", "mx", "dns", "vpn", "ws", "wss",
        "dev", "test", "staging", "prod", "demo-admin", "internal", "gateway", "identity", "tenancy",
        "projects", "shortener", "analytics", "public", "root", "system", "platform", "template", "default",
        "localhost", "example", "availability",
    }
)  # fmt: skip


class SlugProblem(NamedTuple):
    """Why a slug cannot name a tenant: a stable code (for clients) and a sentence (for people)."""

    code: str  # required, too_short, too_long, uppercase, invalid_characters, idn, reserved
    message: str


def slug_check(slug: object) -> SlugProblem | None:
    """Why `slug` cannot name a tenant, or None when it can (whether it is taken is not asked here)."""
    if not isinstance(slug, str) or not slug:
        return SlugProblem("required", "A subdomain is required")
    if len(slug) < MIN_LENGTH:
        return SlugProblem("too_short", f"A subdomain is {MIN_LENGTH} to {MAX_LENGTH} characters long")
    if len(slug) > MAX_LENGTH:
        return SlugProblem("too_long", f"A subdomain is {MIN_LENGTH} to {MAX_LENGTH} characters long")
    if slug != slug.lower():
        return SlugProblem("uppercase", "A subdomain is lowercase")
    if not SLUG_PATTERN.match(slug):
        return SlugProblem(
            "invalid_characters",
            "A subdomain is a DNS label: letters a-z, digits and hyphens, starting and ending with a letter or digit",
        )
    if slug[2:4] == "--":
        return SlugProblem(
            "idn", "A subdomain may not have hyphens in its third and fourth places (reserved for IDN labels)"
        )
    if slug in RESERVED_SLUGS:
        return SlugProblem("reserved", f"The subdomain {slug} is reserved")
    return None


def slug_problem(slug: object) -> str | None:
    """Why `slug` cannot name a tenant, as a sentence, or None when it can."""
    problem = slug_check(slug)
    return problem.message if problem else None
