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

from calshare.links import hide_bounce_key
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


def redact_text(text: str, depth: int = 0) -> str:
    """``tokens.redact``, after dropping base64 blocks that decode to a token; bounce keys too."""
    if depth < _MAX_NESTING:
        text = _BASE64_BLOCK.sub(lambda found: _base64_block(found, depth + 1), text)
    return redact(hide_bounce_key(text))


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
# Of the whole stored copy, in UTF-8 bytes, every line counted (part separators and
# headers too): the copy is never larger than this, whatever the mail holds.
COPY_BYTES = 1024 * 1024
COPY_CHARACTERS = COPY_BYTES  # the name it had; a character is at least a byte
MAX_PARTS = 64  # parts walked: an answer or a bounce has a handful; each costs time
_RESERVE = 256  # of COPY_BYTES, for the closing notes ("the copy is full", "not read")
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


class _Copy:
    """The lines of a copy, each counted in UTF-8 bytes against what is left of the budget."""

    def __init__(self, budget: int) -> None:
        self.lines: list[str] = [NOTE]
        self.left = budget - _size(NOTE)
        self.full = False

    def add(self, line: str) -> bool:
        """Keep ``line`` if it fits; once one does not, the copy is full and keeps no more."""
        size = _size(line)
        if self.full or size > self.left:
            self.full = True
            return False
        self.lines.append(line)
        self.left -= size
        return True


def _size(line: str) -> int:
    return len(line.encode("utf-8", "replace")) + 1  # and its line end


def _body(copy: _Copy, part: email.message.Message) -> None:
    text = _body_text(part)
    limit = min(copy.left, PART_CHARACTERS) - 64  # room for "[… more characters not kept]"
    for cut in (limit, limit // 4):  # a character is up to 4 bytes: the second always fits
        kept = _kept(text, max(0, cut))
        if _size("") + _size(kept) <= copy.left:
            copy.add("")
            copy.add(kept)
            return
    copy.full = True


def _copy(message: email.message.Message, budget: int) -> str:
    copy = _Copy(budget)
    for number, part in enumerate(message.walk()):
        if number >= MAX_PARTS:
            copy.full = True
            copy.lines.append(f"\n[parts after the first {MAX_PARTS} not kept]")
            break
        if number and not copy.add(f"\n--- part {number}: {part.get_content_type()}"):
            break
        for name, value in part.items():
            if not copy.add(f"{redact(name)}: {_kept(_header_text(str(value)), 4096)}"):
                break
        if copy.full:
            break
        if part.is_multipart():
            continue
        if part.get_content_maintype() in ("text", "message", "multipart"):
            _body(copy, part)
        else:
            payload = part.get_payload(decode=True)
            size = len(payload) if isinstance(payload, bytes) else 0
            copy.add(f"\n[{part.get_content_type()}, {size} bytes: not kept]")
        if copy.full:
            break
    if copy.full and not copy.lines[-1].startswith("\n[parts after"):
        copy.lines.append("\n[not kept: the copy is full]")
    return "\n".join(copy.lines) + "\n"


@lru_cache(maxsize=2)  # one message is stored once per recipient: read it once
def redact_mail(raw: bytes, message: email.message.Message | None = None) -> bytes:
    """The copy of an inbound message that may be stored: decoded, secrets replaced by "…".

    At most ``COPY_BYTES`` long, whatever the mail, every line counted, so the work of
    storing it is bounded too. ``message``, when given, is a parse of ``raw`` already
    made, walked again rather than parsed twice.
    Never raises: a message Python's parser cannot walk is kept as a one-line note,
    so storing the inbound log never fails because of what a mail contains.
    """
    note = ""
    if len(raw) > READ_BYTES:  # the cut goes back past the run it went through
        head = raw[:READ_BYTES]
        run = _RUN_TAIL_BYTES.search(head[-_TAIL:])
        head = head[: len(head) - len(run[0])] if run else head
        note = f"\n[{len(raw) - len(head)} more bytes of the message not read]\n"
        raw, message = head, None
    try:
        if message is None:
            message = email.message_from_bytes(raw, policy=policy.compat32)
        return (_copy(message, COPY_BYTES - _RESERVE) + note).encode("utf-8", "replace")
    except Exception as exc:  # noqa: BLE001 - hostile input: the record must still be written
        log.warning("inbox: a mail could not be read for its stored copy (%s)", type(exc).__name__)
        return f"[{len(raw)} bytes that could not be read: not kept]\n".encode()


def unread_note(size: int, why: str) -> bytes:
    """What is stored of a mail not read in time: a line, never the mail read again."""
    return f"[{size} bytes not read ({redact(why)}): no copy kept]\n".encode()
