import pytest

from apps.tenancy.slugs import slug_problem


@pytest.mark.parametrize("slug", ["acme", "a1b", "my-team-42", "x" * 40, "0rg"])
def test_dns_labels_of_3_to_40_lowercase_characters_are_accepted(slug: str) -> None:
    assert slug_problem(slug) is None


@pytest.mark.parametrize(
    ("slug", "reason"),
    [
        ("", "required"),
        ("ab", "3 to 40"),
        ("x" * 41, "3 to 40"),
        ("Acme", "lowercase"),
        ("-acme", "DNS label"),
        ("acme-", "DNS label"),
        ("ac_me", "DNS label"),
        ("ac.me", "DNS label"),
        ("acmé", "DNS label"),
        ("xn--acme", "IDN"),
        ("www", "reserved"),
        ("admin", "reserved"),
        ("api", "reserved"),
        ("static", "reserved"),
        ("status", "reserved"),
        (None, "required"),
    ],
)
def test_bad_slugs_are_refused_with_the_reason(slug: object, reason: str) -> None:
    assert reason in slug_problem(slug)
