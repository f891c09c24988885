"""Issue 8, item 6: the client IP is decided once, and X-Forwarded-For is believed only from a
configured proxy; services get exactly one value."""

import pytest

from gateway.clientip import ClientIpResolver, trusted_networks_parse
from tests.gateway import rawhttp
from tests.gateway.conftest import Gateway


def _forwarded_for(response) -> list[str]:
    return [value for name, value in response.json()["header_list"] if name == "x-forwarded-for"]


def test_without_trusted_proxies_the_socket_peer_is_the_client(gateway: Gateway) -> None:
    response = gateway.get("/api/projects", headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"})

    assert _forwarded_for(response) == ["127.0.0.1"]


def test_two_forwarded_for_headers_still_give_one_value(gateway: Gateway) -> None:
    response = rawhttp.get(
        gateway.base_url,
        "/api/projects",
        token=gateway.stack.token(),
        extra="X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 198.51.100.7\r\n",
    )

    assert [value for name, value in response.json()["header_list"] if name == "x-forwarded-for"] == ["127.0.0.1"]


def test_rotating_forwarded_for_does_not_escape_the_ip_limit(make_gateway) -> None:
    gateway = make_gateway(rate_limit_ip="3/minute")

    statuses = [
        gateway.get("/s/code", token=None, headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(5)
    ]

    assert statuses == [200, 200, 200, 429, 429]


def test_rotating_forwarded_for_does_not_escape_the_login_limit(make_gateway) -> None:
    gateway = make_gateway(rate_limit_login="2/minute")

    statuses = [
        gateway.request(
            "POST", "/api/auth/token", token=None, json={}, headers={"X-Forwarded-For": f"198.51.100.{n}"}
        ).status_code
        for n in range(4)
    ]

    assert statuses == [200, 200, 429, 429]


def test_behind_a_trusted_proxy_its_forwarded_client_is_believed(make_gateway) -> None:
    gateway = make_gateway(trusted_proxies="127.0.0.1/32, 10.0.0.0/8", rate_limit_ip="2/minute")

    first = gateway.get("/s/a", token=None, headers={"X-Forwarded-For": "192.0.2.1, 203.0.113.5, 10.1.2.3"})
    # The client's own claim (192.0.2.1) is left of what the proxies vouch for: ignored.
    assert _forwarded_for(first) == ["203.0.113.5"]

    second = gateway.get("/s/a", token=None, headers={"X-Forwarded-For": "203.0.113.5"})
    third = gateway.get("/s/a", token=None, headers={"X-Forwarded-For": "203.0.113.5"})
    other_client = gateway.get("/s/a", token=None, headers={"X-Forwarded-For": "203.0.113.6"})

    assert second.status_code == 200
    assert third.status_code == 429  # the limit follows the believed client
    assert other_client.status_code == 200


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.9", "10.0.0.1", "203.0.113.9"),  # an untrusted peer's header means nothing
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "198.51.100.4", "198.51.100.4"),
        ("10.0.0.2", "1.1.1.1, 198.51.100.4, 10.0.0.3", "198.51.100.4"),
        ("10.0.0.2", "not-an-ip, 10.0.0.3", "10.0.0.3"),
        ("10.0.0.2", "2001:db8::1", "2001:db8::1"),
        ("10.0.0.2", "10.0.0.7, 10.0.0.8", "10.0.0.7"),
    ],
)
def test_the_rightmost_untrusted_hop_is_the_client(peer: str, forwarded: str, client: str) -> None:
    resolver = ClientIpResolver(trusted_networks_parse("10.0.0.0/8"))
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []

    assert resolver.resolve(peer, headers) == client


def test_a_malformed_trusted_proxy_fails_at_start() -> None:
    with pytest.raises(ValueError):
        trusted_networks_parse("10.0.0.0/8, nonsense")


def test_only_a_trusted_proxy_may_say_the_client_used_https(make_gateway, gateway: Gateway) -> None:
    behind_proxy = make_gateway(trusted_proxies="127.0.0.1")

    believed = behind_proxy.get("/api/projects", headers={"X-Forwarded-Proto": "https"})
    ignored = gateway.get("/api/projects", headers={"X-Forwarded-Proto": "https"})

    def proto(response) -> list[str]:
        return [value for name, value in response.json()["header_list"] if name == "x-forwarded-proto"]

    assert proto(believed) == ["https"]
    assert proto(ignored) == ["http"]


def test_the_clients_own_forwarding_headers_never_reach_a_service(gateway: Gateway) -> None:
    sent = {"Forwarded": "for=203.0.113.9", "X-Real-IP": "203.0.113.9", "X-Forwarded-Port": "443"}

    names = [name for name, _ in gateway.get("/api/projects", headers=sent).json()["header_list"]]

    assert not {"forwarded", "x-real-ip", "x-forwarded-port"} & set(names)
