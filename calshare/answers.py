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

from sqlite_utils import Database

from calshare import lifecycle, owner_notices, wording
from calshare.addresses import Mailbox, parse_mailbox
from calshare.clock import utc_text
from calshare.config import Settings
from calshare.errors import UsageError
from calshare.levels import Level
from calshare.lifecycle import ShareStatus
from calshare.links import (
    ConsolePage,
    RecipientForm,
    answer_address,
    answer_mailto,
    console_url,
    feed_urls,
)
from calshare.redaction import redact_mail
from calshare.subscribe import subscribe_options
from calshare.tokens import RandomBytes, log_id, new_token, redact, token_hash
from inbox.classify import Inbound, VerdictKind
from mailer import compose, outbox
from mailer.outbox import OutboxKind

log = logging.getLogger(__name__)

# One explanatory reply per sender and invitation a day at most: never a loop.
REPLY_EVERY = timedelta(days=1)


class Closed(StrEnum):
    """Why an invitation takes no answer any more; also the wording keys that say so."""

    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Outcome(StrEnum):
    """What an answer came to, in the inbound log's words (its ``outcome`` column).

    For people: nothing reads these back to decide (``Reply`` is the field for that),
    so rewording one changes no behaviour.
    """

    DUPLICATE = "duplicate"
    UNKNOWN_TOKEN = "unknown token"
    CLOSED = "closed"  # a web answer to an invitation no longer open
    IGNORED = "ignored"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    UNDELIVERABLE = "undeliverable"
    UNKNOWN_ANSWER = "unknown answer"
    HOW_TO_ANSWER = "replied: how to answer"
    NOT_AUTHENTICATED = "not counted: Authentication-Results did not pass"
    HELD = "held: not from the invitee"
    HELD_ASKED_TODAY = "held: not from the invitee (the invitee was asked today)"
    CONFIRM_ASKED = "replied: held, the invitee was asked to confirm"
    BOUNCE_RECORDED = "bounce recorded"
    BOUNCE_WEAK = "bounce recorded (by its subject alone, from a real sender: no change)"
    BOUNCE_NOT_OURS = "bounce recorded (not a bounce address of ours: no change)"
    BOUNCE_NOT_NULL_SENDER = "bounce recorded (not from the null sender: no change)"
    BOUNCE_OTHER_RECIPIENT = "bounce recorded (it reports another recipient: no change)"
    BOUNCE_NOT_AUTHENTICATED = "bounce recorded (Authentication-Results did not pass: no change)"
    BOUNCE_NOT_INVITEE = "bounce recorded (not from the invitee: no change)"
    INVALID_ACCEPTED = "invalid token (accepted)"
    INVALID_DECLINED = "invalid token (declined)"
    INVALID_REVOKED = "invalid token (revoked)"
    INVALID_EXPIRED = "invalid token (expired)"
    REPLIED_ACCEPTED = "replied: invalid token (accepted)"
    REPLIED_DECLINED = "replied: invalid token (declined)"
    REPLIED_REVOKED = "replied: invalid token (revoked)"
    REPLIED_EXPIRED = "replied: invalid token (expired)"


# an answer to a closed invitation, without a reply and with one
_INVALID = {
    Closed.ACCEPTED: Outcome.INVALID_ACCEPTED,
    Closed.DECLINED: Outcome.INVALID_DECLINED,
    Closed.REVOKED: Outcome.INVALID_REVOKED,
    Closed.EXPIRED: Outcome.INVALID_EXPIRED,
}
_REPLIED_INVALID = {
    Closed.ACCEPTED: Outcome.REPLIED_ACCEPTED,
    Closed.DECLINED: Outcome.REPLIED_DECLINED,
    Closed.REVOKED: Outcome.REPLIED_REVOKED,
    Closed.EXPIRED: Outcome.REPLIED_EXPIRED,
}


class Reply(StrEnum):
    """What we wrote back about an inbound mail (the log's ``reply``; NULL: nothing).

    The once-a-day guards read this, never the outcome's words.
    """

    EXPLAINED = "explained"  # told the invitee why the answer did not count, or how to answer
    CONFIRM_ASKED = "confirm_asked"  # asked the invitee to confirm an answer from someone else


@dataclass(frozen=True)
class WebAnswer:
    """An answer given without a mail: "answer invitation X with accept, by Y, via web".

    The page is the invitee's own link, so no From or Authentication-Results is
    read; ``message_id`` only names the answer in the inbound log.
    """

    token: str
    answer: VerdictKind  # accept or decline
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
    calendar_id: int  # the owner's mails link to the calendar's pages in the console

    @property
    def level_enum(self) -> Level:
        return Level(self.level)


@dataclass(frozen=True)
class SentMail:
    """The mail of ours a ``bounces+<key>`` address names."""

    kind: OutboxKind
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
    confirm_asked_ever: bool = False  # ...at any time: the owner was told it is held
    bounced_share: owner_notices.Parties | None = None  # a bounce's share: whom to tell


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
    status: ShareStatus  # ACCEPTED | DECLINED
    feed_secret: str | None = None  # accepted: the feed's secret (only its hash is stored)


@dataclass(frozen=True)
class Notice:
    """A mail to queue: its outbox kind and what to compose."""

    kind: OutboxKind
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
    kind: VerdictKind
    reason: str  # redacted
    size: int
    raw_copy: bytes | None  # the redacted copy kept for operators, if they keep any


@dataclass(frozen=True)
class Decision:
    """Everything an answer causes, as a value: ``apply`` writes it, nothing else."""

    action: Action
    outcome: Outcome  # as logged (the inbound row's outcome)
    now: datetime
    share_id: int | None = None  # the share the message concerns
    answered: Answered | None = None
    undeliverable: str | None = None  # why the share's invitation could not be delivered
    cancel: tuple[OutboxKind, ...] = ()  # the share's queued mails of these kinds are moot now
    notices: tuple[Notice, ...] = ()
    # queued only if the share does become undeliverable now (a late bounce: not again)
    owner_undeliverable: Notice | None = None
    log: LogRow | None = None  # None: nothing is logged (a duplicate, a closed web answer)
    reply: Reply | None = None  # what we wrote back about it (the once-a-day guards read it)


def find_invitation(db: Database, token: str) -> Invitation | None:
    """The invitation a token names, with its share, calendar and owner (web pages ask)."""
    return _invitation(db, token)


def why_invalid(invitation: Invitation, now: datetime) -> Closed | None:
    """Why an answer to this invitation cannot count now: expired, revoked, accepted…"""
    return _why_invalid(invitation, now)


def _invitation(db: Database, token: str) -> Invitation | None:
    row = db.execute(
        """SELECT i.id, i.share_id, i.used_at, i.revoked_at, i.expires_at, s.level, s.status,
                  s.invitee, s.invitee_name, s.lang, c.name, o.email, o.name, c.id
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
) -> Outcome:
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
) -> Outcome:
    """Answer the invitation ``token`` names with accept or decline, by ``by``, via ``via``.

    The same decision as a mailed answer, inside the caller's transaction, and logged
    in the inbound log as one. An invitation no longer open (a second click, a
    reload) changes nothing and is answered "closed": the page says why, no mail does.
    Returns the outcome ("accepted", "declined", "closed", "unknown token", …).
    """
    if answer not in (VerdictKind.ACCEPT, VerdictKind.DECLINE):
        raise UsageError(
            f"an invitation is answered with {VerdictKind.ACCEPT} or {VerdictKind.DECLINE},"
            f" not {answer!r}"
        )
    message_id = f"<{via}-{secrets.token_hex(16)}@{settings.mail.domain}>"
    given = WebAnswer(
        token=token, answer=VerdictKind(answer), by=by, via=via, message_id=message_id
    )
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
    if said.kind == VerdictKind.BOUNCE and said.form == RecipientForm.BOUNCES:
        bounced_mail = _bounced_mail(db, settings, said.bounce_key or "")
    if said.kind == VerdictKind.BOUNCE:
        share_id = bounced_mail.share_id if bounced_mail else None
        if said.form != RecipientForm.BOUNCES and invitation is not None:
            share_id = invitation.share_id
        bounced_share = None if share_id is None else owner_notices.parties(db, share_id)
        return Facts(invitation=invitation, bounced_mail=bounced_mail, bounced_share=bounced_share)
    if invitation is None or said.token is None or said.kind in _NOT_ANSWERS:
        return Facts(invitation=invitation, bounced_mail=bounced_mail)
    return Facts(
        invitation=invitation,
        bounced_mail=bounced_mail,
        replied_today=_replied_lately(db, said.token, said.sender, now),
        confirm_asked_today=_asked_to_confirm_lately(db, said.token, now),
        confirm_asked_ever=_asked_to_confirm_lately(db, said.token, None),
    )


_NOT_ANSWERS = (VerdictKind.BOUNCE, VerdictKind.AUTO_REPLY)
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
    return SentMail(OutboxKind(row[0]), row[1], recipients)


def _replied_lately(db: Database, token: str, sender: str | None, now: datetime) -> bool:
    return (
        db.execute(
            """SELECT 1 FROM inbound WHERE token_hash = ? AND sender IS ?
               AND reply IS NOT NULL AND received_at > ? LIMIT 1""",
            [token_hash(token), sender, utc_text(now - REPLY_EVERY)],
        ).fetchone()
        is not None
    )


def _asked_to_confirm_lately(db: Database, token: str, now: datetime | None) -> bool:
    """Whether the invitee was asked to confirm an answer to this token in the last day
    (``now`` None: ever)."""
    since = "" if now is None else utc_text(now - REPLY_EVERY)
    return (
        db.execute(
            """SELECT 1 FROM inbound WHERE token_hash = ? AND reply = ?
               AND received_at > ? LIMIT 1""",
            [token_hash(token), Reply.CONFIRM_ASKED, since],
        ).fetchone()
        is not None
    )


# --- decide: the pure part


@dataclass(frozen=True)
class _Said:
    """An answer however it came (a mail for one recipient, a click), as decide reads it."""

    kind: VerdictKind
    reason: str  # for the log only
    token: str | None
    sender: str | None
    message_id: str
    dedup: str
    authenticated: bool
    null_sender: bool = False
    form: RecipientForm | None = None
    bounce_key: str | None = None
    reported: tuple[str, ...] = ()
    weak: bool = False  # a bounce known by its subject alone


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
            form=RecipientForm(given.answer.value),
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
        weak=verdict.weak,
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
        return Decision(Action.IGNORE, Outcome.DUPLICATE, now)
    said = _said(given, settings)
    if isinstance(given, WebAnswer):
        if facts.invitation is None:
            return Decision(Action.IGNORE, Outcome.UNKNOWN_TOKEN, now)
        if _why_invalid(facts.invitation, now) is not None:
            # a second click, a reload: the page says why, and no mail is sent about it
            return Decision(Action.IGNORE, Outcome.CLOSED, now, facts.invitation.share_id)
    decision = _decide(said, facts, fresh, now, settings)
    return replace(decision, log=_log_row(given, said, settings))


def _decide(said: _Said, facts: Facts, fresh: Fresh, now: datetime, settings: Settings) -> Decision:
    invitation = facts.invitation
    if said.kind == VerdictKind.BOUNCE and said.weak and not said.null_sender:
        return Decision(
            Action.IGNORE,
            Outcome.BOUNCE_WEAK,
            now,
            invitation.share_id if invitation else None,
        )
    if said.kind == VerdictKind.BOUNCE:
        return _bounced(said, facts, fresh, now, settings)
    if said.kind == VerdictKind.AUTO_REPLY or said.token is None:
        # recorded, never answered: no mail loops
        return Decision(Action.IGNORE, Outcome.IGNORED, now)
    if invitation is None:
        return Decision(Action.IGNORE, Outcome.UNKNOWN_TOKEN, now)
    return _answer(said, facts, invitation, said.token, fresh, now, settings)


def _bounced(
    said: _Said, facts: Facts, fresh: Fresh, now: datetime, settings: Settings
) -> Decision:
    """A report that one of our mails failed.

    Only a report we can trust kills an invitation (the share becomes undeliverable
    and its token is revoked). To a bounces+<key> address: from the null sender, as
    every delivery report is (RFC 5321 §4.5.5), with a key that names a mail we sent
    (the key is never shown to the recipient's correspondents: the Message-ID holds
    only its hash), and naming that mail's recipient if it names any. To a token
    address, which anyone who saw a reply can write to: what an answer needs, from
    the invitee and authenticated. Everything else is recorded and changes nothing.
    """

    def recorded(share_id: int | None, outcome: Outcome = Outcome.BOUNCE_RECORDED) -> Decision:
        return Decision(Action.IGNORE, outcome, now, share_id)

    invitation = facts.invitation
    if said.form == RecipientForm.BOUNCES:
        sent = facts.bounced_mail
        if sent is None:
            return recorded(None, Outcome.BOUNCE_NOT_OURS)
        share_id = sent.share_id
        if sent.kind != OutboxKind.INVITATION or share_id is None:
            return recorded(share_id)
        if not said.null_sender:
            return recorded(share_id, Outcome.BOUNCE_NOT_NULL_SENDER)
        if said.reported and not set(said.reported) & sent.recipients:
            return recorded(share_id, Outcome.BOUNCE_OTHER_RECIPIENT)
    elif invitation is None:
        return recorded(None)
    else:
        share_id = invitation.share_id
        if not said.authenticated:
            return recorded(share_id, Outcome.BOUNCE_NOT_AUTHENTICATED)
        if said.sender != invitation.invitee:
            return recorded(share_id, Outcome.BOUNCE_NOT_INVITEE)
        if said.reported and invitation.invitee.lower() not in said.reported:
            return recorded(share_id, Outcome.BOUNCE_OTHER_RECIPIENT)
    told = None
    if facts.bounced_share is not None:
        spec = owner_notices.undeliverable(
            settings, facts.bounced_share, bounced=True, key=fresh.keys[0]
        )
        told = Notice(OutboxKind.OWNER_UNDELIVERABLE, spec)
    return Decision(
        Action.UNDELIVERABLE,
        Outcome.UNDELIVERABLE,
        now,
        share_id,
        undeliverable=f"bounced: {said.reason}",
        owner_undeliverable=told,
    )


def _why_invalid(invitation: Invitation, now: datetime) -> Closed | None:
    """Why an answer cannot count: an answered invitation says how."""
    if invitation.used_at and invitation.status == ShareStatus.ACCEPTED:
        return Closed.ACCEPTED
    if invitation.used_at and invitation.status == ShareStatus.DECLINED:
        return Closed.DECLINED
    if invitation.used_at or invitation.revoked_at or invitation.status != ShareStatus.INVITED:
        return Closed.REVOKED
    if invitation.expires_at <= utc_text(now):
        return Closed.EXPIRED
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
        return Decision(Action.IGNORE, Outcome.NOT_AUTHENTICATED, now, share_id)
    why = _why_invalid(invitation, now)
    if why is not None:
        # only the invitee is told: a stranger holding the token learns nothing of it
        if said.sender != invitation.invitee or facts.replied_today:
            return Decision(Action.IGNORE, _INVALID[why], now, share_id)
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
            _REPLIED_INVALID[why],
            now,
            share_id,
            notices=(Notice(OutboxKind.INVALID_TOKEN, spec),),
            reply=Reply.EXPLAINED,
        )
    if said.sender != invitation.invitee:
        if said.kind not in (VerdictKind.ACCEPT, VerdictKind.DECLINE) or facts.replied_today:
            return Decision(Action.HOLD, Outcome.HELD, now, share_id)
        if facts.confirm_asked_today:
            # one question a day per invitation, however many strangers hold the token
            return Decision(Action.HOLD, Outcome.HELD_ASKED_TODAY, now, share_id)
        forwarder = said.sender or "an unknown address"
        spec = compose.NoticeSpec(
            sender=sender,
            to=invitee,
            kind="confirm",
            calendar=invitation.calendar,
            lang=lang,
            extra=(("forwarder", forwarder),),
            links=tuple(_answer_links(settings, token, invitation)),
            reply_to=answer_address(RecipientForm.SHARE, token, settings.mail.domain),
            key=fresh.keys[0],
        )
        notices = [Notice(OutboxKind.CONFIRM, spec)]
        if not facts.confirm_asked_ever:  # the owner hears of a held answer once
            notices.append(_tell_owner_held(settings, invitation, forwarder, fresh.keys[1]))
        return Decision(
            Action.HOLD,
            Outcome.CONFIRM_ASKED,
            now,
            share_id,
            notices=tuple(notices),
            reply=Reply.CONFIRM_ASKED,
        )
    if said.kind == VerdictKind.ACCEPT:
        return _accept(settings, now, invitation, sender, invitee, fresh)
    if said.kind == VerdictKind.DECLINE:
        return Decision(
            Action.DECLINE,
            Outcome.DECLINED,
            now,
            share_id,
            answered=Answered(share_id, invitation.id, ShareStatus.DECLINED),
            cancel=_MOOT,
            notices=(
                _tell_owner(settings, invitation, sender, ShareStatus.DECLINED, fresh.keys[0]),
            ),
        )
    assert said.kind == VerdictKind.UNKNOWN
    if facts.replied_today:
        return Decision(Action.IGNORE, Outcome.UNKNOWN_ANSWER, now, share_id)
    spec = compose.NoticeSpec(
        sender=sender,
        to=invitee,
        kind="answer_help",
        calendar=invitation.calendar,
        lang=lang,
        links=tuple(_answer_links(settings, token, invitation)),
        reply_to=answer_address(RecipientForm.SHARE, token, settings.mail.domain),
        in_reply_to=said.message_id,
        key=fresh.keys[0],
    )
    return Decision(
        Action.EXPLAIN,
        Outcome.HOW_TO_ANSWER,
        now,
        share_id,
        notices=(Notice(OutboxKind.ANSWER_HELP, spec),),
        reply=Reply.EXPLAINED,
    )


# asking to confirm or explaining how to answer is moot once the answer is in
_MOOT = (OutboxKind.CONFIRM, OutboxKind.ANSWER_HELP)


def _answer_links(settings: Settings, token: str, invitation: Invitation) -> list[tuple[str, str]]:
    domain = settings.mail.domain
    topic = invitation.calendar
    accept, decline = RecipientForm.ACCEPT, RecipientForm.DECLINE
    return [
        ("invitation.accept", answer_mailto(accept, token, domain, f"Accept: {topic}")),
        ("invitation.decline", answer_mailto(decline, token, domain, f"Decline: {topic}")),
    ]


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
        Outcome.ACCEPTED,
        now,
        invitation.share_id,
        answered=Answered(
            invitation.share_id, invitation.id, ShareStatus.ACCEPTED, fresh.feed_secret
        ),
        cancel=_MOOT,
        notices=(
            Notice(OutboxKind.WELCOME, welcome),
            _tell_owner(settings, invitation, sender, ShareStatus.ACCEPTED, fresh.keys[1]),
        ),
    )


# the owner's notice of an answer: its outbox kind, and its template
_OWNER_TOLD = {
    ShareStatus.ACCEPTED: (OutboxKind.OWNER_ACCEPTED, "accepted"),
    ShareStatus.DECLINED: (OutboxKind.OWNER_DECLINED, "declined"),
}


def _tell_owner(
    settings: Settings,
    invitation: Invitation,
    sender: compose.Sender,
    answer: ShareStatus,
    key: str,
) -> Notice:
    outbox_kind, kind = _OWNER_TOLD[answer]
    invitee = invitation.invitee_name or invitation.invitee
    spec = compose.NoticeSpec(
        sender=sender,
        to=Mailbox(invitation.owner, invitation.owner_name),
        kind=kind,
        calendar=invitation.calendar,
        lang=settings.mail.lang,
        level=Level(invitation.level),
        extra=(("invitee", invitee), ("invitee_address", invitation.invitee)),
        # where the owner acts on the answer: change the level, remove, invite again
        links=(("owner.people", _people_url(settings, invitation)),),
        key=key,
    )
    return Notice(outbox_kind, spec)


def _tell_owner_held(
    settings: Settings, invitation: Invitation, answered_by: str, key: str
) -> Notice:
    who = owner_notices.Parties(
        owner=invitation.owner,
        owner_name=invitation.owner_name,
        invitee=invitation.invitee,
        invitee_name=invitation.invitee_name,
        calendar=invitation.calendar,
        calendar_id=invitation.calendar_id,
    )
    spec = owner_notices.held(settings, who, answered_by=answered_by, key=key)
    return Notice(OutboxKind.OWNER_HELD, spec)


def _people_url(settings: Settings, invitation: Invitation) -> str:
    return console_url(settings.http.base_url, invitation.calendar_id, ConsolePage.PEOPLE)


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
        if answered.status == ShareStatus.ACCEPTED:
            assert answered.feed_secret is not None
            lifecycle.accept(
                db,
                answered.share_id,
                answered.invitation_id,
                token_hash(answered.feed_secret),
                decision.now,
            )
        else:
            lifecycle.decline(db, answered.share_id, answered.invitation_id, decision.now)
    if decision.undeliverable is not None and share_id is not None:
        marked = lifecycle.mark_undeliverable(db, share_id, decision.now, decision.undeliverable)
        told = decision.owner_undeliverable
        if marked and told is not None:  # once per invitation: a late bounce tells nobody
            outbox.enqueue_notice(
                db, told.spec, kind=told.kind, share_id=share_id, now=decision.now
            )
    for notice in decision.notices:
        outbox.enqueue_notice(
            db, notice.spec, kind=notice.kind, share_id=share_id, now=decision.now
        )
    row = decision.log
    if row is None:
        return
    cursor = db.execute(
        """INSERT INTO inbound (received_at, dedup, message_id, mail_from, recipient, sender,
               token_hash, kind, reason, outcome, reply, share_id, size)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
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
            decision.reply,
            share_id,
            row.size,
        ],
    )
    if row.raw_copy is not None:
        db.execute(
            "INSERT INTO inbound_raw (inbound_id, raw) VALUES (?, ?)",
            [cursor.lastrowid, row.raw_copy],
        )
