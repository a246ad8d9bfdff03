"""Which network addresses a source that an owner added may be read from (SSRF guard).

Owners who add a calendar from the console are not operators: a URL they type must
not make the server read its own loopback, the cloud's metadata service
(169.254.169.254) or hosts of the private network behind it, and show them what
came back through events or error messages. What is refused is decided here, on an
IP address, purely; the transports (``calshare.sources``, ``calshare.caldav_source``)
ask after their socket has connected, for every hop of a redirect, because a name
can resolve to another address by then and a public server can redirect inward.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit

from calshare.errors import PrivateAddress

log = logging.getLogger(__name__)

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# IPv6 forms that carry an IPv4 address a gateway may connect to for us.
_NAT64 = IPv6Network("64:ff9b::/96")


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address, if any.

    ``::ffff:127.0.0.1`` is the loopback to a dual-stack socket; the others reach
    the IPv4 address through a relay or gateway, so they are judged by it too.
    """
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def internal(address: Address) -> bool:
    """Whether ``address`` is inside the server's own network or not a host at all.

    Everything not globally routable: loopback, private (RFC 1918, fc00::/7),
    link-local (169.254/16, fe80::/10), CGNAT (100.64/10), unspecified, documentation
    and reserved ranges (``is_global`` is false for all of them), plus multicast,
    which ``is_global`` lets through.
    """
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:  # what is reached is the IPv4 address: judged by it alone
            return internal(inner)
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
    )


@dataclass(frozen=True)
class Guard:
    """Refuses connections to internal addresses, for one fetch and its redirects.

    ``networks`` None (production) refuses every ``internal`` address; a tuple
    refuses only those networks, so a test can let one loopback server through as
    if it were public and refuse another.
    """

    networks: tuple[Network, ...] | None = None

    def refuses(self, peer: str) -> bool:
        """Whether a connection to ``peer`` (an IP address as a socket gives it) is refused.

        A peer that is not an IP address at all (a Unix socket's path) is refused:
        a guard that cannot tell fails closed.
        """
        try:
            address = ip_address(peer.split("%", 1)[0])  # fe80::1%eth0: the zone is no host
        except ValueError:
            return True
        if self.networks is None:
            return internal(address)
        mapped = embedded_ipv4(address) if isinstance(address, IPv6Address) else None
        return any(
            candidate in network
            for candidate in (address, mapped)
            if candidate is not None
            for network in self.networks
            if candidate.version == network.version
        )

    def check(self, peer: str, label: str) -> None:
        """Raise PrivateAddress (naming ``label``, a redacted URL) if ``peer`` is refused."""
        if self.refuses(peer):
            # the operator's to know: an owner's source tried to reach inside (or DNS moved)
            log.warning("refused to connect to %s for the source %s (an owner's)", peer, label)
            raise PrivateAddress(label, peer)


STRICT = Guard()


def owner_guard(private_sources: bool) -> Guard | None:
    """The guard for a source an owner added: none when the operator allows private ones
    (setting ``owners.private_sources``), else the strict one."""
    return None if private_sources else STRICT


def literal_address(url: str) -> str | None:
    """The host of ``url`` when it is an IP address written out (``http://10.0.0.1/``).

    For the Add page's quick check before anything is fetched; a name is left to
    the connection's check, which sees what it resolved to.
    """
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return None
    try:
        return str(ip_address(host))
    except ValueError:
        return None


__all__ = ["STRICT", "Guard", "embedded_ipv4", "internal", "literal_address", "owner_guard"]
