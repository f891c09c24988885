"""apps.common.drf's fields: ids in ASCII digits only, within a bigint."""

import pytest
from rest_framework import serializers

from apps.common.drf import AsciiIntegerField, AsciiUUIDField


@pytest.mark.parametrize("value", ["\u0663", "\uff11\uff12", "1\u0663", "\u00b2", str(2**63), "-" + str(2**63 + 1)])
def test_an_integer_in_other_digits_or_past_bigint_is_refused(value) -> None:
    with pytest.raises(serializers.ValidationError):
        AsciiIntegerField().run_validation(value)


@pytest.mark.parametrize(("value", "expected"), [("12", 12), (" 7 ", 7), (42, 42), (str(2**63 - 1), 2**63 - 1)])
def test_an_ascii_integer_passes(value, expected) -> None:
    assert AsciiIntegerField().run_validation(value) == expected


def test_a_uuid_in_other_digits_is_refused() -> None:
    with pytest.raises(serializers.ValidationError):
        AsciiUUIDField().run_validation("\u0663" * 32)
    assert str(AsciiUUIDField().run_validation("3" * 32)) == "33333333-3333-3333-3333-333333333333"
