"""The members page (identity) and the boards (the projects service's directory) draw a person alike."""

import pytest

from apps.common import avatars
from apps.projects import people


@pytest.mark.parametrize(
    ("name", "email"),
    [("Demo Owner", "owner@demo.test"), ("", "x.y@acme.test"), ("Ada", ""), ("  ", ""), ('"<b>" Nina', "n@a.test")],
)
def test_initials_agree(name: str, email: str) -> None:
    assert avatars.initials_for(name=name, email=email) == people.initials_for(name=name, email=email)


def test_colours_agree() -> None:
    assert len(people.PALETTE) == avatars.PALETTE_SIZE
    assert [avatars.palette_for(str(n)) for n in range(200)] == [people.palette_for(str(n)) for n in range(200)]
