"""What is this message? A pure function from bytes (and envelope) to a verdict.

The order of the questions is the safety of the answers: a bounce or an
auto-reply often quotes the invitation, Accept link and all, so those are
recognised first and are never read as an answer. Only then is the token looked
for, and only then the answer: from the address the mail was sent to, from the
subject, or from the first words the person wrote, in English or Norwegian.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import re
import weakref
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses
from enum import StrEnum
from typing import Any, NamedTuple

from calshare.addresses import normalize_address
from calshare.errors import AddressError
from calshare.links import ANSWER_FORMS, parse_address, quoted_answer
from calshare.links import RecipientForm as RecipientForm  # re-exported: the verdict's form
from calshare.tokens import parse_token, redact


class VerdictKind(StrEnum):
    """What a message is to the inbox; the inbound log's ``kind`` holds these values."""

    ACCEPT = "accept"
    DECLINE = "decline"
    AUTO_REPLY = "auto-reply"
    BOUNCE = "bounce"
    UNKNOWN = "unknown"


_BARE_LINE_END = re.compile(rb"\r(?!\n)|(?<!\r)\n")
# What a client puts before a subject it answers or forwards (en, nb/da/sv, de, nl, pl, fi …).
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|sv|aw|antw|vs|odp|vá|rif|r|fw|fwd|vs|wg|tr)\s*(?:\[\d+\])?\s*:\s*)+",
    re.IGNORECASE,
)
_ANSWER_SUBJECT = {
    "accept": VerdictKind.ACCEPT,
    "accepted": VerdictKind.ACCEPT,
    "godta": VerdictKind.ACCEPT,
    "godtatt": VerdictKind.ACCEPT,
    "decline": VerdictKind.DECLINE,
    "declined": VerdictKind.DECLINE,
    "avslå": VerdictKind.DECLINE,
    "avslått": VerdictKind.DECLINE,
}
_ANSWER_WORDS = {
    VerdictKind.ACCEPT: (
        "accept",
        "accepted",
        "i accept",
        "yes",
        "ok",
        "okay",
        "godta",
        "godtar",
        "ja",
        "jeg godtar",
    ),
    VerdictKind.DECLINE: (
        "decline",
        "declined",
        "i decline",
        "no",
        "no thanks",
        "avslå",
        "avslår",
        "nei",
        "nei takk",
        "jeg avslår",
    ),
}
_QUOTE_HEADER = re.compile(
    r"^(on\b.*\bwrote:?|den\b.*\bskrev:?|am\b.*\bschrieb:?|.*\b(wrote|skrev|schrieb):\s*$"
    r"|-+\s*original message\s*-+|-+\s*opprinnelig melding\s*-+|_{5,}|from:\s.*|fra:\s.*)$",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status notification|failure|has failed)|mail delivery failed"
    r"|returned mail|failure notice|delivery notification|non.?delivery|could not be delivered"
    r"|unzustellbar|kan ikke leveres|ikke levert|warning: could not send|delivery warning"
    r"|error during delivery|mail system error|delivery problem|user unknown|no such user",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response|svar)|out of (the )?office|abwesenheit|fravær|"
    r"autosvar|automatisk svar|vacation|ferie)",
    re.IGNORECASE,
)
_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon")


@dataclass(frozen=True)
class Verdict:
    """The inbox's reading of one message for one recipient."""

    kind: VerdictKind
    reason: str  # for people (the log): never read back to decide anything
    token: str | None = None  # the invitation token, if found (never logged)
    form: RecipientForm | None = None  # the address form it was sent to
    bounce_key: str | None = None  # bounces+<key>@…: which of our mails bounced
    sender: str | None = None  # the normalised From address, if any
    message_id: str = ""
    # the recipients a delivery report names (Final-/Original-Recipient), lower case
    reported: tuple[str, ...] = ()
    # a bounce known by its subject alone (anyone can write "Returned mail" in a subject):
    # it counts only from the null sender, as real bounces come
    weak: bool = False


@dataclass(frozen=True)
class Inbound:
    """One received message, as delivered to one of our addresses.

    Defined here, by the inbox that reads it, so that the inbox never imports the
    code that acts on it (``calshare.answers``): that code is handed in.
    """

    raw: bytes
    mail_from: str
    recipient: str
    verdict: Verdict
    authenticated: bool  # Authentication-Results met [inbox] require_auth (or none required)
    in_reply_to: str | None = None


@dataclass(frozen=True)
class ParsedMail:
    message: Message
    message_id: str
    raw: bytes


def unreadable(raw: bytes, message_id: str | None = None) -> Verdict:
    """The verdict for a message the parser or classifier could not get through."""
    if message_id is None:
        message_id = "<sha256-" + hashlib.sha256(raw).hexdigest()[:40] + "@calshare.invalid>"
    return Verdict(VerdictKind.UNKNOWN, "the message could not be read", message_id=message_id)


def normalize_line_ends(raw: bytes) -> bytes:
    """Bare CR or LF become CRLF: one shape of line end before anything reads the message."""
    return _BARE_LINE_END.sub(b"\r\n", raw)


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse leniently; the standard library records defects instead of raising.

    compat32, not policy.default: the inbox reads a handful of headers, and
    policy.default builds a typed header object for each one it touches, which
    costs eight times the parse itself. Headers are decoded where they are read.
    """
    raw = normalize_line_ends(raw)
    message: Message
    try:
        message = message_from_bytes(raw, policy=policy.compat32)
    except RecursionError:  # nested past the interpreter's limit: the headers, read plainly
        message = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    message_id = _header(message, "Message-ID").strip()
    if not message_id:
        # No Message-ID: the bytes name the message, for telling duplicates apart.
        message_id = "<sha256-" + hashlib.sha256(raw).hexdigest()[:40] + "@calshare.invalid>"
    return ParsedMail(message, message_id, raw)


_SURROGATE = re.compile("[\udc80-\udcff]")


# What has been read of each message, so that the second recipient of a message (of up
# to max_recipients) costs nothing more: first header values by name, header values
# as text, the body text. A message is not changed once parsed; the entry goes with it.
_READ: weakref.WeakKeyDictionary[Message, dict[str, str]] = weakref.WeakKeyDictionary()
_FIRST: weakref.WeakKeyDictionary[Message, dict[str, str]] = weakref.WeakKeyDictionary()
# The longest header value read: no header the classifier reads is longer in real mail,
# and decoding encoded-words and address lists is not linear in the length.
HEADER_READ_CHARS = 16 * 1024
_BODY = "\0body"
# How much of the body text is read: the first lines decide, and an invitation quoted
# back (for its token) comes early. Every recipient's reading is bounded by it.
BODY_READ_CHARS = 64 * 1024
_SENDER = "\0sender"  # the body text's key among a message's header values (no header is named so)


def _header(message: Message, name: str) -> str:
    """A header as text: RFC 2047 encoded-words decoded, raw 8-bit read as UTF-8, one line.

    The raw value is read (compat32's get() turns 8-bit bytes into U+FFFD, which
    would lose an IDN From or a Norwegian subject), and the result is plain text:
    no surrogates, whatever codec an encoded-word names. Read once per message.
    """
    read = _READ.setdefault(message, {})
    wanted = name.lower()
    if wanted not in read:
        read[wanted] = _read_header(message, wanted)
    return read[wanted]


def _read_header(message: Message, wanted: str) -> str:
    first = _FIRST.get(message)
    if first is None:
        first = {}
        try:
            for key, value in message.raw_items():
                first.setdefault(key.lower(), value)
        except (ValueError, TypeError, IndexError, AttributeError, RecursionError):
            pass  # a malformed header: it and those after it as absent
        _FIRST[message] = first
    if wanted not in first:
        return ""
    text = str(first[wanted])[:HEADER_READ_CHARS]
    if _SURROGATE.search(text):  # 8-bit bytes in a header (SMTPUTF8 or a sloppy client)
        text = text.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    if "=?" in text:
        # Not valid encoded-words after all: read as written.
        with contextlib.suppress(MessageError, ValueError, LookupError, UnicodeError):
            text = str(make_header(decode_header(text)))
    text = text.encode("utf-8", "replace").decode("utf-8")  # e.g. =?unicode-escape?…?= surrogates
    return " ".join(text.split())


def addresses(message: Message, name: str) -> list[str]:
    """The addresses in a header (From, To, Delivered-To …), as written."""
    return [address for _, address in getaddresses([_header(message, name)]) if "@" in address]


def _sender(message: Message) -> str | None:
    read = _READ.setdefault(message, {})
    if _SENDER not in read:
        read[_SENDER] = _read_sender(message) or ""
    return read[_SENDER] or None


def _read_sender(message: Message) -> str | None:
    for address in addresses(message, "From"):
        try:
            return normalize_address(address)
        except AddressError:
            return None
    return None


def is_auto_reply(message: Message) -> str | None:
    """Why this is an automatic answer (RFC 3834 and the shapes Exchange and others use)."""
    auto = _header(message, "Auto-Submitted").lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated", "X-AutoReply-From"):
        if _header(message, name):
            return f"{name} header"
    precedence = _header(message, "Precedence").lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    if _header(message, "X-MS-Exchange-Inbox-Rules-Loop") or _header(
        message, "X-MS-Exchange-Generated-Message-Source"
    ):
        return "an Exchange rule or out-of-office message"
    if _header(message, "List-Id") or _header(message, "List-Unsubscribe"):
        return "mailing-list mail"
    subject = _strip_prefixes(_header(message, "Subject"))
    if _AUTO_SUBJECT.match(subject):
        return f"automatic-reply subject {subject[:40]!r}"
    return None


class Bounce(NamedTuple):
    """Why a message is a delivery failure report, and whether only its subject says so."""

    reason: str
    weak: bool = False


def is_bounce(message: Message, mail_from: str) -> Bounce | None:
    """Why this is a delivery failure report (DSN or the common non-standard shapes)."""
    content_type = message.get_content_type()
    if content_type == "multipart/report":
        return Bounce(f"multipart/report ({message.get_param('report-type') or 'no report-type'})")
    if any(part.get_content_type() == "message/delivery-status" for part in _parts(message)):
        return Bounce("a message/delivery-status part")
    senders = [
        _header(message, "From").lower(),
        _header(message, "Return-Path").lower(),
        mail_from.strip("<> ").lower(),
    ]
    if any(name in sender for sender in senders for name in _DAEMONS):
        return Bounce("from a mailer daemon")
    subject = _strip_prefixes(_header(message, "Subject"))
    if _ANSWER_PREFIX.match(subject):
        return None  # our own Accept:/Decline: subject, whatever the calendar is called
    if _BOUNCE_SUBJECT.search(subject):
        return Bounce(f"{WEAK_BOUNCE} {subject[:40]!r}", weak=True)
    return None


# How the reason of a bounce recognised by its subject alone begins (``Bounce.weak``
# says it; this is only its wording).
WEAK_BOUNCE = "a delivery-failure subject"
_ANSWER_PREFIX = re.compile(r"(accept|decline|godta|avslå)\s*:", re.IGNORECASE)


_DELAY_SUBJECT = re.compile(
    r"delay|not yet (been )?delivered|still being retried|warning|postponed", re.IGNORECASE
)
_DELAY_TEXT = re.compile(
    r"this is (just )?a warning|warning only|not yet been delivered|no action is required"
    r"|will (continue to )?(try|retry|attempt)|still being retried|postponed|advisory",
    re.IGNORECASE,
)
_NOT_FAILED = frozenset({"delayed", "delivered", "relayed", "expanded"})


def is_delay_warning(message: Message) -> bool:
    """A report that delivery is late, not that it failed (DSN Action: delayed, or in words)."""
    actions = set()
    for part in _parts(message):
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        for block in payload if isinstance(payload, list) else []:
            action = _header(block, "Action").lower() if isinstance(block, Message) else ""
            if action:
                actions.add(action.split()[0])
    if actions:
        return actions <= _NOT_FAILED
    subject = _strip_prefixes(_header(message, "Subject"))
    return bool(_DELAY_SUBJECT.search(subject) and _DELAY_TEXT.search(body_text(message)[:20000]))


def reported_recipients(message: Message) -> tuple[str, ...]:
    """The addresses a delivery status report says it is about (RFC 3464 §2.3.1–2.3.2).

    Final-Recipient and Original-Recipient of type rfc822, lower case; empty for the
    many bounces that are not standard reports. A report that names recipients and
    not ours is not about our mail, whatever address it was sent to.
    """
    found: list[str] = []
    for part in _parts(message):
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        for block in payload if isinstance(payload, list) else []:
            if not isinstance(block, Message):
                continue
            for name in ("Original-Recipient", "Final-Recipient"):
                kind, _, address = _header(block, name).partition(";")
                address = address.strip().strip("<>").strip().lower()
                if kind.strip().lower() == "rfc822" and "@" in address and address not in found:
                    found.append(address)
    return tuple(found)


def _parts(message: Message) -> list[Message]:
    try:
        return list(message.walk())
    except (ValueError, TypeError, IndexError, AttributeError, RecursionError):
        return [message]


def _strip_prefixes(subject: str) -> str:
    return _REPLY_PREFIX.sub("", subject).strip()


# A tag: its name, then attributes with quoted values read whole (a ">" inside quotes
# does not end it). Possessive quantifiers: a tag that never ends fails in one pass,
# never by backtracking through every way of splitting it.
_TAG = re.compile(
    r"""<(/?)([a-zA-Z][^\s/>]*+)((?:[^>"'=]++|=\s*+"[^"]*+"|=\s*+'[^']*+'|[="'])*+)>"""
)
_CLASS = re.compile(r"""(?:^|\s)class\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))""", re.I)
_RAW_TEXT_END = {
    name: re.compile(rf"</{name}(?=[\s/>])", re.IGNORECASE) for name in ("style", "script")
}
_HIDDEN = frozenset({"style", "script", "head", "title"})
_BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "table", "blockquote"})
# How much of an HTML part is read: the first lines decide (a reply's words come before
# what it quotes), and even Outlook's long <head> of styles is a small part of this.
HTML_READ_CHARS = 128 * 1024


def html_to_text(markup: str) -> str:
    """HTML as text, leaving out what replies quote (blockquote, Gmail's gmail_quote,
    Outlook's divRplyFwdMsg) and what is not shown (head, title, style, script).

    One pass over at most ``HTML_READ_CHARS``, linear whatever the markup: html.parser
    takes quadratic time on unclosed tags and attributes, and one small hostile mail
    held the whole inbox for seconds. A tag, comment or declaration that never ends
    takes the rest of the document with it, as in a browser.
    """
    markup = markup[:HTML_READ_CHARS]
    out: list[str] = []
    quoted = hidden = 0  # depth inside a quote, inside what is not shown
    position, end = 0, len(markup)
    while position < end:
        opening = markup.find("<", position)
        if opening != position:  # text up to the next tag
            opening = end if opening < 0 else opening
            if not quoted and not hidden:
                out.append(html.unescape(markup[position:opening]))
            position = opening
            continue
        tag = _TAG.match(markup, position)
        if tag is None:
            if markup.startswith("<!--", position):
                close = markup.find("-->", position + 4)
                position = end if close < 0 else close + 3
            elif markup.startswith(("<!", "<?", "</"), position):
                close = markup.find(">", position + 2)
                position = end if close < 0 else close + 1
            elif markup[position + 1 : position + 2].isalpha():
                break  # a start tag that never ends
            else:  # "a < b": a character, not markup
                if not quoted and not hidden:
                    out.append("<")
                position += 1
            continue
        position = tag.end()
        closing, name, attributes = tag[1], tag[2].lower(), tag[3]
        if not closing:
            found = _CLASS.search(attributes)
            classes = "".join(value or "" for value in found.groups()) if found else ""
            quoting = name == "blockquote" or "quote" in classes or "divRplyFwdMsg" in attributes
            if quoted or quoting:
                quoted += 1
            if name in _HIDDEN:
                hidden += 1
            if name in _BLOCKS:
                out.append("\n")
            if name in _RAW_TEXT_END and not attributes.endswith("/"):
                # style and script hold no markup: on to their end tag (unseen: to the end)
                close_tag = _RAW_TEXT_END[name].search(markup, position)
                position = end if close_tag is None else close_tag.start()
            if not attributes.endswith("/"):
                continue
        # an end tag, or a start tag that closes itself (<br/>)
        if quoted:
            quoted -= 1
        if name in _HIDDEN and hidden:
            hidden -= 1
        if name in _BLOCKS:
            out.append("\n")
    return "".join(out)


def body_text(message: Message) -> str:
    """The person's words: the text/plain part, else the HTML part as text.

    Read once per message, however many recipients it has (see ``_READ``).
    """
    read = _READ.setdefault(message, {})
    if _BODY not in read:
        read[_BODY] = _body_text(message)[:BODY_READ_CHARS]
    return read[_BODY]


def _body_text(message: Message) -> str:
    plain = html_part = None
    for part in _parts(message):
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain" and plain is None:
            plain = part
        elif content_type == "text/html" and html_part is None:
            html_part = part
    chosen = plain or html_part
    if chosen is None:
        return ""
    text = part_text(chosen)
    return html_to_text(text) if chosen is html_part and plain is None else text


def part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except (LookupError, ValueError):  # a charset Python does not know, or a broken name
        return payload.decode("utf-8", errors="replace")


def first_words(text: str) -> str:
    """The first line the person wrote: not quoted, not a greeting of the quote, not empty."""
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(">") or _QUOTE_HEADER.match(stripped):
            return ""
        return stripped
    return ""


_NOT_AN_ANSWER = re.compile(r"^(no (problem|worries)|nei så)\b")  # "Nei, så hyggelig!": how nice
_CONTRARY = frozenset({"but", "not", "rather", "men", "ikke", "heller", "aber", "nicht"})


def answer_in_words(text: str) -> VerdictKind | None:
    """accept/decline if the line is one of the answer words (and nothing much else)."""
    if "?" in text:  # "Yes? What is this?" asks, it does not answer
        return None
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    if not words or len(words) > 6:
        return None
    phrase = " ".join(words)
    if _NOT_AN_ANSWER.match(phrase):
        return None
    for kind, choices in _ANSWER_WORDS.items():
        for choice in choices:
            if phrase == choice or phrase.startswith(choice + " "):
                # "OK, but I'd rather not": a yes with a but is no yes (a no with one stays no)
                return (
                    None if kind == VerdictKind.ACCEPT and _CONTRARY.intersection(words) else kind
                )
    return None


def classify(mail: ParsedMail, *, mail_from: str, recipient: str, domain: str) -> Verdict:
    """The verdict for this message as delivered to ``recipient``."""
    try:
        return _classify(mail, mail_from=mail_from, recipient=recipient, domain=domain)
    except RecursionError:  # header comments or parts nested past the interpreter's limit
        return unreadable(mail.raw, mail.message_id)


def _classify(mail: ParsedMail, *, mail_from: str, recipient: str, domain: str) -> Verdict:
    message = mail.message
    sender = _sender(message)
    form, detail = parse_address(recipient, domain.lower())
    token = parse_token(detail) if form in ANSWER_FORMS and detail else None

    def verdict(kind: VerdictKind, reason: str, **found: Any) -> Verdict:
        # A reason quotes the message; the message may quote a token.
        return Verdict(kind, redact(reason), sender=sender, message_id=mail.message_id, **found)

    bounce = is_bounce(message, mail_from)
    if bounce and is_delay_warning(message):
        why = f"a delay warning, still being retried ({bounce.reason})"
        return verdict(VerdictKind.AUTO_REPLY, why, form=form)
    if form == RecipientForm.BOUNCES:
        auto = None if bounce else is_auto_reply(message)
        if auto:  # RFC 3834 responders answer the Return-Path: proof of delivery, not a bounce
            return verdict(
                VerdictKind.AUTO_REPLY, f"sent to a bounce address, but {auto}", form=form
            )
        reported = reported_recipients(message)
        why = "sent to a bounce address"
        return verdict(VerdictKind.BOUNCE, why, bounce_key=detail, form=form, reported=reported)
    if bounce:
        reported = reported_recipients(message)
        return verdict(
            VerdictKind.BOUNCE,
            bounce.reason,
            token=token,
            form=form,
            reported=reported,
            weak=bounce.weak,
        )
    auto = is_auto_reply(message)
    if auto:
        return verdict(VerdictKind.AUTO_REPLY, auto, form=form)
    if not mail_from.strip("<> "):
        # RFC 5321: the null sender is for notifications, never for a person's answer.
        return verdict(VerdictKind.AUTO_REPLY, "null sender", form=form)

    subject = _header(message, "Subject")
    text = body_text(message)
    from_address = token is not None
    if token is None:
        _, token = quoted_answer(f"{subject}\n{text}", domain)  # quoted links: words decide
        if token is None:
            return verdict(
                VerdictKind.UNKNOWN, "no invitation token in the address, subject or body"
            )
    # accept+<not a token>: the address form decides only with its own token; a token
    # found in quoted text may come from the other link (only the words decide then)
    if form in (RecipientForm.ACCEPT, RecipientForm.DECLINE) and from_address:
        assert form is not None
        kind = VerdictKind(form.value)
        return verdict(kind, f"sent to the {form}+ address", token=token, form=form)
    head = _strip_prefixes(subject).split(":", 1)
    if len(head) == 2 and head[0].strip().lower() in _ANSWER_SUBJECT:
        kind = _ANSWER_SUBJECT[head[0].strip().lower()]
        return verdict(kind, f"subject starts {head[0].strip()!r}", token=token, form=form)
    words = first_words(text)
    answer = answer_in_words(words)
    if answer:
        return verdict(answer, f"first line says {words[:30]!r}", token=token, form=form)
    why = "no accept or decline in the subject or first line"
    return verdict(VerdictKind.UNKNOWN, why, token=token, form=form)
