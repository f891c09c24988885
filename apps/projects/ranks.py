"""Fractional ranks: strings that sort between any two others, so a move rewrites one row.

A rank is a base-62 fraction written without the leading "0." and never ending in the
zero digit, so there is always room between two ranks (the midpoint algorithm of
rocicorp's fractional-indexing, without the integer part). Ranks grow by about one
character per repeated insertion at the same spot; when one grows past MAX_RANK_LENGTH
the column is rebalanced (`spread`), which happens rarely. Appending at the end, the
common case, grows ranks logarithmically (see `_after`).
"""

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE = len(DIGITS)
ZERO = DIGITS[0]
MAX_RANK_LENGTH = 48


class RankError(ValueError):
    pass


def _validate(rank: str) -> None:
    if not rank or rank.endswith(ZERO) or any(ch not in DIGITS for ch in rank):
        raise RankError(f"{rank!r} is not a rank")


def _midpoint(low: str, high: str | None) -> str:
    """A string strictly between low ("" meaning 0) and high (None meaning 1)."""
    if high is not None:
        shared = 0
        while (low[shared] if shared < len(low) else ZERO) == high[shared]:
            shared += 1
        if shared:
            return high[:shared] + _midpoint(low[shared:], high[shared:])
    digit_low = DIGITS.index(low[0]) if low else 0
    digit_high = DIGITS.index(high[0]) if high is not None else BASE
    if digit_high - digit_low > 1:
        return DIGITS[(digit_low + digit_high + 1) // 2]
    if high is not None and len(high) > 1:
        return high[0]
    return DIGITS[digit_low] + _midpoint(low[1:], None)


def _after(low: str) -> str:
    """A rank after low: low plus one in its last digit (skipping a trailing zero), so a
    board that only ever appends grows its ranks' length logarithmically, not linearly."""
    width = len(low)
    value = _to_int(low) + 1
    if value % BASE == 0:
        value += 1
    if value < BASE**width:
        return _to_str(value, width)
    # Every digit is the last one: continue one level down, twice as long, near its start.
    return low + ZERO * (width - 1) + DIGITS[1]


def _to_int(rank: str) -> int:
    value = 0
    for char in rank:
        value = value * BASE + DIGITS.index(char)
    return value


def _to_str(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, remainder = divmod(value, BASE)
        digits.append(DIGITS[remainder])
    return "".join(reversed(digits))


def _before(high: str) -> str:
    """A short rank before high, leaving room in front of it."""
    for index, char in enumerate(high):
        position = DIGITS.index(char)
        if position > 1:
            return high[:index] + DIGITS[position - 1]
    return _midpoint("", high)


def rank_between(before: str | None, after: str | None) -> str:
    """A rank that sorts after `before` and ahead of `after` (either may be None: an end)."""
    if before is not None:
        _validate(before)
    if after is not None:
        _validate(after)
    if before is not None and after is not None:
        if before >= after:
            raise RankError(f"{before!r} does not sort ahead of {after!r}")
        return _midpoint(before, after)
    if before is not None:
        return _after(before)
    if after is not None:
        return _before(after)
    return DIGITS[BASE // 2]


def spread(count: int) -> list[str]:
    """`count` ranks evenly spaced, all the same length, for a fresh column or a rebalance."""
    if count <= 0:
        return []
    width = 1
    while BASE**width <= count * 4:
        width += 1
    step = BASE**width // (count + 1)
    ranks = []
    for index in range(1, count + 1):
        ranks.append(_to_str(step * index, width).rstrip(ZERO))
    return ranks


def needs_rebalance(rank: str) -> bool:
    return len(rank) > MAX_RANK_LENGTH
