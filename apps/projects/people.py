"""How a person looks on the board: initials and a stable colour, derived from their name and id.

The rules are apps/common/avatars.py's (identity's members page shows the same); this adds the
colours and what someone unknown looks like, for the directory's writes (services/people.py) and
reads (selectors).
"""

from apps.common.avatars import PALETTE_SIZE, initials_for, palette_for

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
assert len(PALETTE) == PALETTE_SIZE
UNKNOWN_NAME = "Unknown user"

__all__ = ["PALETTE", "UNKNOWN_NAME", "UNKNOWN_PERSON", "initials_for", "palette_for"]


# Someone the directory has not heard of yet (identity's event is on its way): grey, no name.
UNKNOWN_PERSON = {"name": UNKNOWN_NAME, "initials": "?", "colour": "#57606a", "palette": len(PALETTE)}
