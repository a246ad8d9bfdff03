"""The one address normaliser.

Addresses are compared in one form everywhere (owners, invitees, the From of a
reply): the local part lowercased, the domain in lowercase ASCII (IDNA/punycode).
Validation is syntax only, never DNS, so it works offline and is deterministic.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError

import idna

from calshare.errors import AddressError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Header specials (RFC 5322 3.2.3): a display name holding one must be quoted.
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
# dot-atom of RFC 5322, widened to non-ASCII letters for RFC 6531 (SMTPUTF8) local parts.
_LOCAL_ATOM = r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]|[^\x00-\x7f\s])+"
_LOCAL = re.compile(rf"{_LOCAL_ATOM}(?:\.{_LOCAL_ATOM})*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _invisible(text: str) -> bool:
    """Controls (C0 and C1) and format characters (zero-width, bidi overrides, BOM).

    ``ann\u200b@example.org`` prints like ``ann@example.org`` but is another
    address: accepting it would let a share slip past group and domain policy.
    """
    return any(unicodedata.category(char) in ("Cc", "Cf") for char in text)


@dataclass(frozen=True)
class Mailbox:
    """A normalised address with the display name it came with (may be empty)."""

    address: str
    display_name: str = ""

    def __str__(self) -> str:
        if not self.display_name:
            return self.address
        name = self.display_name
        if _SPECIALS.search(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{self.address}>"


def normalize_domain(domain: str) -> str:
    """Lowercase ASCII form of a domain; IDN labels become punycode."""
    text = domain.strip().rstrip(".")
    if not text:
        raise AddressError("the domain is empty")
    try:
        ascii_domain = idna.encode(text, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise AddressError(f"{domain!r} is not a valid domain name ({exc})") from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or len(labels) < 2:
        raise AddressError(f"{domain!r} is not a full domain name (like example.org)")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise AddressError(f"{domain!r} is not a valid domain name")
    if labels[-1].isdigit():
        raise AddressError(f"{domain!r} is not a domain name")
    return ascii_domain


def normalize_address(address: str) -> str:
    """The comparable form of a bare address (no display name)."""
    text = address.strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    if _invisible(text):
        raise AddressError(f"{address!r} is not an email address (it contains control characters)")
    local, at, domain = text.rpartition("@")
    if not at or not local:
        raise AddressError(f"{address!r} is not an email address (expected name@domain)")
    if len(local) > 64 or not _LOCAL.fullmatch(local):
        raise AddressError(f"{address!r} is not an email address (bad part before the @)")
    try:
        ascii_domain = normalize_domain(domain)
    except AddressError as exc:
        raise AddressError(f"{address!r} is not an email address: {exc}") from None
    normalized = f"{local.lower()}@{ascii_domain}"
    if len(normalized) > 254:
        raise AddressError(f"{address!r} is too long to be an email address")
    return normalized


def parse_mailbox(text: str) -> Mailbox:
    """Parse ``addr`` or ``Name <addr>`` as written by a person or a mail header."""
    if _CONTROL.search(text):
        raise AddressError(f"{text!r} is not an email address (it contains control characters)")
    if "<" not in text:
        return Mailbox(normalize_address(text))
    try:
        header = policy.default.header_factory("To", text)
        addresses = header.addresses
    except (HeaderParseError, IndexError, ValueError, AttributeError, TypeError):
        # The email package's parser raises more than HeaderParseError on odd input.
        raise AddressError(f"{text!r} is not an email address") from None
    if len(addresses) != 1 or not addresses[0].addr_spec or "@" not in addresses[0].addr_spec:
        raise AddressError(f"{text!r} is not one email address")
    found = addresses[0]
    name = found.display_name.strip()
    # The name may come from encoded-words, which can hide line breaks of any kind.
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in name):
        raise AddressError(f"{text!r} has a line break or control character in its name")
    return Mailbox(normalize_address(found.addr_spec), name)


_SEPARATORS = frozenset(",;\n\r")


def split_addresses(text: str) -> list[str]:
    """The addresses a person typed in one box, as written (not yet checked).

    Separated by commas, semicolons or line breaks, as mail programs accept them;
    a separator inside a quoted display name or inside ``<…>`` is part of the
    address (``"Doe, Jo" <jo@example.org>`` is one), and empty pieces are dropped.
    Checking each piece is ``parse_mailbox``'s: a box of five with one typo still
    says which four are good.
    """
    pieces: list[str] = []
    current: list[str] = []
    quoted = angled = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"' and not angled:
            quoted = not quoted
        elif char == "<" and not quoted:
            angled = True
        elif char == ">" and not quoted:
            angled = False
        elif char in _SEPARATORS and not quoted and not angled:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return [piece.strip() for piece in pieces if piece.strip()]
