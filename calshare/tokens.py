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
_HEX = "3[2-7]|4[1-9A-Fa-f]|5[0-9Aa]|6[1-9A-Fa-f]|7[0-9Aa]"  # the codes of 2-7, A-Z, a-z
_DECIMAL = "5[0-5]|6[5-9]|[78][0-9]|90|9[7-9]|1[01][0-9]|12[0-2]"
# A character of a token as a mail or a URL may write it: an escape (=XX
# quoted-printable, %XX URL, both twice, &#NN; HTML), or nothing at all: a
# quoted-printable soft line break joins the two halves of a split token.
_ESCAPE = rf"(?:=|%|%25|=25)(?:{_HEX})|&\#0*(?:{_DECIMAL});|&\#[xX]0*(?:{_HEX});"
_SOFT_BREAK = r"=\r?\n"
# Runs of letters and those; the lookahead (plain characters only, no callback) skips
# the text that cannot hold 26 of them at once: a megabyte of prose in about 60 ms.
_RUN = re.compile(
    rf"(?=[A-Za-z0-9=%&#;\r\n]{{{TOKEN_LENGTH}}})(?:[A-Za-z2-7]+|{_SOFT_BREAK}|{_ESCAPE})+"
)
_ONE = re.compile(_ESCAPE)
_BREAK = re.compile(_SOFT_BREAK)
_TRAILING_SPACE = re.compile(r"=[ \t]+(?=\r?\n)")


def _hide(run: re.Match[str]) -> str:
    text = run[0]
    characters = len(_ONE.sub("x", _BREAK.sub("", text)))
    return "…" if characters >= TOKEN_LENGTH else text


def holds_token(text: str) -> bool:
    """Whether ``redact`` would hide anything in ``text``."""
    return any(_hide(run) == "…" for run in _RUN.finditer(_TRAILING_SPACE.sub("=", text)))


def redact(text: str) -> str:
    """Text with anything shaped like a token replaced by "…": for logs, stored reasons,
    and addresses kept in the inbound log (``share+…@domain``).

    Any run of 26 or more base32 characters counts, however it is written: a token
    with a letter glued to it, in upper case, split by a quoted-printable soft line
    break, or spelled with =XX, %XX or &#NN; escapes. No English word is that long.
    """
    return _RUN.sub(_hide, _TRAILING_SPACE.sub("=", text))


def log_id(token: str) -> str:
    """A short, non-secret name for a token in log lines: a prefix of its hash."""
    return token_hash(token)[:12]
