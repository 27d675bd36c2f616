"""Who is calling: the client address that lock-outs (7.4), IP allow-lists, the log and /healthz judge.

Without trusted proxies the address is the TCP peer, whatever the request's headers say. Behind a
reverse proxy every caller's peer is the proxy, so one caller's forged signatures would lock the app
out for all of them; with ``trusted_proxies`` set, a request whose peer lies in one of those networks
is judged by the right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy.

Right-most, not left-most: each proxy appends the address it saw, so entries to the right were
written by our proxies and entries to the left by whoever sent the request, who may write anything.
``Forwarded`` (RFC 7239) is not read: one header to configure and audit is enough, and every common
proxy can send ``X-Forwarded-For``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDED_FOR: Final = "x-forwarded-for"
# A bound on the set of proxies already warned about, so a misbehaving network cannot grow it forever.
_WARNED_LIMIT: Final = 1024

logger = logging.getLogger(__name__)


def parse_networks(networks: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``ip_network`` of each entry (settings already refused malformed ones)."""
    return tuple(ipaddress.ip_network(network, strict=True) for network in networks)


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 callers as ::ffff:a.b.c.d; judge (and key) them as a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _without_port(entry: str) -> str:
    """An ``X-Forwarded-For`` entry without the port some load balancers add: ``203.0.113.5:51234``,
    ``[2001:db8::1]:443`` (a bare IPv6 address, with its colons, stays as it is)."""
    if entry.startswith("["):
        return entry[1 : entry.find("]")] if "]" in entry else entry
    host, colon, port = entry.rpartition(":")
    if colon and "." in host and ":" not in host and port.isdigit():
        return host
    return entry


def in_networks(address: str, networks: Sequence[IPNetwork]) -> bool:
    """Whether ``address`` (text) lies in any of ``networks``; an unparsable address lies in none."""
    parsed = _address(address)
    return parsed is not None and any(parsed in network for network in networks)


class ClientAddresses:
    """Resolves the client address of a request from its TCP peer and, behind trusted proxies, its
    ``X-Forwarded-For`` headers."""

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self.trusted = parse_networks(trusted_proxies)
        self._warned: set[str] = set()

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.trusted)

    def resolve(self, peer: str, forwarded_for: Sequence[str]) -> str:
        """The client address: ``peer``, unless ``peer`` is a trusted proxy and ``forwarded_for`` (the
        values of every ``X-Forwarded-For`` header, in order) names the client.

        Walking from the right, trusted proxies are skipped and the first other entry is the client. A
        malformed entry met on the way means the chain cannot be read: the peer is used (and a warning
        logged once per proxy). Entries left of the client are never read, so a caller cannot push the
        answer back to the shared proxy address by prefixing garbage.
        """
        # The peer is returned as the socket reported it, as without proxies, so its key never changes.
        if not self.trusted:
            return peer
        peer_address = _address(peer)
        if peer_address is None or not self._trusted(peer_address):
            return peer
        entries = [entry.strip() for value in forwarded_for for entry in value.split(",")]
        entries = [entry for entry in entries if entry]
        if not entries:
            return peer
        for entry in reversed(entries):
            address = _address(_without_port(entry))
            if address is None:
                self._warn(peer, entry)
                return peer
            if not self._trusted(address):
                return str(address)
        # Every entry names one of ours: the left-most was written by whoever called the first proxy,
        # which may be a caller inside a trusted network choosing its own address. The peer is all
        # that is known for sure.
        return peer

    def _warn(self, proxy: str, entry: str) -> None:
        if proxy in self._warned or len(self._warned) >= _WARNED_LIMIT:
            return
        self._warned.add(proxy)
        logger.warning(
            "trusted proxy %s sent an X-Forwarded-For entry that is not an IP address (%r); requests "
            "through it are judged by the proxy's own address until its header is fixed",
            proxy,
            entry[:64],
        )
