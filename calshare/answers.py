"""What an answer does: grant, decline, hold, or say why not; and what we write back.

One function, ``record``, takes one inbound mail for one recipient (already
classified) and does everything it implies inside the caller's transaction: the
share's new state, the mails it causes (queued in the outbox), and the inbound
log row. The inbox commits many of these together; either all of a message's
effects are stored or none are, so answering 250 after the commit is truthful.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime, timedelta
from typing import NamedTuple
from urllib.parse import quote

from sqlite_utils import Database

from calshare import wording
from calshare.addresses import Mailbox, parse_mailbox
from calshare.calendars import utc_text
from calshare.config import Settings
from calshare.levels import Level
from calshare.redaction import redact_mail
from calshare.sharing import ACCEPTED, DECLINED, INVITED, mark_undeliverable
from calshare.tokens import RandomBytes, log_id, new_token, redact, token_hash
from inbox.classify import (
    ACCEPT,
    AUTO_REPLY,
    BOUNCE,
    DECLINE,
    UNKNOWN,
    WEAK_BOUNCE,
    Inbound,
    Verdict,
)
from mailer import compose, outbox

log = logging.getLogger(__name__)

# One explanatory reply per sender and invitation a day at most: never a loop.
REPLY_EVERY = timedelta(days=1)


_BOUNCE_ADDRESS = re.compile(r"^(bounces\+)[^@]*", re.IGNORECASE)


def _shown(recipient: str) -> str:
    """An address as logged and stored: no token, and no bounce key (with one, anyone could
    write a bounce that counts)."""
    return _BOUNCE_ADDRESS.sub(r"\1…", redact(recipient))


def dedup_key(message_id: str, recipient: str) -> str:
    return hashlib.sha256(f"{message_id}\0{recipient.strip().lower()}".encode()).hexdigest()


class _Invitation(NamedTuple):
    id: int
    share_id: int
    used_at: str | None
    revoked_at: str | None
    expires_at: str
    level: str
    status: str
    invitee: str
    invitee_name: str
    lang: str
    calendar: str
    owner: str
    owner_name: str

    @property
    def level_enum(self) -> Level:
        return Level(self.level)


def find_invitation(db: Database, token: str) -> _Invitation | None:
    """The invitation a token names, with its share, calendar and owner (web pages ask)."""
    return _invitation(db, token)


def why_invalid(invitation: _Invitation, now: datetime) -> str | None:
    """Why an answer to this invitation cannot count now: expired, revoked, accepted…"""
    return _why_invalid(invitation, now)


def _invitation(db: Database, token: str) -> _Invitation | None:
    row = db.execute(
        """SELECT i.id, i.share_id, i.used_at, i.revoked_at, i.expires_at, s.level, s.status,
                  s.invitee, s.invitee_name, s.lang, c.name, o.email, o.name
           FROM invitations i
           JOIN shares s ON s.id = i.share_id
           JOIN calendars c ON c.id = s.calendar_id
           JOIN owners o ON o.id = c.owner_id
           WHERE i.token_hash = ?""",
        [token_hash(token)],
    ).fetchone()
    return None if row is None else _Invitation(*row)


def _sender(settings: Settings, invitation: _Invitation) -> compose.Sender:
    return compose.Sender(
        domain=settings.mail.domain,
        from_mailbox=parse_mailbox(settings.mail.from_address),
        owner=Mailbox(invitation.owner, invitation.owner_name),
    )


def record(
    db: Database,
    settings: Settings,
    now: datetime,
    item: Inbound,
    *,
    random_bytes: RandomBytes | None = None,
) -> str:
    """Apply one inbound message; returns the outcome, as logged."""
    verdict = item.verdict
    dedup = dedup_key(verdict.message_id, item.recipient)
    if db.execute("SELECT 1 FROM inbound WHERE dedup = ?", [dedup]).fetchone():
        log.info(
            "inbox: %s to %s: duplicate, nothing changed, token %s",
            verdict.message_id,
            _shown(item.recipient),
            log_id(verdict.token) if verdict.token else "-",
        )
        return "duplicate"
    share_id: int | None = None
    outcome = "ignored"
    invitation = _invitation(db, verdict.token) if verdict.token else None
    null_sender = not item.mail_from.strip("<> ")
    if verdict.kind == BOUNCE and verdict.reason.startswith(WEAK_BOUNCE) and not null_sender:
        outcome = "bounce recorded (by its subject alone, from a real sender: no change)"
        share_id = invitation.share_id if invitation else None
    elif verdict.kind == BOUNCE:
        share_id, outcome = _bounced(db, settings, now, item, invitation)
    elif verdict.kind == AUTO_REPLY or verdict.token is None:
        outcome = "ignored"  # recorded, never answered: no mail loops
    elif invitation is None:
        outcome = "unknown token"
    else:
        share_id = invitation.share_id
        outcome = _answer(db, settings, now, item, invitation, random_bytes)
    cursor = db.execute(
        """INSERT INTO inbound (received_at, dedup, message_id, mail_from, recipient, sender,
               token_hash, kind, reason, outcome, share_id, size)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            utc_text(now),
            dedup,
            verdict.message_id,
            item.mail_from,
            _shown(item.recipient.lower()),
            verdict.sender,
            token_hash(verdict.token) if verdict.token else None,
            verdict.kind,
            redact(verdict.reason)[:300],
            outcome,
            share_id,
            len(item.raw),
        ],
    )
    if settings.inbox.keep_raw_days:
        db.execute(
            "INSERT INTO inbound_raw (inbound_id, raw) VALUES (?, ?)",
            [cursor.lastrowid, redact_mail(item.raw)],  # never a live token at rest
        )
    log.info(
        "inbox: %s to %s: %s (%s) -> %s, token %s",
        verdict.message_id,
        _shown(item.recipient),
        verdict.kind,
        verdict.reason,
        outcome,
        log_id(verdict.token) if verdict.token else "-",
    )
    return outcome


def _bounced(
    db: Database,
    settings: Settings,
    now: datetime,
    item: Inbound,
    invitation: _Invitation | None,
) -> tuple[int | None, str]:
    """A report that one of our mails failed: (the share it names, the outcome).

    Only a report we can trust kills an invitation (the share becomes undeliverable
    and its token is revoked). To a bounces+<key> address: from the null sender, as
    every delivery report is (RFC 5321 §4.5.5), with a key that names a mail we sent
    (the key is never shown to the recipient's correspondents: the Message-ID holds
    only its hash), and naming that mail's recipient if it names any. To a token
    address, which anyone who saw a reply can write to: what an answer needs, from
    the invitee and authenticated. Everything else is recorded and changes nothing.
    """
    verdict = item.verdict
    null_sender = not item.mail_from.strip("<> ")
    if verdict.form == "bounces":
        row = _bounced_mail(db, settings, verdict.bounce_key or "")
        if row is None:
            return None, "bounce recorded (not a bounce address of ours: no change)"
        kind, share_id, recipients = row
        if kind != outbox.INVITATION or share_id is None:
            return share_id, "bounce recorded"
        if not null_sender:
            return share_id, "bounce recorded (not from the null sender: no change)"
        if verdict.reported and not set(verdict.reported) & recipients:
            return share_id, "bounce recorded (it reports another recipient: no change)"
    elif invitation is None:
        return None, "bounce recorded"
    else:
        share_id = invitation.share_id
        if not item.authenticated:
            return share_id, "bounce recorded (Authentication-Results did not pass: no change)"
        if verdict.sender != invitation.invitee:
            return share_id, "bounce recorded (not from the invitee: no change)"
        if verdict.reported and invitation.invitee.lower() not in verdict.reported:
            return share_id, "bounce recorded (it reports another recipient: no change)"
    mark_undeliverable(db, share_id, now, f"bounced: {verdict.reason}")
    return share_id, "undeliverable"


_BOUNCE_KEY = re.compile(r"[0-9a-f]{32}")


def _bounced_mail(
    db: Database, settings: Settings, key: str
) -> tuple[str, int | None, set[str]] | None:
    """(kind, share, recipients) of the mail whose bounce address holds ``key``, if any."""
    key = key.lower()
    if not _BOUNCE_KEY.fullmatch(key):
        return None
    row = db.execute(
        "SELECT kind, share_id, recipients FROM outbox WHERE message_id = ?",
        [compose.message_id_for(key, settings.mail.domain)],
    ).fetchone()
    if row is None:
        return None
    recipients = {str(address).lower() for address in json.loads(row[2])}
    return str(row[0]), row[1], recipients


def _why_invalid(invitation: _Invitation, now: datetime) -> str | None:
    """Why an answer cannot count, as a wording key: an answered invitation says how."""
    if invitation.used_at and invitation.status in (ACCEPTED, DECLINED):
        return invitation.status
    if invitation.used_at or invitation.revoked_at or invitation.status != INVITED:
        return "revoked"
    if invitation.expires_at <= utc_text(now):
        return "expired"
    return None


def _replied_lately(db: Database, verdict: Verdict, now: datetime) -> bool:
    assert verdict.token is not None
    return (
        db.execute(
            """SELECT 1 FROM inbound WHERE token_hash = ? AND sender IS ?
               AND outcome LIKE 'replied%' AND received_at > ? LIMIT 1""",
            [token_hash(verdict.token), verdict.sender, utc_text(now - REPLY_EVERY)],
        ).fetchone()
        is not None
    )


CONFIRM_ASKED = "replied: held, the invitee was asked to confirm"


def _asked_to_confirm_lately(db: Database, token: str, now: datetime) -> bool:
    return (
        db.execute(
            """SELECT 1 FROM inbound WHERE token_hash = ? AND outcome = ?
               AND received_at > ? LIMIT 1""",
            [token_hash(token), CONFIRM_ASKED, utc_text(now - REPLY_EVERY)],
        ).fetchone()
        is not None
    )


def _answer(
    db: Database,
    settings: Settings,
    now: datetime,
    item: Inbound,
    invitation: _Invitation,
    random_bytes: RandomBytes | None,
) -> str:
    verdict = item.verdict
    assert verdict.token is not None
    sender = _sender(settings, invitation)
    invitee = Mailbox(invitation.invitee, invitation.invitee_name)
    lang = invitation.lang
    if not item.authenticated:  # before any reply: a forged From must not draw backscatter
        return "not counted: Authentication-Results did not pass"
    why = _why_invalid(invitation, now)
    if why is not None:
        # only the invitee is told: a stranger holding the token learns nothing of it
        if verdict.sender != invitation.invitee or _replied_lately(db, verdict, now):
            return f"invalid token ({why})"
        advice = wording.text(f"invalid_token.advice_{why}", lang, owner=sender.owner_name)
        spec = compose.NoticeSpec(
            sender=sender,
            to=invitee,
            kind="invalid_token",
            calendar=invitation.calendar,
            lang=lang,
            extra=(("why", wording.text(f"invalid_token.{why}", lang)), ("advice", advice)),
            in_reply_to=verdict.message_id,
            key=compose.new_message_key(),
        )
        outbox.enqueue_notice(
            db, spec, kind=outbox.INVALID_TOKEN, share_id=invitation.share_id, now=now
        )
        return f"replied: invalid token ({why})"
    if verdict.sender != invitation.invitee:
        if verdict.kind not in (ACCEPT, DECLINE) or _replied_lately(db, verdict, now):
            return "held: not from the invitee"
        if _asked_to_confirm_lately(db, verdict.token, now):
            # one question a day per invitation, however many strangers hold the token
            return "held: not from the invitee (the invitee was asked today)"
        spec = compose.NoticeSpec(
            sender=sender,
            to=invitee,
            kind="confirm",
            calendar=invitation.calendar,
            lang=lang,
            extra=(("forwarder", verdict.sender or "an unknown address"),),
            links=tuple(_answer_links(settings, verdict.token, invitation)),
            reply_to=f"share+{verdict.token}@{settings.mail.domain}",
            key=compose.new_message_key(),
        )
        outbox.enqueue_notice(db, spec, kind=outbox.CONFIRM, share_id=invitation.share_id, now=now)
        return CONFIRM_ASKED
    if verdict.kind in (ACCEPT, DECLINE):
        # asking to confirm or explaining how to answer is moot once the answer is in
        outbox.cancel(db, invitation.share_id, (outbox.CONFIRM, outbox.ANSWER_HELP))
    if verdict.kind == ACCEPT:
        return _accept(db, settings, now, invitation, sender, invitee, random_bytes)
    if verdict.kind == DECLINE:
        db.execute(
            "UPDATE shares SET status = ?, answered_at = ?, updated_at = ? WHERE id = ?",
            [DECLINED, utc_text(now), utc_text(now), invitation.share_id],
        )
        db.execute(
            "UPDATE invitations SET used_at = ? WHERE id = ?", [utc_text(now), invitation.id]
        )
        _tell_owner(db, settings, now, invitation, sender, "declined")
        return "declined"
    assert verdict.kind == UNKNOWN
    if _replied_lately(db, verdict, now):
        return "unknown answer"
    spec = compose.NoticeSpec(
        sender=sender,
        to=invitee,
        kind="answer_help",
        calendar=invitation.calendar,
        lang=lang,
        links=tuple(_answer_links(settings, verdict.token, invitation)),
        reply_to=f"share+{verdict.token}@{settings.mail.domain}",
        in_reply_to=verdict.message_id,
        key=compose.new_message_key(),
    )
    outbox.enqueue_notice(db, spec, kind=outbox.ANSWER_HELP, share_id=invitation.share_id, now=now)
    return "replied: how to answer"


def _answer_links(settings: Settings, token: str, invitation: _Invitation) -> list[tuple[str, str]]:
    domain = settings.mail.domain
    topic = quote(invitation.calendar)
    return [
        ("invitation.accept", f"mailto:accept+{token}@{domain}?subject=Accept:%20{topic}"),
        ("invitation.decline", f"mailto:decline+{token}@{domain}?subject=Decline:%20{topic}"),
    ]


def feed_urls(base_url: str, secret: str) -> tuple[str, str]:
    """(webcal://…, https://…) for a feed secret: apps subscribe with either."""
    https = f"{base_url}/feeds/{secret}.ics"
    return "webcal" + https[https.index("://") :], https


def _accept(
    db: Database,
    settings: Settings,
    now: datetime,
    invitation: _Invitation,
    sender: compose.Sender,
    invitee: Mailbox,
    random_bytes: RandomBytes | None,
) -> str:
    secret = new_token(random_bytes) if random_bytes else new_token()
    db.execute(
        "UPDATE shares SET status = ?, answered_at = ?, feed_hash = ?, updated_at = ? WHERE id = ?",
        [ACCEPTED, utc_text(now), token_hash(secret), utc_text(now), invitation.share_id],
    )
    db.execute("UPDATE invitations SET used_at = ? WHERE id = ?", [utc_text(now), invitation.id])
    webcal, https = feed_urls(settings.http.base_url, secret)
    spec = compose.NoticeSpec(
        sender=sender,
        to=invitee,
        kind="welcome",
        calendar=invitation.calendar,
        lang=invitation.lang,
        level=Level(invitation.level),
        links=(("welcome.subscribe", webcal), ("welcome.https", https)),
        key=compose.new_message_key(),
    )
    outbox.enqueue_notice(db, spec, kind=outbox.WELCOME, share_id=invitation.share_id, now=now)
    _tell_owner(db, settings, now, invitation, sender, "accepted")
    return "accepted"


def _tell_owner(
    db: Database,
    settings: Settings,
    now: datetime,
    invitation: _Invitation,
    sender: compose.Sender,
    kind: str,
) -> None:
    invitee = invitation.invitee_name or invitation.invitee
    spec = compose.NoticeSpec(
        sender=sender,
        to=Mailbox(invitation.owner, invitation.owner_name),
        kind=kind,
        calendar=invitation.calendar,
        lang=settings.mail.lang,
        level=Level(invitation.level),
        extra=(("invitee", invitee), ("invitee_address", invitation.invitee)),
        key=compose.new_message_key(),
    )
    outbox.enqueue_notice(db, spec, kind=f"owner_{kind}", share_id=invitation.share_id, now=now)
