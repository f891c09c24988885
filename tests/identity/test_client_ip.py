"""apps.common.http.client_ip: the gateway's X-Forwarded-For only from the gateway (CONTRACT: client IP)."""

import pytest
from django.test import RequestFactory

from apps.common.http import client_ip


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),  # the gateway's one value
        ("::1", "2001:db8::7", "2001:db8::7"),
        ("127.0.0.1", "10.0.0.1, 203.0.113.9", "203.0.113.9"),  # only the last entry is the gateway's
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "not-an-ip", "127.0.0.1"),
        ("127.0.0.1", "203.0.113.9, ", "203.0.113.9"),
        ("198.51.100.4", "203.0.113.9", "198.51.100.4"),  # not the gateway: the header is anyone's
        ("198.51.100.4", "127.0.0.1", "198.51.100.4"),
    ],
)
def test_client_ip_believes_forwarded_for_only_from_a_trusted_proxy(peer: str, forwarded: str, expected: str) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_ip(request) == expected


def test_with_no_trusted_proxy_the_peer_is_the_client(settings) -> None:
    settings.TRUSTED_PROXY_IPS = []
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert client_ip(request) == "127.0.0.1"
