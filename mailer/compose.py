"""Compose our mails: who, what, and the headers that keep tokens out of bounce paths.

Pure: it takes what to say and returns the exact bytes to send, with the envelope
beside them. The token only ever appears in Reply-To, the mailto links and the web
link; From, Return-Path and the envelope sender carry no token, because
vacation responders and bounces go there. The envelope sender names the message
instead (``bounces+<key>@…``) so a bounce can be matched to what it bounces; the
Message-ID, which every reply quotes in In-Reply-To, holds only a one-way hash of
that key, so no one who saw an answer can write a bounce that counts.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from urllib.parse import unquote

from babel.dates import format_date

from calshare import wording
from calshare.addresses import Mailbox, normalize_domain, parse_mailbox
from calshare.levels import Level
from calshare.links import (
    RecipientForm,
    answer_address,
    answer_mailto,
    answer_page_url,
    bounce_address,
)
from calshare.subscribe import COPY_LABEL
from mailer.headers import check_generated
from mailer.templates import render

HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    "MIME-Version",
    "Content-Type",
)


@dataclass(frozen=True)
class OutgoingMail:
    """A message ready for the outbox: its bytes and its envelope."""

    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes
    subject: str


@dataclass(frozen=True)
class Sender:
    """Our side of the mail: the service's From and domain, on the owner's behalf."""

    domain: str  # mail.domain: token addresses and Message-IDs live here
    from_mailbox: Mailbox  # mail.from
    owner: Mailbox

    @property
    def owner_name(self) -> str:
        return clean(self.owner.display_name) or self.owner.address

    def from_header(self, to: Mailbox) -> Address:
        """Who the mail is from, for this recipient.

        To others: 'Ann Demo via Calendar <calendar@…>', the owner's name and our
        address (DMARC), since we write on the owner's behalf. To the owner: the
        service's own From, since a mail "from Ann via Calendar" to Ann reads as if
        she had written to herself.
        """
        service = self.from_mailbox.display_name or "calshare"
        local, _, domain = self.from_mailbox.address.rpartition("@")
        if to.address.lower() == self.owner.address.lower():
            return Address(service, local, domain)
        return Address(f"{self.owner_name} via {service}", local, domain)


# Header fields are never folded below the RFC's 998 octets: CPython's folder (3.11 to
# 3.13) drops the quotes around a display name it splits, turning a name with
# "<…@…>" or commas in it into extra addresses. POLICY writes the message.
POLICY = SMTP.clone(max_line_length=998)
# Bodies are encoded with RFC 2045's 76-character lines: the email package takes the
# quoted-printable and base64 line length from the policy of the message it encodes
# into, so the message is built with BODY_POLICY and written with POLICY. (998 made
# base64 lines of 996 characters and long quoted-printable lines, which spam filters
# score: SpamAssassin's BASE64_LENGTH_79_INF and MIME_QP_LONG_LINE.)
BODY_LINE = 76
BODY_POLICY = SMTP.clone(max_line_length=BODY_LINE)
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def clean(text: str, limit: int = 200) -> str:
    """Text that is safe in a header: one line, no encoded-word lookalikes, not too long.

    Names and calendar names are the owner's and invitee's words: whatever they
    hold, a header gets one line of it, never a line break or a forged =?…?=.
    """
    text = " ".join(_BREAKS.sub(" ", text).split()).replace("=?", "= ?")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def new_message_key() -> str:
    """The unique part of a Message-ID and of its bounce address."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Attachment:
    """A file sent beside the text: the snapshot's .ics."""

    content: bytes
    content_type: str  # "text/calendar"
    filename: str
    params: tuple[tuple[str, str], ...] = ()


def to_header(name: str, local: str, domain: str) -> str | Address:
    """'Bob <bob@…>', or '<bob@…>' without a name: never the bare address, which
    spam filters read as a mass mailer's (SpamAssassin's __TO_NO_ARROWS_R)."""
    if name:
        return Address(name, local, domain)
    return f"<{Address(username=local, domain=domain).addr_spec}>"


def mailto_address(url: str) -> str:
    """The address of a ``mailto:`` link, for the plain-text part: a reader (or a text
    mail client) copies an address, and a percent-encoded subject is only noise there."""
    if not url.lower().startswith("mailto:"):
        return url
    return unquote(url[len("mailto:") :].partition("?")[0])


def message_id_for(key: str, domain: str) -> str:
    """The Message-ID of the mail whose bounce address holds ``key``.

    A one-way hash: the Message-ID is public (every reply quotes it), the key is
    not, so only a report to the address we used as envelope sender can name it.
    """
    digest = hashlib.sha256(f"calshare message-id\0{key.lower()}".encode()).hexdigest()
    return f"<{digest[:32]}@{domain}>"


def _envelope(sender: Sender, key: str) -> tuple[str, str]:
    return message_id_for(key, sender.domain), bounce_address(key, sender.domain)


def build(
    sender: Sender,
    to: Mailbox,
    subject: str,
    text: str,
    html: str,
    now: datetime,
    key: str,
    reply_to: str | Address | None = None,
    in_reply_to: str | None = None,
    attachment: Attachment | None = None,
) -> OutgoingMail:
    message_id, envelope_from = _envelope(sender, key)
    message = EmailMessage(policy=BODY_POLICY)
    message["From"] = sender.from_header(to)
    local, _, domain = to.address.rpartition("@")
    domain = normalize_domain(domain)
    message["To"] = to_header(clean(to.display_name), local, domain)
    subject = clean(subject, 400)
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    # RFC 3834: tells vacation responders not to answer; Exchange reads the other one.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    headers = list(HEADERS)
    if reply_to is not None:
        message["Reply-To"] = reply_to
        headers.append("Reply-To")
    if in_reply_to:  # answers thread under the mail they answer
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
        headers += ["In-Reply-To", "References"]
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    if attachment is not None:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
            params=dict(attachment.params),
        )
    raw = message.as_bytes(policy=POLICY)
    check_generated(raw, headers)
    return OutgoingMail(message_id, envelope_from, (f"{local}@{domain}",), raw, subject)


@dataclass(frozen=True)
class NoticeSpec:
    """Everything a notice needs, to be composed later by the sender.

    Composing costs milliseconds of the email package; the inbox's answers queue
    specs instead, so the commit that answers 250 stays short. The key is fixed
    here, so the Message-ID is the same whenever and however often it is composed.
    """

    kind: str
    sender: Sender
    to: Mailbox
    calendar: str
    lang: str
    key: str
    level: Level | None = None
    links: tuple[tuple[str, str], ...] = ()
    extra: tuple[tuple[str, str], ...] = ()
    reply_to: str | None = None
    in_reply_to: str | None = None

    @property
    def message_id(self) -> str:
        return _envelope(self.sender, self.key)[0]

    @property
    def envelope_from(self) -> str:
        return _envelope(self.sender, self.key)[1]

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "sender": [
                    self.sender.domain,
                    str(self.sender.from_mailbox),
                    self.sender.owner.address,
                    self.sender.owner.display_name,
                ],
                "to": [self.to.address, self.to.display_name],
                "calendar": self.calendar,
                "lang": self.lang,
                "key": self.key,
                "level": str(self.level) if self.level else None,
                "links": [list(link) for link in self.links],
                "extra": [list(pair) for pair in self.extra],
                "reply_to": self.reply_to,
                "in_reply_to": self.in_reply_to,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> NoticeSpec:
        data = json.loads(text)
        domain, from_text, owner, owner_name = data["sender"]
        return cls(
            kind=data["kind"],
            sender=Sender(domain, parse_mailbox(from_text), Mailbox(owner, owner_name)),
            to=Mailbox(*data["to"]),
            calendar=data["calendar"],
            lang=data["lang"],
            key=data["key"],
            level=Level(data["level"]) if data["level"] else None,
            links=tuple((label, url) for label, url in data["links"]),
            extra=tuple((name, value) for name, value in data["extra"]),
            reply_to=data["reply_to"],
            in_reply_to=data["in_reply_to"],
        )

    def compose(self, now: datetime) -> OutgoingMail:
        return notice(
            self.sender,
            self.to,
            kind=self.kind,
            calendar=self.calendar,
            lang=self.lang,
            now=now,
            level=self.level,
            links=self.links,
            extra=dict(self.extra),
            reply_to=self.reply_to,
            in_reply_to=self.in_reply_to,
            key=self.key,
        )


def _fields(sender: Sender, calendar: str) -> dict[str, str]:
    """Who shares what: the words every mail about a share starts from."""
    return {
        "owner": sender.owner_name,
        "owner_address": sender.owner.address,
        "owner_who": wording.who(sender.owner_name, sender.owner.address),
        "calendar": clean(calendar),
    }


def _footer(sender: Sender, lang: str) -> str:
    return wording.text("footer", lang, domain=sender.domain)


def invitation(
    sender: Sender,
    to: Mailbox,
    *,
    calendar: str,
    level: Level,
    token: str,
    base_url: str,
    expires: date,
    lang: str,
    message: str | None,
    now: datetime,
    key: str | None = None,
) -> OutgoingMail:
    """The invitation: three ways to answer, all carrying the token."""
    fields = _fields(sender, calendar)
    subject = wording.text("invitation.subject", lang, **fields)
    accept = answer_address(RecipientForm.ACCEPT, token, sender.domain)
    decline = answer_address(RecipientForm.DECLINE, token, sender.domain)
    accept_url = answer_mailto(RecipientForm.ACCEPT, token, sender.domain, f"Accept: {subject}")
    decline_url = answer_mailto(RecipientForm.DECLINE, token, sender.domain, f"Decline: {subject}")
    web_url = answer_page_url(base_url, token)
    level_line = wording.text(
        "invitation.level",
        lang,
        level=wording.level_words(level, lang),
        explanation=wording.explanation(level, lang, sender.owner_name),
    )
    context = {
        "lang": lang,
        "subject": subject,
        "heading": wording.text("invitation.heading", lang),
        "intro": wording.text("invitation.intro", lang, **fields),
        "level_line": level_line,
        "message": (message or "").strip() or None,
        "message_from": wording.text("invitation.message_from", lang, **fields),
        "accept_url": accept_url,
        "decline_url": decline_url,
        "web_url": web_url,
        "accept_label": wording.text("invitation.accept", lang),
        "decline_label": wording.text("invitation.decline", lang),
        "web_label": wording.text("invitation.web", lang),
        "how": wording.text("invitation.how", lang),
        "how_text": wording.text(
            "invitation.how_text", lang, accept=accept, decline=decline, web=web_url
        ),
        "after": wording.text("invitation.after", lang),
        "valid_until": wording.text(
            "invitation.valid_until", lang, date=format_date(expires, "long", locale=lang)
        ),
        "footer": _footer(sender, lang),
    }
    return build(
        sender,
        to,
        subject,
        render("invitation.txt", **context),
        render("invitation.html", **context),
        now,
        key or new_message_key(),
        reply_to=answer_address(RecipientForm.SHARE, token, sender.domain),
    )


def notice(
    sender: Sender,
    to: Mailbox,
    *,
    kind: str,
    calendar: str,
    lang: str,
    now: datetime,
    level: Level | None = None,
    links: Sequence[tuple[str, str]] = (),
    extra: Mapping[str, str] | None = None,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    key: str | None = None,
) -> OutgoingMail:
    """A short mail about a share: ``kind`` names its sentences in calshare.wording.

    ``links`` are (wording key of the label, URL) pairs shown as buttons, except the
    plain feed link (``subscribe.link``), shown as its address to copy (a button would
    only download the file); ``extra`` fills the sentences' other fields (an invitee's
    address, say).
    """
    fields = {**_fields(sender, calendar), **{k: clean(v) for k, v in (extra or {}).items()}}
    if level is not None:
        fields["level"] = wording.level_words(level, lang)
        fields["explanation"] = wording.explanation(level, lang, sender.owner_name)
    subject = wording.text(f"{kind}.subject", lang, **fields)
    shown = [(wording.text(label, lang), url) for label, url in links]
    buttons = [(wording.text(label, lang), url) for label, url in links if label != COPY_LABEL]
    copies = [(wording.text(label, lang), url) for label, url in links if label == COPY_LABEL]
    context = {
        "lang": lang,
        "subject": subject,
        "heading": wording.text(f"{kind}.heading", lang),
        "body": wording.text(f"{kind}.body", lang, **fields),
        "links": buttons,
        "stacked": len(buttons) > 2,  # side by side, two fit; more go one above the other
        "copies": copies,
        "footer": _footer(sender, lang),
    }
    text_links = [(label, mailto_address(url)) for label, url in shown]
    return build(
        sender,
        to,
        subject,
        render("notice.txt", **{**context, "links": text_links}),
        render("notice.html", **context),
        now,
        key or new_message_key(),
        reply_to=reply_to,
        in_reply_to=in_reply_to,
    )


def signin(
    sender: Sender,
    to: Mailbox,
    *,
    url: str,
    minutes: int,
    lang: str,
    now: datetime,
    key: str | None = None,
) -> OutgoingMail:
    """The console's sign-in mail: one button (and its link, in the text part).

    A notice in the service's own name (``sender.owner`` is the recipient: no "via"),
    with no calendar in it. The link holds the token, so this mail's bytes are kept
    only while it waits in the outbox, as an invitation's are.
    """
    return notice(
        sender,
        to,
        kind="signin",
        calendar="",
        lang=lang,
        now=now,
        links=(("signin.button", url),),
        extra={"address": to.address, "minutes": str(minutes), "domain": sender.domain},
        key=key,
    )
