"""Who the client is, decided once per request (issue 8, item 6; the contract in docs/gateway.md).

The socket peer is the client, unless the peer is a configured proxy (`GATEWAY_TRUSTED_PROXIES`,
none by default): then the `X-Forwarded-For` entries are read from the right, skipping the
trusted proxies, and the first one that is not trusted is the client. Whatever the client put
in the header beyond that is ignored, so rotating it changes nothing. Services get exactly one
`X-Forwarded-For: <this ip>` and believe it only because it comes from the gateway.
"""

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks_parse(value: str) -> tuple[Network, ...]:
    """`"10.0.0.0/8, 192.0.2.7"` -> networks; a malformed entry fails at start-up."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())


class ClientIpResolver:
    def __init__(self, trusted: Iterable[Network]) -> None:
        self._trusted = tuple(trusted)
        # Peers repeat (the same proxy, the same client); membership is worth remembering.
        self._is_trusted = lru_cache(maxsize=4096)(self._is_trusted_uncached)

    def _is_trusted_uncached(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def trusted(self, peer: str) -> bool:
        return bool(self._trusted) and self._is_trusted(peer)

    def resolve(self, peer: str | None, headers: Iterable[tuple[bytes, bytes]]) -> str:
        peer = peer or "unknown"
        if not self._trusted or not self._is_trusted(peer):
            return peer
        hops = [
            hop.strip()
            for name, value in headers
            if name == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")
        ]
        for hop in reversed(hops):
            if not _is_ip(hop):
                # A garbled entry ends what can be believed: the hop before it is the last one we know.
                return peer
            if not self._is_trusted(hop):
                return str(ipaddress.ip_address(hop))
            peer = hop
        return peer


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
