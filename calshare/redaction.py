"""What an inbound mail leaves at rest: a readable copy with every secret taken out.

Mails that reach us quote our own: an unclear answer quotes the invitation (its
live token), a delay report quotes the welcome mail (the feed secret). Kept as
sent, they would put live secrets in the database, where only hashes belong. So
the copy kept for operators (``inbound_raw``, ``inbox.keep_raw_days``) is not the
raw bytes: headers and text parts are decoded first (quoted-printable, base64,
RFC 2047 words, the part's charset), base64 blocks quoted inside text are decoded
and dropped if they hide a token, and then every token-shaped run, however
escaped, is replaced (``tokens.redact``). Parts that are not text are not kept;
only their type and size are. What is stored is the very text that was scanned,
so no transfer encoding can carry a secret past the scan.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.errors
import email.header
import email.message
import logging
import re
from email import policy
from functools import lru_cache

from calshare.tokens import TOKEN_LENGTH, redact

log = logging.getLogger(__name__)

# Lines of base64 alphabet, as a quoted raw message (a bounce that pastes the original)
# carries its base64 body; 36 characters are the least that can hold a whole token.
_BASE64_BLOCK = re.compile(
    r"(?m)^(?:[ \t>]*[A-Za-z0-9+/]{16,}={0,2}[ \t]*(?:\r?\n|\Z))+",
)
_MIN_BASE64 = (TOKEN_LENGTH * 4 + 2) // 3
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")
_NOT_KEPT = "[base64 text holding a token-shaped string: not kept]\n"


def redact_text(text: str) -> str:
    """``tokens.redact``, after dropping base64 blocks that decode to a token."""
    return redact(_BASE64_BLOCK.sub(_base64_block, text))


def _base64_block(found: re.Match[str]) -> str:
    block = found[0]
    letters = re.sub(r"[^A-Za-z0-9+/]", "", re.sub(r"(?m)^[ \t>]+", "", block))
    if len(letters) < _MIN_BASE64:
        return block
    # the block may start mid-stream (a quote cut it): try each alignment
    for skip in range(4):
        usable = letters[skip:]
        usable = usable[: len(usable) - len(usable) % 4]
        try:
            decoded = base64.b64decode(usable).decode("latin-1")
        except (binascii.Error, ValueError):
            continue
        if redact_text(decoded) != decoded:
            return _NOT_KEPT
    return block


def _header_text(value: str) -> str:
    """A header's value as a reader sees it: RFC 2047 words decoded, else dropped."""
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (email.errors.HeaderParseError, LookupError, UnicodeError, ValueError):
        return _ENCODED_WORD.sub("[encoded text]", value)


def _body_text(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    try:
        return payload.decode(charset, "replace")
    except (UnicodeError, LookupError, ValueError):  # codecs that cannot even replace
        return payload.decode("latin-1")


NOTE = "X-Calshare-Copy: decoded; token-shaped strings replaced by …; non-text parts left out"


def _copy(message: email.message.Message) -> str:
    lines: list[str] = [NOTE]
    for number, part in enumerate(message.walk()):
        if number:
            lines.append(f"\n--- part {number}: {part.get_content_type()}")
        for name, value in part.items():
            lines.append(f"{name}: {redact_text(_header_text(str(value)))}")
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        if part.get_content_maintype() in ("text", "message", "multipart"):
            lines.append("")
            lines.append(redact_text(_body_text(part)))
        else:
            lines.append(f"\n[{part.get_content_type()}, {size} bytes: not kept]")
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=2)  # one message is stored once per recipient: read it once
def redact_mail(raw: bytes) -> bytes:
    """The copy of an inbound message that may be stored: decoded, secrets replaced by "…".

    Never raises: a message Python's parser cannot walk is kept as a one-line note,
    so storing the inbound log never fails because of what a mail contains.
    """
    try:
        message = email.message_from_bytes(raw, policy=policy.compat32)
        return _copy(message).encode("utf-8", "replace")
    except Exception as exc:  # noqa: BLE001 - hostile input: the record must still be written
        log.warning("inbox: a mail could not be read for its stored copy (%s)", type(exc).__name__)
        return f"[{len(raw)} bytes that could not be read: not kept]\n".encode()
