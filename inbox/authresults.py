"""Authentication-Results (RFC 8601): did the operator's own mail server vouch for the From?

Anyone can write an Authentication-Results header; only the one the operator's
server added, the topmost carrying its configured authserv-id, means anything.
Lower ones, and ones with any other id, were written by someone else. And only a
connection from a trusted peer ([inbox] trusted_peers: the MTA in front, which adds
its own header and removes forged ones, RFC 8601 §5) may carry one at all: a client
talking to ``serve --smtp`` directly writes whatever headers it likes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from email.message import Message
from functools import cache
from typing import Any

from publicsuffixlist import PublicSuffixList

from calshare.config import RequireAuth

Token = tuple[str, bool]  # (text, whether any of it was a quoted string)


def _elements(text: str) -> list[list[Token]]:
    """The header split at ";" into elements, each a list of tokens, in one pass.

    Comments (nested) are dropped; a quoted string is one token (its ";", "=" and
    spaces are text, not structure: the sender chooses some of what our server writes,
    e.g. smtp.mailfrom="x;dmarc=pass"@evil.example); "=" is a token of its own. One
    pass, because repeated regular expressions over sender-chosen nesting would take
    quadratic time.
    """
    elements: list[list[Token]] = [[]]
    word: list[str] = []
    quoted_word = False
    depth, quoted, escaped = 0, False, False

    def flush() -> None:
        nonlocal quoted_word
        if word or quoted_word:
            elements[-1].append(("".join(word), quoted_word))
        word.clear()
        quoted_word = False

    for char in text:
        if escaped:
            escaped = False
            if quoted:
                word.append(char)
        elif char == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            if char == '"':
                quoted = False
            else:
                word.append(char)
        elif char == "(":
            depth += 1
            flush()
        elif depth:
            if char == ")":
                depth -= 1
        elif char == '"':
            quoted, quoted_word = True, True
        elif char == ";":
            flush()
            elements.append([])
        elif char == "=":
            flush()
            elements[-1].append(("=", False))
        elif char.isspace():
            flush()
        else:
            word.append(char)
    flush()
    return elements


def _resinfos(results: str) -> list[tuple[str, str, dict[str, str]]]:
    """(method, result, {ptype.property: value}) of each result element.

    Only an element that starts with an unquoted ``method=result`` is a result; a
    value given twice is not trusted (the first is kept).
    """
    found = []
    for element in _elements(results)[1:]:  # the first is the authserv-id
        if len(element) < 3 or element[1] != ("=", False) or element[0][1] or element[2][1]:
            continue
        method = element[0][0].partition("/")[0].lower()  # dkim/1 = dkim version 1
        properties: dict[str, str] = {}
        rest = element[3:]
        for index in range(len(rest) - 2):
            name, between, value = rest[index], rest[index + 1], rest[index + 2]
            if between == ("=", False) and not name[1] and name[0] != "=":
                properties.setdefault(name[0].lower(), value[0])
        found.append((method, element[2][0].lower(), properties))
    return found


def _domain_of(value: str) -> str:
    """The domain of a property value: ``example.org``, ``@example.org``, ``user@example.org``."""
    return value.rpartition("@")[2].strip().lower().rstrip(".")


@cache
def _suffixes() -> PublicSuffixList:
    """The public-suffix list bundled with the package: no network at run time."""
    return PublicSuffixList()


def prepare(require: RequireAuth) -> None:
    """Load what ``passes`` will need now (the suffix list takes 0.2 s to build), at start,
    rather than on the first message, in the middle of serving."""
    if require == RequireAuth.DKIM:
        _suffixes()


def organizational_domain(domain: str) -> str | None:
    """The registrable domain (RFC 7489 §3.2), None for a public suffix such as co.uk."""
    found = _suffixes().privatesuffix(domain.lower().rstrip("."))
    return str(found) if found else None


def peer_trusted(peer: Any, networks: Iterable[str]) -> bool:
    """Whether a connection's peer (host, port, …) is one of the configured trusted networks.

    Only a mail server we trust, the one in front that added its own
    Authentication-Results (and removed forged ones, RFC 8601 §5), may vouch.
    """
    try:
        host = peer[0] if isinstance(peer, tuple | list) else peer
        address = ipaddress.ip_address(str(host).split("%", 1)[0])
    except (ValueError, IndexError, TypeError):
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(network, strict=False) for network in networks)


def trusted_results(message: Message, authserv_id: str) -> str | None:
    """The value of the topmost Authentication-Results header written by our server."""
    try:
        values = message.get_all("Authentication-Results") or []
    except (ValueError, TypeError, IndexError, AttributeError):
        return None
    for value in values:  # in order: the topmost, added last, comes first
        text = " ".join(str(value).split())
        words = text.split(";", 1)[0].split()
        server = words[0] if words else ""
        if server.lower() == authserv_id.lower():
            return text
    return None


def _from_headers(message: Message) -> int:
    return sum(1 for name, _ in message.raw_items() if name.lower() == "from")


def _aligned(signer: str, author_domain: str) -> bool:
    """The signing domain is the author's domain or a parent of it, below a public suffix.

    d=co.uk is the parent of example.co.uk too, and anyone can sign as a suffix no one
    owns; the signer must be at or below the author's organizational domain.
    """
    signer, author_domain = signer.lower().rstrip("."), author_domain.lower().rstrip(".")
    if not (author_domain == signer or author_domain.endswith("." + signer)):
        return False
    organization = organizational_domain(author_domain)
    return organization is not None and (
        signer == organization or signer.endswith("." + organization)
    )


def passes(message: Message, *, require: RequireAuth, authserv_id: str, author: str | None) -> bool:
    """Whether the message meets ``require`` (none, dmarc, dkim) according to our server."""
    if require == RequireAuth.NONE:
        return True
    if author is None or _from_headers(message) != 1:
        return False  # with two From headers, which one did the server vouch for?
    results = trusted_results(message, authserv_id)
    if results is None:
        return False
    author_domain = author.rpartition("@")[2].lower().rstrip(".")
    for method, outcome, properties in _resinfos(results):
        if outcome != "pass":
            continue
        if method == "dmarc" and require == RequireAuth.DMARC:
            # the From our server judged must be the From we read (RFC 7489 §6.6.1)
            judged = properties.get("header.from")
            if judged is None or _domain_of(judged) == author_domain:
                return True
        if method == "dkim" and require == RequireAuth.DKIM:
            # d= is the signing domain; i= (an identity, [local-part]@domain) is at or
            # below it (RFC 6376 §3.5): its domain is after the last "@"
            signer = properties.get("header.d") or properties.get("header.i")
            if signer and _aligned(_domain_of(signer), author_domain):
                return True
    return False
