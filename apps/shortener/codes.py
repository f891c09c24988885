"""Short codes: unguessable, collision-checked, and the aliases people may choose instead.

A code is base62 of SHA-256 over the tenant id, the time in nanoseconds and 16 random bytes,
cut to CODE_LENGTH characters: 10 base62 characters are 59.5 bits, so guessing one live code
among a million takes ~10^12 tries (the redirect is rate limited per IP far below that). The
hash keeps codes of one tenant from sharing a visible prefix or order; the randomness alone
makes them unguessable. The unique index is the collision check; services retry on it.
"""

import hashlib
import re
import secrets
import time

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CODE_LENGTH = 10
ALIAS_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{1,62}[A-Za-z0-9])?")
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Words an alias may not take: they read as the platform's own pages, or as a trap for a reader.
RESERVED_ALIASES = frozenset(
    {
        "admin", "api", "app", "login", "logout", "signup", "static", "shared", "s", "ws", "www",
        "help", "support", "security", "account", "settings", "password", "reset", "verify",
        "billing", "status", "healthz", "readyz", "internal", "docs", "qr", "new", "edit",
    }
)  # fmt: skip


def _base62(number: int, length: int) -> str:
    digits = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(digits)


def code_generate(tenant_id: str) -> str:
    seed = f"{tenant_id}:{time.time_ns()}:".encode() + secrets.token_bytes(16)
    return _base62(int.from_bytes(hashlib.sha256(seed).digest(), "big"), CODE_LENGTH)


def alias_problem(alias: str) -> str | None:
    """Why `alias` cannot be a code, or None when it can."""
    if not 3 <= len(alias) <= 64:
        return "An alias is 3 to 64 characters long"
    if not ALIAS_PATTERN.fullmatch(alias):
        return "An alias uses letters, digits, '-' and '_', and starts and ends with a letter or digit"
    if alias.lower() in RESERVED_ALIASES:
        return f"'{alias}' is reserved: choose another alias"
    return None


def code_is_wellformed(code: str) -> bool:
    return CODE_PATTERN.fullmatch(code) is not None
