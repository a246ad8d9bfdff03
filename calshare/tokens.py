"""The one token codec: invitation tokens and other secrets that travel in addresses and URLs.

128 random bits as lowercase base32 (26 characters, no padding): mail systems that
change the case of an address cannot break it, and it fits in the local part of
``accept+<token>@…``. Only a SHA-256 hash is ever stored; logs show a short prefix
of the hash, never the token.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable

TOKEN_BYTES = 16
TOKEN_LENGTH = 26
_TOKEN = re.compile(rf"[a-z2-7]{{{TOKEN_LENGTH}}}")

RandomBytes = Callable[[int], bytes]


def new_token(random_bytes: RandomBytes = secrets.token_bytes) -> str:
    raw = random_bytes(TOKEN_BYTES)
    if len(raw) != TOKEN_BYTES:
        raise ValueError(f"the random source gave {len(raw)} bytes, not {TOKEN_BYTES}")
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def parse_token(text: str) -> str | None:
    """The token in canonical form, or None if ``text`` cannot be one (any case accepted)."""
    candidate = text.strip().lower()
    return candidate if _TOKEN.fullmatch(candidate) else None


def token_hash(token: str) -> str:
    """What the database stores in place of the token."""
    return hashlib.sha256(token.lower().encode("ascii")).hexdigest()


_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz234567"
_HEX = "|".join(sorted({f"{ord(char):02x}" for char in _BASE32}))
_DECIMAL = "|".join(str(ord(char)) for char in _BASE32)
# One character of a token as a mail or a URL may write it: itself (any case), an
# escape (=XX quoted-printable, %XX URL, both twice, &#NN; HTML) — or nothing at
# all: a quoted-printable soft line break joins the two halves of a split token.
_UNIT = rf"""
    [A-Za-z2-7]
  | =[ \t]*\r?\n
  | (?:=|%|%25|=25)(?:{_HEX})
  | &\#0*(?:{_DECIMAL});
  | &\#x0*(?:{_HEX});
"""
_UNITS = re.compile(_UNIT, re.IGNORECASE | re.VERBOSE)
_RUN = re.compile(rf"(?:{_UNIT})+", re.IGNORECASE | re.VERBOSE)
_SOFT_BREAK = re.compile(r"=[ \t]*\r?\n")


def _hide(run: re.Match[str]) -> str:
    text = run[0]
    if len(text) < TOKEN_LENGTH:  # most runs are words: done without counting
        return text
    characters = len(_UNITS.findall(text)) - len(_SOFT_BREAK.findall(text))
    return "…" if characters >= TOKEN_LENGTH else text


def redact(text: str) -> str:
    """Text with anything shaped like a token replaced by "…": for logs, stored reasons,
    and addresses kept in the inbound log (``share+…@domain``).

    Any run of 26 or more base32 characters counts, however it is written: a token
    with a letter glued to it, in upper case, split by a quoted-printable soft line
    break, or spelled with =XX, %XX or &#NN; escapes. No English word is that long.
    """
    return _RUN.sub(_hide, text)


def log_id(token: str) -> str:
    """A short, non-secret name for a token in log lines: a prefix of its hash."""
    return token_hash(token)[:12]
