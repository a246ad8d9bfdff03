"""Which network addresses a source that an owner added may be read from (SSRF guard).

Owners who add a calendar from the console are not operators: a URL they type must
not make the server read its own loopback, the cloud's metadata service
(169.254.169.254) or hosts of the private network behind it, and show them what
came back through events or error messages. What is refused is decided here, on an
IP address, purely; the transports (``calshare.sources``, ``calshare.caldav_source``)
ask after their socket has connected, for every hop of a redirect, because a name
can resolve to another address by then and a public server can redirect inward.

The same goes for the WebDAV folder an owner may publish into: the daemon writes
there with the operator's ``[webdav]`` password, so the console takes only a folder
under one of the operator's ``[owners] webdav_folders`` (``allowed_folder``, also pure).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import unquote, urlsplit

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


_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Folder:
    """A WebDAV folder's URL as a server sees it: what two spellings must agree on."""

    scheme: str
    host: str
    port: int
    path: str  # percent-decoded, ending in "/"

    def within(self, prefix: Folder) -> bool:
        """Same origin, and the path at or below the prefix's (on a "/" boundary)."""
        return (self.scheme, self.host, self.port) == (
            prefix.scheme,
            prefix.host,
            prefix.port,
        ) and self.path.startswith(prefix.path)


def parse_folder(url: str) -> Folder | None:
    """``url`` normalised for comparison, or None if it is no plain http(s) folder URL.

    None for anything a prefix check could be fooled by: user info
    (``https://dav.example.org@evil/``), a query or fragment, spaces, control
    characters or backslashes, a bad port, and dot segments (``/calshare/../x/``,
    encoded ``%2e%2e`` or ``..;`` too), which a server resolves to another folder.
    """
    if any(char <= " " or char in "\\\x7f" for char in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return None
    path = unquote(parts.path or "/")
    if any(segment.split(";", 1)[0] in (".", "..") for segment in path.split("/")):
        return None
    if not path.endswith("/"):
        path += "/"
    return Folder(scheme, host, port or _DEFAULT_PORTS[scheme], path)


def folder_prefix(text: str) -> str:
    """A ``[owners] webdav_folders`` entry, checked, ending in "/" (ValueError if not)."""
    text = text.strip()
    if parse_folder(text) is None:
        raise ValueError(
            f"{text!r} is not an http(s) URL of a folder (no user name, query or dot segments)"
        )
    return text if text.endswith("/") else text + "/"


def allowed_folder(url: str, prefixes: tuple[str, ...]) -> bool:
    """Whether an owner may publish into ``url``: under one of the operator's ``prefixes``."""
    folder = parse_folder(url.strip())
    if folder is None:
        return False
    for prefix in prefixes:
        allowed = parse_folder(prefix)
        if allowed is not None and folder.within(allowed):
            return True
    return False


__all__ = [
    "STRICT",
    "Folder",
    "Guard",
    "allowed_folder",
    "embedded_ipv4",
    "folder_prefix",
    "internal",
    "literal_address",
    "owner_guard",
    "parse_folder",
]
