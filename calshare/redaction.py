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

from calshare.tokens import TOKEN_LENGTH, holds_token, redact

log = logging.getLogger(__name__)

# Lines of base64 alphabet, as a quoted raw message (a bounce that pastes the original)
# carries its base64 body, its short last line too; 36 characters are the least that
# can hold a whole token.
_BASE64_BLOCK = re.compile(r"(?m)^(?:[ \t>]*[A-Za-z0-9+/]+={0,2}[ \t]*(?:\r?\n|\Z))+")
_MIN_BASE64 = (TOKEN_LENGTH * 4 + 2) // 3
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")
_NOT_KEPT = "[base64 text holding a token-shaped string: not kept]\n"


_MAX_NESTING = 3  # base64 inside base64 inside…: the work is bounded whatever a mail holds
# The key of a bounce address is a secret too (it lets a report count), and hex, not
# base32: a report quotes it in To, Return-Path, Received and Final-Recipient.
_BOUNCE_KEY = re.compile(r"(bounces(?:\+|=2B|%2B))[^@\s<>\"';,]+", re.IGNORECASE)


def redact_text(text: str, depth: int = 0) -> str:
    """``tokens.redact``, after dropping base64 blocks that decode to a token; bounce keys too."""
    if depth < _MAX_NESTING:
        text = _BASE64_BLOCK.sub(lambda found: _base64_block(found, depth + 1), text)
    return redact(_BOUNCE_KEY.sub(r"\1…", text))


def _hides_token(text: str, depth: int) -> bool:
    if holds_token(text):
        return True
    if depth >= _MAX_NESTING:
        return False
    blocks = _BASE64_BLOCK.finditer(text)
    return any(_base64_block(found, depth + 1) == _NOT_KEPT for found in blocks)


def _base64_block(found: re.Match[str], depth: int) -> str:
    block = found[0]
    letters = re.sub(r"[^A-Za-z0-9+/]", "", re.sub(r"(?m)^[ \t>]+", "", block))
    if len(letters) < _MIN_BASE64:
        return block
    # the block may start mid-stream (a quote cut it): try each alignment
    for skip in range(4):
        usable = letters[skip:]
        if len(usable) % 4 == 1:  # a lone character decodes to nothing
            usable = usable[:-1]
        usable += "=" * (-len(usable) % 4)  # its padding went with the other symbols
        try:
            decoded = base64.b64decode(usable).decode("latin-1")
        except (binascii.Error, ValueError):
            continue
        if _hides_token(decoded, depth):
            return _NOT_KEPT
    return block


READ_BYTES = 2 * 1024 * 1024  # of the message: parsing is per line, so bounded too
PART_CHARACTERS = 256 * 1024  # of each text part; an answer or a bounce is far shorter
COPY_CHARACTERS = 1024 * 1024  # of the whole copy: the scan's work is bounded by these
# What a cut may have gone through: a token's run, at most 26 escapes long (with soft breaks)
_RUN_TAIL = re.compile(r"[A-Za-z0-9=%&#;\r\n]*\Z")
_RUN_TAIL_BYTES = re.compile(rb"[A-Za-z0-9=%&#;\r\n]*\Z")
_TAIL = 512


def _cut(text: str, limit: int) -> str:
    """``text[:limit]`` less the run the cut went through, so no part of a token stays."""
    head = text[:limit]
    run = _RUN_TAIL.search(head[-_TAIL:])
    return head[: len(head) - len(run[0])] if run else head


def _kept(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text``, redacted; a cut never leaves part of a token."""
    if len(text) <= limit:
        return redact_text(text)
    head = redact_text(_cut(text, limit))
    return f"{head}\n[{len(text) - len(head)} more characters not kept]"


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
    budget = COPY_CHARACTERS
    for number, part in enumerate(message.walk()):
        if number:
            lines.append(f"\n--- part {number}: {part.get_content_type()}")
        for name, value in part.items():
            lines.append(f"{redact(name)}: {_kept(_header_text(str(value)), 4096)}")
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        if budget <= 0:
            lines.append("\n[not kept: the copy is full]")
        elif part.get_content_maintype() in ("text", "message", "multipart"):
            text = _kept(_body_text(part), min(budget, PART_CHARACTERS))
            budget -= len(text)
            lines.append("")
            lines.append(text)
        else:
            lines.append(f"\n[{part.get_content_type()}, {size} bytes: not kept]")
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=2)  # one message is stored once per recipient: read it once
def redact_mail(raw: bytes) -> bytes:
    """The copy of an inbound message that may be stored: decoded, secrets replaced by "…".

    Never raises: a message Python's parser cannot walk is kept as a one-line note,
    so storing the inbound log never fails because of what a mail contains.
    """
    note = ""
    if len(raw) > READ_BYTES:  # the cut goes back past the run it went through
        head = raw[:READ_BYTES]
        run = _RUN_TAIL_BYTES.search(head[-_TAIL:])
        head = head[: len(head) - len(run[0])] if run else head
        note = f"\n[{len(raw) - len(head)} more bytes of the message not read]\n"
        raw = head
    try:
        message = email.message_from_bytes(raw, policy=policy.compat32)
        return (_copy(message) + note).encode("utf-8", "replace")
    except Exception as exc:  # noqa: BLE001 - hostile input: the record must still be written
        log.warning("inbox: a mail could not be read for its stored copy (%s)", type(exc).__name__)
        return f"[{len(raw)} bytes that could not be read: not kept]\n".encode()
