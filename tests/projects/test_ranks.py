import random

import pytest

from apps.projects.ranks import MAX_RANK_LENGTH, RankError, rank_between, spread


def test_appending_keeps_order_and_ranks_short() -> None:
    ranks: list[str] = []
    for _ in range(20_000):
        ranks.append(rank_between(ranks[-1] if ranks else None, None))

    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)
    assert max(map(len, ranks)) <= 8


def test_prepending_keeps_order() -> None:
    ranks = [rank_between(None, None)]
    for _ in range(500):
        ranks.insert(0, rank_between(None, ranks[0]))

    assert ranks == sorted(ranks)
    assert len(ranks[0]) < MAX_RANK_LENGTH


def test_random_insertions_stay_sorted_and_distinct() -> None:
    generator = random.Random(7)
    ranks = [rank_between(None, None)]
    for _ in range(3_000):
        place = generator.randrange(len(ranks) + 1)
        before = ranks[place - 1] if place > 0 else None
        after = ranks[place] if place < len(ranks) else None
        ranks.insert(place, rank_between(before, after))

    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)


def test_repeated_insertion_at_one_spot_grows_one_character_at_a_time() -> None:
    low, high = "V", "W"
    for _ in range(40):
        high = rank_between(low, high)

    assert low < high
    assert len(high) <= 42


def test_spread_gives_sorted_distinct_ranks_of_one_width() -> None:
    ranks = spread(5_000)

    assert ranks == sorted(ranks)
    assert len(set(ranks)) == 5_000
    assert max(map(len, ranks)) <= 4


@pytest.mark.parametrize(("before", "after"), [("b", "a"), ("a", "a"), ("a0", None), ("", None), ("a!", None)])
def test_bad_neighbours_are_refused(before: str, after: str | None) -> None:
    with pytest.raises(RankError):
        rank_between(before, after)
