"""How a person looks wherever they are shown: initials and a stable colour from their name and id.

Pure functions any service may use (identity's members page; the projects service's people
directory, apps/projects/people.py, computes the same, and tests/identity/test_avatars.py holds
the two together). `avatar-c<N>` in static/css/app.css is colour N; PALETTE_SIZE (12) is the grey
of someone unknown.
"""

import hashlib

PALETTE_SIZE = 12


def initials_for(*, name: str, email: str = "") -> str:
    words = [word for word in name.split() if word[:1].isalnum()]
    if len(words) >= 2:
        return (words[0][0] + words[-1][0]).upper()
    if words:
        return words[0][:2].upper()
    local = email.split("@", 1)[0]
    letters = [ch for ch in local if ch.isalnum()]
    return "".join(letters[:2]).upper() or "?"


def palette_for(user_id: str) -> int:
    """The same colour for the same person everywhere, whatever their name becomes."""
    return int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:4], "big") % PALETTE_SIZE
