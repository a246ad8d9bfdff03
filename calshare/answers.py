"""What an answer does: grant, decline, hold, or say why not; and what we write back.

Decide, then apply. ``observe`` reads what the store says about one answer (its
invitation, a bounced mail, whether we wrote to this sender today) into a plain
``Facts`` value; ``decide`` is a pure function from the answer, those facts, the
fresh random values and the clock's now to a ``Decision`` (the share's new state,
the mails to queue, the inbound log row); ``apply`` writes a decision, inside the
caller's transaction. Two named operations run the three: ``record`` for one
inbound mail for one recipient (the inbox commits many of these together; either
all of a message's effects are stored or none are, so answering 250 after the
commit is truthful), and ``answer_invitation`` for an answer given on the web page.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple
from urllib.parse import quote

from sqlite_utils import Database

from calshare import wording
from calshare.addresses import Mailbox, parse_mailbox
from calshare.calendars import utc_text
from calshare.config import Settings
from calshare.errors import UsageError
from calshare.levels import Level
from calshare.redaction import redact_mail
from calshare.sharing import ACCEPTED, DECLINED, INVITED, mark_undeliverable
from calshare.subscribe import subscribe_options
from calshare.tokens import RandomBytes, log_id, new_token, redact, token_hash
from inbox.classify import ACCEPT, AUTO_REPLY, BOUNCE, DECLINE, UNKNOWN, WEAK_BOUNCE, Inbound
from mailer import compose, outbox

log = logging.getLogger(__name__)

# One explanatory reply per sender and invitation a day at most: never a loop.
REPLY_EVERY = timedelta(days=1)
CONFIRM_ASKED = "replied: held, the invitee was asked to confirm"


@dataclass(frozen=True)
class WebAnswer:
    """An answer given without a mail: "answer invitation X with accept, by Y, via web".

    The page is the invitee's own link, so no From or Authentication-Results is
    read; ``message_id`` only names the answer in the inbound log.
    """

    token: str
    answer: str  # ACCEPT | DECLINE
    by: str  # the address answering
    via: str  # "web"
    message_id: str


_BOUNCE_ADDRESS = re.compile(r"^(bounces\+)[^@]*", re.IGNORECASE)


def _shown(recipient: str) -> str:
    """An address as logged and stored: no token, and no bounce key (with one, anyone could
    write a bounce that counts)."""
    return _BOUNCE_ADDRESS.sub(r"\1…", redact(recipient))


def dedup_key(message_id: str, recipient: str) -> str:
    return hashlib.sha256(f"{message_id}\0{recipient.strip().lower()}".encode()).hexdigest()


class Invitation(NamedTuple):
    """An invitation with its share, calendar and owner, as the store holds it now."""

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


@dataclass(frozen=True)
class SentMail:
    """The mail of ours a ``bounces+<key>`` address names."""

    kind: str  # its outbox kind
    share_id: int | None
    recipients: frozenset[str]  # lower case


@dataclass(frozen=True)
class Facts:
    """What the store says about one answer, read before deciding (decide reads nothing)."""

    duplicate: bool = False  # this (message, recipient) was recorded before
    invitation: Invitation | None = None  # the one its token names
    bounced_mail: SentMail | None = None  # the one its bounce key names
    replied_today: bool = False  # we explained something to this sender about this token
    confirm_asked_today: bool = False  # the invitee was asked to confirm an answer


@dataclass(frozen=True)
class Fresh:
    """The random values a decision may use, drawn beforehand so that decide stays pure."""

    feed_secret: str  # an accepted share's feed secret
    keys: tuple[str, str]  # Message-ID keys, one per notice (two at most)

    @classmethod
    def draw(cls, random_bytes: RandomBytes | None = None) -> Fresh:
        secret = new_token(random_bytes) if random_bytes else new_token()
        return cls(secret, (compose.new_message_key(), compose.new_message_key()))


class Action(StrEnum):
    """What an answer does, in one word (the outcome says it in the log's words)."""

    GRANT = "grant"  # accepted: a feed, a welcome, the owner told
    DECLINE = "decline"  # declined: the owner told
    HOLD = "hold"  # an answer not from the invitee: the invitee may be asked to confirm
    EXPLAIN = "explain"  # a reply saying why the answer did not count or how to answer
    UNDELIVERABLE = "undeliverable"  # a trusted bounce: the share says so, its tokens die
    IGNORE = "ignore"  # recorded, or not even that (a duplicate), and nothing else


@dataclass(frozen=True)
class Answered:
    """The share's new state after an answer that counted; its invitation is used."""

    share_id: int
    invitation_id: int
    status: str  # ACCEPTED | DECLINED
    feed_secret: str | None = None  # accepted: the feed's secret (only its hash is stored)


@dataclass(frozen=True)
class Notice:
    """A mail to queue: its outbox kind and what to compose."""

    kind: str
    spec: compose.NoticeSpec


@dataclass(frozen=True)
class LogRow:
    """The inbound log's row for one message (outcome and share are the decision's)."""

    dedup: str
    message_id: str
    mail_from: str
    recipient: str  # as shown: no token, no bounce key
    sender: str | None
    token_hash: str | None
    kind: str
    reason: str  # redacted
    size: int
    raw_copy: bytes | None  # the redacted copy kept for operators, if they keep any


@dataclass(frozen=True)
class Decision:
    """Everything an answer causes, as a value: ``apply`` writes it, nothing else."""

    action: Action
    outcome: str  # as logged (the inbound row's outcome)
    now: datetime
    share_id: int | None = None  # the share the message concerns
    answered: Answered | None = None
    undeliverable: str | None = None  # why the share's invitation could not be delivered
    cancel: tuple[str, ...] = ()  # the share's queued mails of these kinds are moot now
    notices: tuple[Notice, ...] = ()
    log: LogRow | None = None  # None: nothing is logged (a duplicate, a closed web answer)


def find_invitation(db: Database, token: str) -> Invitation | None:
    """The invitation a token names, with its share, calendar and owner (web pages ask)."""
    return _invitation(db, token)


def why_invalid(invitation: Invitation, now: datetime) -> str | None:
    """Why an answer to this invitation cannot count now: expired, revoked, accepted…"""
    return _why_invalid(invitation, now)


def _invitation(db: Database, token: str) -> Invitation | None:
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
    return None if row is None else Invitation(*row)


# --- the named operations


def record(
    db: Database,
    settings: Settings,
    now: datetime,
    item: Inbound,
    *,
    random_bytes: RandomBytes | None = None,
) -> str:
    """Apply one inbound message (observe, decide, apply); returns the outcome, as logged."""
    decision = decide(
        item, observe(db, settings, now, item), Fresh.draw(random_bytes), now, settings
    )
    apply(db, decision)
    verdict = item.verdict
    token = log_id(verdict.token) if verdict.token else "-"
    if decision.log is None:
        log.info(
            "inbox: %s to %s: duplicate, nothing changed, token %s",
            verdict.message_id,
            _shown(item.recipient),
            token,
        )
    else:
        log.info(
            "inbox: %s to %s: %s (%s) -> %s, token %s",
            verdict.message_id,
            _shown(item.recipient),
            verdict.kind,
            verdict.reason,
            decision.outcome,
            token,
        )
    return decision.outcome


def answer_invitation(
    db: Database,
    settings: Settings,
    now: datetime,
    token: str,
    answer: str,
    *,
    by: str,
    via: str = "web",
    random_bytes: RandomBytes | None = None,
) -> str:
    """Answer the invitation ``token`` names with accept or decline, by ``by``, via ``via``.

    The same decision as a mailed answer, inside the caller's transaction, and logged
    in the inbound log as one. An invitation no longer open (a second click, a
    reload) changes nothing and is answered "closed": the page says why, no mail does.
    Returns the outcome ("accepted", "declined", "closed", "unknown token", …).
    """
    if answer not in (ACCEPT, DECLINE):
        raise UsageError(f"an invitation is answered with {ACCEPT} or {DECLINE}, not {answer!r}")
    message_id = f"<{via}-{secrets.token_hex(16)}@{settings.mail.domain}>"
    given = WebAnswer(token=token, answer=answer, by=by, via=via, message_id=message_id)
    decision = decide(
        given, observe(db, settings, now, given), Fresh.draw(random_bytes), now, settings
    )
    apply(db, decision)
    log.info("answers: %s via %s -> %s, token %s", answer, via, decision.outcome, log_id(token))
    return decision.outcome


# --- observe: the reads


def observe(db: Database, settings: Settings, now: datetime, given: Inbound | WebAnswer) -> Facts:
    """What ``decide`` needs to know from the store about this answer, read now."""
    said = _said(given, settings)
    if db.execute("SELECT 1 FROM inbound WHERE dedup = ?", [said.dedup]).fetchone():
        return Facts(duplicate=True)
    invitation = _invitation(db, said.token) if said.token else None
    bounced_mail = None
    if said.kind == BOUNCE and said.form == "bounces":
        bounced_mail = _bounced_mail(db, settings, said.bounce_key or "")
    if invitation is None or said.token is None or said.kind in (BOUNCE, AUTO_REPLY):
        return Facts(invitation=invitation, bounced_mail=bounced_mail)
    return Facts(
        invitation=invitation,
        bounced_mail=bounced_mail,
        replied_today=_replied_lately(db, said.token, said.sender, now),
        confirm_asked_today=_asked_to_confirm_lately(db, said.token, now),
    )


_BOUNCE_KEY = re.compile(r"[0-9a-f]{32}")


def _bounced_mail(db: Database, settings: Settings, key: str) -> SentMail | None:
    """The mail whose bounce address holds ``key``, if any."""
    key = key.lower()
    if not _BOUNCE_KEY.fullmatch(key):
        return None
    row = db.execute(
        "SELECT kind, share_id, recipients FROM outbox WHERE message_id = ?",
        [compose.message_id_for(key, settings.mail.domain)],
    ).fetchone()
    if row is None:
        return None
    recipients = frozenset(str(address).lower() for address in json.loads(row[2]))
    return SentMail(str(row[0]), row[1], recipients)


def _replied_lately(db: Database, token: str, sender: str | None, now: datetime) -> bool:
    return (
        db.execute(
            """SELECT 1 FROM inbound WHERE token_hash = ? AND sender IS ?
               AND outcome LIKE 'replied%' AND received_at > ? LIMIT 1""",
            [token_hash(token), sender, utc_text(now - REPLY_EVERY)],
        ).fetchone()
        is not None
    )


def _asked_to_confirm_lately(db: Database, token: str, now: datetime) -> bool:
    return (
        db.execute(
            """SELECT 1 FROM inbound WHERE token_hash = ? AND outcome = ?
               AND received_at > ? LIMIT 1""",
            [token_hash(token), CONFIRM_ASKED, utc_text(now - REPLY_EVERY)],
        ).fetchone()
        is not None
    )


# --- decide: the pure part


@dataclass(frozen=True)
class _Said:
    """An answer however it came (a mail for one recipient, a click), as decide reads it."""

    kind: str  # accept | decline | auto-reply | bounce | unknown
    reason: str
    token: str | None
    sender: str | None
    message_id: str
    dedup: str
    authenticated: bool
    null_sender: bool = False
    form: str | None = None
    bounce_key: str | None = None
    reported: tuple[str, ...] = ()


def _said(given: Inbound | WebAnswer, settings: Settings) -> _Said:
    if isinstance(given, WebAnswer):
        reason = "answered on the web page" if given.via == "web" else f"answered via {given.via}"
        return _Said(
            kind=given.answer,
            reason=reason,
            token=given.token,
            sender=given.by,
            message_id=given.message_id,
            dedup=dedup_key(given.message_id, _web_recipient(given, settings)),
            authenticated=True,
            form=given.answer,
        )
    verdict = given.verdict
    return _Said(
        kind=verdict.kind,
        reason=verdict.reason,
        token=verdict.token,
        sender=verdict.sender,
        message_id=verdict.message_id,
        dedup=dedup_key(verdict.message_id, given.recipient),
        authenticated=given.authenticated,
        null_sender=not given.mail_from.strip("<> "),
        form=verdict.form,
        bounce_key=verdict.bounce_key,
        reported=verdict.reported,
    )


def _web_recipient(given: WebAnswer, settings: Settings) -> str:
    """The address the answer would have been mailed to: what the log shows for it."""
    return f"{given.answer}+{given.token}@{settings.mail.domain}"


def decide(
    given: Inbound | WebAnswer, facts: Facts, fresh: Fresh, now: datetime, settings: Settings
) -> Decision:
    """What this answer does, from values only: no store, no clock, no randomness.

    The order of the questions is the safety of the answers: a duplicate changes
    nothing; a bounce or an auto-reply is never an answer; an answer that cannot be
    trusted (Authentication-Results failed) draws no reply at all, so a forged From
    gets no backscatter; a closed invitation is explained to its invitee only, once
    a day; an answer from anyone else is held, and the invitee asked to confirm at
    most once a day per invitation. On the web, a closed invitation is just closed.
    """
    if facts.duplicate:
        return Decision(Action.IGNORE, "duplicate", now)
    said = _said(given, settings)
    if isinstance(given, WebAnswer):
        if facts.invitation is None:
            return Decision(Action.IGNORE, "unknown token", now)
        if _why_invalid(facts.invitation, now) is not None:
            # a second click, a reload: the page says why, and no mail is sent about it
            return Decision(Action.IGNORE, "closed", now, facts.invitation.share_id)
    decision = _decide(said, facts, fresh, now, settings)
    return replace(decision, log=_log_row(given, said, settings))


def _decide(said: _Said, facts: Facts, fresh: Fresh, now: datetime, settings: Settings) -> Decision:
    invitation = facts.invitation
    if said.kind == BOUNCE and said.reason.startswith(WEAK_BOUNCE) and not said.null_sender:
        return Decision(
            Action.IGNORE,
            "bounce recorded (by its subject alone, from a real sender: no change)",
            now,
            invitation.share_id if invitation else None,
        )
    if said.kind == BOUNCE:
        return _bounced(said, facts, now)
    if said.kind == AUTO_REPLY or said.token is None:
        return Decision(Action.IGNORE, "ignored", now)  # recorded, never answered: no mail loops
    if invitation is None:
        return Decision(Action.IGNORE, "unknown token", now)
    return _answer(said, facts, invitation, said.token, fresh, now, settings)


def _bounced(said: _Said, facts: Facts, now: datetime) -> Decision:
    """A report that one of our mails failed.

    Only a report we can trust kills an invitation (the share becomes undeliverable
    and its token is revoked). To a bounces+<key> address: from the null sender, as
    every delivery report is (RFC 5321 §4.5.5), with a key that names a mail we sent
    (the key is never shown to the recipient's correspondents: the Message-ID holds
    only its hash), and naming that mail's recipient if it names any. To a token
    address, which anyone who saw a reply can write to: what an answer needs, from
    the invitee and authenticated. Everything else is recorded and changes nothing.
    """

    def recorded(share_id: int | None, why: str = "") -> Decision:
        return Decision(Action.IGNORE, f"bounce recorded{why}", now, share_id)

    invitation = facts.invitation
    if said.form == "bounces":
        sent = facts.bounced_mail
        if sent is None:
            return recorded(None, " (not a bounce address of ours: no change)")
        share_id = sent.share_id
        if sent.kind != outbox.INVITATION or share_id is None:
            return recorded(share_id)
        if not said.null_sender:
            return recorded(share_id, " (not from the null sender: no change)")
        if said.reported and not set(said.reported) & sent.recipients:
            return recorded(share_id, " (it reports another recipient: no change)")
    elif invitation is None:
        return recorded(None)
    else:
        share_id = invitation.share_id
        if not said.authenticated:
            return recorded(share_id, " (Authentication-Results did not pass: no change)")
        if said.sender != invitation.invitee:
            return recorded(share_id, " (not from the invitee: no change)")
        if said.reported and invitation.invitee.lower() not in said.reported:
            return recorded(share_id, " (it reports another recipient: no change)")
    return Decision(
        Action.UNDELIVERABLE,
        "undeliverable",
        now,
        share_id,
        undeliverable=f"bounced: {said.reason}",
    )


def _why_invalid(invitation: Invitation, now: datetime) -> str | None:
    """Why an answer cannot count, as a wording key: an answered invitation says how."""
    if invitation.used_at and invitation.status in (ACCEPTED, DECLINED):
        return invitation.status
    if invitation.used_at or invitation.revoked_at or invitation.status != INVITED:
        return "revoked"
    if invitation.expires_at <= utc_text(now):
        return "expired"
    return None


def _sender(settings: Settings, invitation: Invitation) -> compose.Sender:
    return compose.Sender(
        domain=settings.mail.domain,
        from_mailbox=parse_mailbox(settings.mail.from_address),
        owner=Mailbox(invitation.owner, invitation.owner_name),
    )


def _answer(
    said: _Said,
    facts: Facts,
    invitation: Invitation,
    token: str,
    fresh: Fresh,
    now: datetime,
    settings: Settings,
) -> Decision:
    share_id = invitation.share_id
    sender = _sender(settings, invitation)
    invitee = Mailbox(invitation.invitee, invitation.invitee_name)
    lang = invitation.lang
    if not said.authenticated:  # before any reply: a forged From must not draw backscatter
        return Decision(
            Action.IGNORE, "not counted: Authentication-Results did not pass", now, share_id
        )
    why = _why_invalid(invitation, now)
    if why is not None:
        # only the invitee is told: a stranger holding the token learns nothing of it
        if said.sender != invitation.invitee or facts.replied_today:
            return Decision(Action.IGNORE, f"invalid token ({why})", now, share_id)
        advice = wording.text(f"invalid_token.advice_{why}", lang, owner=sender.owner_name)
        spec = compose.NoticeSpec(
            sender=sender,
            to=invitee,
            kind="invalid_token",
            calendar=invitation.calendar,
            lang=lang,
            extra=(("why", wording.text(f"invalid_token.{why}", lang)), ("advice", advice)),
            in_reply_to=said.message_id,
            key=fresh.keys[0],
        )
        return Decision(
            Action.EXPLAIN,
            f"replied: invalid token ({why})",
            now,
            share_id,
            notices=(Notice(outbox.INVALID_TOKEN, spec),),
        )
    if said.sender != invitation.invitee:
        if said.kind not in (ACCEPT, DECLINE) or facts.replied_today:
            return Decision(Action.HOLD, "held: not from the invitee", now, share_id)
        if facts.confirm_asked_today:
            # one question a day per invitation, however many strangers hold the token
            return Decision(
                Action.HOLD,
                "held: not from the invitee (the invitee was asked today)",
                now,
                share_id,
            )
        spec = compose.NoticeSpec(
            sender=sender,
            to=invitee,
            kind="confirm",
            calendar=invitation.calendar,
            lang=lang,
            extra=(("forwarder", said.sender or "an unknown address"),),
            links=tuple(_answer_links(settings, token, invitation)),
            reply_to=f"share+{token}@{settings.mail.domain}",
            key=fresh.keys[0],
        )
        return Decision(
            Action.HOLD, CONFIRM_ASKED, now, share_id, notices=(Notice(outbox.CONFIRM, spec),)
        )
    if said.kind == ACCEPT:
        return _accept(settings, now, invitation, sender, invitee, fresh)
    if said.kind == DECLINE:
        return Decision(
            Action.DECLINE,
            "declined",
            now,
            share_id,
            answered=Answered(share_id, invitation.id, DECLINED),
            cancel=_MOOT,
            notices=(_tell_owner(settings, invitation, sender, "declined", fresh.keys[0]),),
        )
    assert said.kind == UNKNOWN
    if facts.replied_today:
        return Decision(Action.IGNORE, "unknown answer", now, share_id)
    spec = compose.NoticeSpec(
        sender=sender,
        to=invitee,
        kind="answer_help",
        calendar=invitation.calendar,
        lang=lang,
        links=tuple(_answer_links(settings, token, invitation)),
        reply_to=f"share+{token}@{settings.mail.domain}",
        in_reply_to=said.message_id,
        key=fresh.keys[0],
    )
    return Decision(
        Action.EXPLAIN,
        "replied: how to answer",
        now,
        share_id,
        notices=(Notice(outbox.ANSWER_HELP, spec),),
    )


# asking to confirm or explaining how to answer is moot once the answer is in
_MOOT = (outbox.CONFIRM, outbox.ANSWER_HELP)


def _answer_links(settings: Settings, token: str, invitation: Invitation) -> list[tuple[str, str]]:
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
    settings: Settings,
    now: datetime,
    invitation: Invitation,
    sender: compose.Sender,
    invitee: Mailbox,
    fresh: Fresh,
) -> Decision:
    webcal, https = feed_urls(settings.http.base_url, fresh.feed_secret)
    welcome = compose.NoticeSpec(
        sender=sender,
        to=invitee,
        kind="welcome",
        calendar=invitation.calendar,
        lang=invitation.lang,
        level=Level(invitation.level),
        # the invitee's own provider's button first (calshare.subscribe says why)
        links=tuple(
            (option.label, option.href)
            for option in subscribe_options(https, webcal, invitee.address, invitation.calendar)
        ),
        key=fresh.keys[0],
    )
    return Decision(
        Action.GRANT,
        "accepted",
        now,
        invitation.share_id,
        answered=Answered(invitation.share_id, invitation.id, ACCEPTED, fresh.feed_secret),
        cancel=_MOOT,
        notices=(
            Notice(outbox.WELCOME, welcome),
            _tell_owner(settings, invitation, sender, "accepted", fresh.keys[1]),
        ),
    )


def _tell_owner(
    settings: Settings, invitation: Invitation, sender: compose.Sender, kind: str, key: str
) -> Notice:
    invitee = invitation.invitee_name or invitation.invitee
    spec = compose.NoticeSpec(
        sender=sender,
        to=Mailbox(invitation.owner, invitation.owner_name),
        kind=kind,
        calendar=invitation.calendar,
        lang=settings.mail.lang,
        level=Level(invitation.level),
        extra=(("invitee", invitee), ("invitee_address", invitation.invitee)),
        key=key,
    )
    return Notice(f"owner_{kind}", spec)


def _log_row(given: Inbound | WebAnswer, said: _Said, settings: Settings) -> LogRow:
    if isinstance(given, WebAnswer):
        mail_from, recipient, size, raw_copy = "", _web_recipient(given, settings), 0, None
    else:
        mail_from, recipient, size = given.mail_from, given.recipient, len(given.raw)
        # never a live token at rest
        raw_copy = redact_mail(given.raw) if settings.inbox.keep_raw_days else None
    return LogRow(
        dedup=said.dedup,
        message_id=said.message_id,
        mail_from=mail_from,
        recipient=_shown(recipient.lower()),
        sender=said.sender,
        token_hash=token_hash(said.token) if said.token else None,
        kind=said.kind,
        reason=redact(said.reason)[:300],
        size=size,
        raw_copy=raw_copy,
    )


# --- apply: the writes


def apply(db: Database, decision: Decision) -> None:
    """Write what a decision says, inside the caller's transaction; decides nothing."""
    now = utc_text(decision.now)
    share_id = decision.share_id
    if decision.cancel and share_id is not None:
        outbox.cancel(db, share_id, decision.cancel)
    answered = decision.answered
    if answered is not None:
        if answered.feed_secret is None:
            db.execute(
                "UPDATE shares SET status = ?, answered_at = ?, updated_at = ? WHERE id = ?",
                [answered.status, now, now, answered.share_id],
            )
        else:
            db.execute(
                """UPDATE shares SET status = ?, answered_at = ?, feed_hash = ?, updated_at = ?
                   WHERE id = ?""",
                [answered.status, now, token_hash(answered.feed_secret), now, answered.share_id],
            )
        db.execute("UPDATE invitations SET used_at = ? WHERE id = ?", [now, answered.invitation_id])
    if decision.undeliverable is not None and share_id is not None:
        mark_undeliverable(db, share_id, decision.now, decision.undeliverable)
    for notice in decision.notices:
        outbox.enqueue_notice(
            db, notice.spec, kind=notice.kind, share_id=share_id, now=decision.now
        )
    row = decision.log
    if row is None:
        return
    cursor = db.execute(
        """INSERT INTO inbound (received_at, dedup, message_id, mail_from, recipient, sender,
               token_hash, kind, reason, outcome, share_id, size)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            now,
            row.dedup,
            row.message_id,
            row.mail_from,
            row.recipient,
            row.sender,
            row.token_hash,
            row.kind,
            row.reason,
            decision.outcome,
            share_id,
            row.size,
        ],
    )
    if row.raw_copy is not None:
        db.execute(
            "INSERT INTO inbound_raw (inbound_id, raw) VALUES (?, ?)",
            [cursor.lastrowid, row.raw_copy],
        )
