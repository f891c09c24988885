"""How a person looks on the board: initials and a stable colour, derived from their name and id.

Shared by the directory's writes (services/people.py stores them) and its reads (selectors, for
ids the directory does not know yet).
"""

import hashlib

# White text on each passes WCAG AA (contrast >= 4.5:1); `avatar-c<N>` in static/css/app.css.
PALETTE = (
    "#1d4ed8",
    "#047857",
    "#b91c1c",
    "#6d28d9",
    "#c2410c",
    "#0e7490",
    "#be185d",
    "#4d7c0f",
    "#a16207",
    "#4338ca",
    "#0f766e",
    "#9d174d",
)
UNKNOWN_NAME = "Unknown user"


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
    return int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:4], "big") % len(PALETTE)


# Someone the directory has not heard of yet (identity's event is on its way): grey, no name.
UNKNOWN_PERSON = {"name": UNKNOWN_NAME, "initials": "?", "colour": "#57606a", "palette": len(PALETTE)}
