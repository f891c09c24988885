"""What a tenant's subdomain may be: a DNS label, lowercase, 3-40 characters, not reserved."""

import re

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")
MIN_LENGTH, MAX_LENGTH = 3, 40

# Hosts the platform serves itself or may one day; names that read as the platform's own.
RESERVED_SLUGS = frozenset(
    {
        "www", "admin", "api", "static", "mail", "app", "docs", "status",
        "assets", "media", "cdn", "files", "img", "auth", "login", "logout", "signup", "register", "account",
        "accounts", "help", "support", "blog", "dashboard", "billing", "security", "abuse", "postmaster",
        "smtp", "imap", "pop", "ftp", "ns1", "ns2", "mx", "dns", "vpn", "ws", "wss",
        "dev", "test", "staging", "prod", "demo-admin", "internal", "gateway", "identity", "tenancy",
        "projects", "shortener", "analytics", "public", "root", "system", "platform", "template", "default",
        "localhost", "example",
    }
)  # fmt: skip


def slug_problem(slug: object) -> str | None:
    """Why `slug` cannot name a tenant, or None when it can."""
    if not isinstance(slug, str) or not slug:
        return "A slug is required"
    if not MIN_LENGTH <= len(slug) <= MAX_LENGTH:
        return f"A slug is {MIN_LENGTH} to {MAX_LENGTH} characters long"
    if slug != slug.lower():
        return "A slug is lowercase"
    if not SLUG_PATTERN.match(slug):
        return "A slug is a DNS label: letters a-z, digits and inner hyphens"
    if slug[2:4] == "--":
        return "A slug may not have hyphens in its third and fourth places (reserved for IDN labels)"
    if slug in RESERVED_SLUGS:
        return f"The slug {slug!r} is reserved"
    return None
