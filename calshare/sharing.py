"""Share a calendar with someone, change the level, stop sharing, and list who has what.

One share per (calendar, invitee): sharing again changes that share instead of
making a second one. Every change and the mail that reports it are written in
the same transaction, so a mail is queued exactly when its change happened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from sqlite_utils import Database

from calshare import lifecycle, owner_notices
from calshare.addresses import Mailbox, parse_mailbox
from calshare.calendars import Calendar, get_calendar
from calshare.clock import Clock
from calshare.config import Settings
from calshare.errors import ShareRefused, ShareStateError, UnknownShare, UsageError
from calshare.levels import Level
from calshare.lifecycle import ShareStatus, audit, shown_status
from calshare.policy import check_share
from calshare.store import Store
from calshare.tokens import RandomBytes, log_id, new_token, token_hash
from mailer import compose, outbox
from mailer.outbox import OutboxKind, OutboxStatus
from mailer.sender import OnFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Share:
    calendar: str
    invitee: str
    invitee_name: str
    level: Level
    status: ShareStatus  # as shown: "expired" is an invitation past its date
    lang: str
    invited_at: str
    expires_at: str
    answered_at: str | None
    revoked_at: str | None


class ShareAction(StrEnum):
    """What sharing did (``calshare share --json`` says it as ``action``)."""

    INVITED = "invited"
    LEVEL_CHANGED = "level_changed"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ShareOutcome:
    share: Share
    action: ShareAction
    message_id: str | None


def mail_sender(settings: Settings, calendar: Calendar) -> compose.Sender:
    return compose.Sender(
        domain=settings.mail.domain,
        from_mailbox=parse_mailbox(settings.mail.from_address),
        owner=Mailbox(calendar.owner, calendar.owner_name),
    )


def check_deliverable(mailbox: Mailbox) -> None:
    if not mailbox.address.isascii():
        raise ShareRefused(
            f"{mailbox.address} has letters outside ASCII before the @, which mail "
            "can only carry with SMTPUTF8; use the person's ASCII address"
        )


def share(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar_name: str,
    invitee: str,
    level: Level,
    *,
    lang: str | None = None,
    message: str | None = None,
    random_bytes: RandomBytes | None = None,
    owner: str | None = None,
) -> ShareOutcome:
    """Invite someone, or change the level of an existing share."""
    calendar = get_calendar(store.db, calendar_name, owner)
    mailbox = check_share(settings.policy, calendar.owner, invitee, level)
    check_deliverable(mailbox)
    lang = lang or settings.mail.lang
    if message is not None and len(message) > 2000:
        raise UsageError("The message is longer than 2,000 characters; keep it short")
    sender = mail_sender(settings, calendar)
    now = clock.now()
    with store.write() as db:
        row = _existing(db, calendar.id, mailbox.address)
        if row is not None and not mailbox.display_name and row.name:
            mailbox = Mailbox(mailbox.address, row.name)  # the name given before still holds
        if row is not None and row.status == ShareStatus.ACCEPTED:
            share_id = row.id
            if row.level == level.value:
                return ShareOutcome(_load(db, share_id, now), ShareAction.UNCHANGED, None)
            lifecycle.change_level(db, share_id, level, lang, now)
            mail = compose.notice(
                sender,
                mailbox,
                kind="level_changed",
                calendar=calendar.name,
                lang=lang,
                now=now,
                level=level,
            )
            outbox.enqueue(db, mail, kind=OutboxKind.LEVEL_CHANGED, share_id=share_id, now=now)
            audit(db, now, "level_changed", calendar.id, mailbox.address, f"{row.level} -> {level}")
            log.info(
                "share %s -> %s: level %s -> %s", calendar.name, mailbox.address, row.level, level
            )
            return ShareOutcome(
                _load(db, share_id, now), ShareAction.LEVEL_CHANGED, mail.message_id
            )

        expires = now + timedelta(days=settings.policy.invitation_days)
        token = new_token(random_bytes) if random_bytes else new_token()
        if row is not None:
            _withdraw(db, row.id)
        share_id = lifecycle.invite(
            db,
            None if row is None else row.id,
            calendar_id=calendar.id,
            invitee=mailbox,
            level=level,
            lang=lang,
            message=message,
            token_hash=token_hash(token),
            now=now,
            expires=expires,
        )
        mail = compose.invitation(
            sender,
            mailbox,
            calendar=calendar.name,
            level=level,
            token=token,
            base_url=settings.http.base_url,
            expires=expires.date(),
            lang=lang,
            message=message,
            now=now,
        )
        outbox.enqueue(db, mail, kind=OutboxKind.INVITATION, share_id=share_id, now=now)
        audit(db, now, "invited", calendar.id, mailbox.address, f"level {level}")
        log.info(
            "share %s -> %s: invited at %s, token %s, mail %s",
            calendar.name,
            mailbox.address,
            level,
            log_id(token),
            mail.message_id,
        )
        return ShareOutcome(_load(db, share_id, now), ShareAction.INVITED, mail.message_id)


class _Row(NamedTuple):
    id: int
    status: ShareStatus  # as stored
    level: str
    lang: str
    name: str


def _existing(db: Database, calendar_id: int, address: str) -> _Row | None:
    """The share of this calendar with this address, if there ever was one."""
    row = db.execute(
        "SELECT id, status, level, lang, invitee_name FROM shares"
        " WHERE calendar_id = ? AND invitee = ?",
        [calendar_id, address],
    ).fetchone()
    return None if row is None else _Row(row[0], ShareStatus(row[1]), *row[2:])


def _withdraw(db: Database, share_id: int) -> None:
    """Mails with the share's old tokens or feed are not sent (the lifecycle kills the tokens)."""
    outbox.cancel(db, share_id, outbox.WITHDRAWN_WITH_SHARE)


def unshare(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar_name: str,
    invitee: str,
    *,
    owner: str | None = None,
) -> Share:
    """Stop sharing: tokens die at once, and the former invitee is told (if configured)."""
    calendar = get_calendar(store.db, calendar_name, owner)
    mailbox = parse_mailbox(invitee)
    now = clock.now()
    with store.write() as db:
        row = _existing(db, calendar.id, mailbox.address)
        if row is None or not lifecycle.allows(lifecycle.Move.REVOKE, row.status):
            raise UnknownShare(f"{calendar.name!r} is not shared with {mailbox.address}")
        share_id, lang, name = row.id, row.lang, row.name
        _withdraw(db, share_id)
        status = lifecycle.revoke(db, share_id, now)
        if settings.mail.notify_unshare and _was_told(db, share_id, status):
            mail = compose.notice(
                mail_sender(settings, calendar),
                Mailbox(mailbox.address, name),
                kind="unshared",
                calendar=calendar.name,
                lang=lang,
                now=now,
            )
            outbox.enqueue(db, mail, kind=OutboxKind.UNSHARED, share_id=share_id, now=now)
        audit(db, now, "unshared", calendar.id, mailbox.address, f"was {status}")
        log.info("share %s -> %s: revoked (was %s)", calendar.name, mailbox.address, status)
        return _load(db, share_id, now)


def _was_told(db: Database, share_id: int, status: ShareStatus) -> bool:
    """Whether the invitee knows of the share: accepted it, or got an invitation.

    Someone whose invitation was withdrawn before it went out hears nothing.
    """
    if status == ShareStatus.ACCEPTED:
        return True
    if status != ShareStatus.INVITED:
        return False
    sent = db.execute(
        "SELECT 1 FROM outbox WHERE share_id = ? AND kind = ? AND status = ? LIMIT 1",
        [share_id, OutboxKind.INVITATION, OutboxStatus.SENT],
    ).fetchone()
    return sent is not None


def delivery_failed(settings: Settings) -> OnFailed:
    """What a mail the recipient's side refused for good means here (the outbox sender's
    ``on_failed``): an invitation nobody can receive makes its share undeliverable, and
    its owner is told once, with a link to the People page.

    Only an invitation counts: an owner notice that fails causes nothing, so no loop.
    """

    def failed(db: Database, mail: outbox.Claimed, now: datetime, reason: str) -> None:
        if mail.kind != OutboxKind.INVITATION or mail.share_id is None:
            return
        if not lifecycle.mark_undeliverable(db, mail.share_id, now, reason):
            return  # already undeliverable, or moved on: the owner was told, or need not be
        who = owner_notices.parties(db, mail.share_id)
        if who is None:
            return
        spec = owner_notices.undeliverable(
            settings, who, bounced=False, detail=reason, key=compose.new_message_key()
        )
        outbox.enqueue_notice(
            db, spec, kind=OutboxKind.OWNER_UNDELIVERABLE, share_id=mail.share_id, now=now
        )
        log.info("sharing: invitation %d undeliverable, owner told", mail.share_id)

    return failed


_SELECT = """
SELECT c.name, s.invitee, s.invitee_name, s.level, s.status, s.lang, s.invited_at, s.expires_at,
       s.answered_at, s.revoked_at
FROM shares s JOIN calendars c ON c.id = s.calendar_id
"""


def _from_row(row: tuple[str, ...], now: datetime) -> Share:
    name, invitee, invitee_name, level, status, lang, invited, expires, answered, revoked = row
    return Share(
        name,
        invitee,
        invitee_name,
        Level(level),
        shown_status(status, expires, now),
        lang,
        invited,
        expires,
        answered,
        revoked,
    )


def _load(db: Database, share_id: int, now: datetime) -> Share:
    return _from_row(db.execute(_SELECT + " WHERE s.id = ?", [share_id]).fetchone(), now)


def list_shares(
    store: Store, clock: Clock, calendar_name: str | None = None, *, owner: str | None = None
) -> list[Share]:
    """The shares of one calendar (``owner``'s, when given), or of all (only ``owner``'s)."""
    now = clock.now()
    if calendar_name is None and owner is not None:
        rows = store.db.execute(
            _SELECT + " JOIN owners o ON o.id = c.owner_id WHERE o.email = ?"
            " ORDER BY c.name, s.invitee",
            [owner],
        ).fetchall()
    elif calendar_name is None:
        rows = store.db.execute(_SELECT + " ORDER BY c.name, s.invitee").fetchall()
    elif calendar_name is None:
        # every calendar of one owner's, in one query (My calendars counts them)
        rows = store.db.execute(
            _SELECT + " JOIN owners o ON o.id = c.owner_id WHERE o.email = ?"
            " ORDER BY c.name, s.invitee",
            [owner],
        ).fetchall()
    else:
        calendar = get_calendar(store.db, calendar_name, owner)
        rows = store.db.execute(
            _SELECT + " WHERE s.calendar_id = ? ORDER BY s.invitee", [calendar.id]
        ).fetchall()
    return [_from_row(row, now) for row in rows]


# Where the People page's buttons start from: a change of level goes to an accepted share
# (the invitee is told) or to an invitation still open (sent again at the new level);
# a fresh invitation goes to anyone who has not got the calendar and was not removed.
CHANGEABLE = frozenset({ShareStatus.ACCEPTED, ShareStatus.INVITED, ShareStatus.EXPIRED})
RESENDABLE = frozenset(
    {
        ShareStatus.INVITED,
        ShareStatus.EXPIRED,
        ShareStatus.DECLINED,
        ShareStatus.UNDELIVERABLE,
    }
)


class _Shown(NamedTuple):
    id: int
    status: ShareStatus  # as shown: an invitation past its date is expired
    level: Level
    lang: str
    message: str | None
    mailbox: Mailbox


def _shown(store: Store, clock: Clock, calendar: Calendar, invitee: str) -> _Shown:
    """The share of ``calendar`` with ``invitee`` as it is now; UnknownShare if never."""
    mailbox = parse_mailbox(invitee)
    row = store.db.execute(
        "SELECT id, status, expires_at, level, lang, message, invitee_name FROM shares"
        " WHERE calendar_id = ? AND invitee = ?",
        [calendar.id, mailbox.address],
    ).fetchone()
    if row is None:
        raise UnknownShare(f"{calendar.name!r} is not shared with {mailbox.address}")
    share_id, status, expires, level, lang, message, name = row
    shown = shown_status(status, expires, clock.now())
    return _Shown(share_id, shown, Level(level), lang, message, Mailbox(mailbox.address, name))


def change_level(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar_name: str,
    invitee: str,
    level: Level,
    *,
    owner: str | None = None,
) -> ShareOutcome:
    """Give an existing share another level, in the invitee's language.

    Accepted: the level changes and the invitee is told (``share`` does both). An
    invitation not yet answered is sent again at the new level, with the message it
    had: the mail they hold names the old level, and an invitation must not promise
    what the share no longer is; the old one stops working. Declined, undeliverable
    or removed shares have no level to change (``ShareStateError``): inviting them
    again is a choice of its own (``resend``, or sharing anew).
    """
    calendar = get_calendar(store.db, calendar_name, owner)
    found = _shown(store, clock, calendar, invitee)
    if found.status not in CHANGEABLE:
        raise ShareStateError(
            f"{found.mailbox.address} is {found.status}, so there is no level to change; "
            "invite them again instead"
        )
    if found.level == level:  # nothing to tell anyone: no mail, no new token
        return ShareOutcome(_load(store.db, found.id, clock.now()), ShareAction.UNCHANGED, None)
    message = found.message if found.status != ShareStatus.ACCEPTED else None
    return share(
        store,
        settings,
        clock,
        calendar.name,
        found.mailbox.address,
        level,
        lang=found.lang,
        message=message,
        owner=calendar.owner,
    )


def resend(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar_name: str,
    invitee: str,
    *,
    owner: str | None = None,
    random_bytes: RandomBytes | None = None,
) -> ShareOutcome:
    """A fresh invitation at the same level, language and message; the old token dies.

    For an invitation not answered (open or expired), declined, or undeliverable.
    An accepted share has its feed already and a removed one was the owner's choice:
    both are refused (``ShareStateError``). Policy is checked again, as it may have
    changed since the first invitation.
    """
    calendar = get_calendar(store.db, calendar_name, owner)
    found = _shown(store, clock, calendar, invitee)
    if found.status not in RESENDABLE:
        raise ShareStateError(
            f"{found.mailbox.address} is {found.status}, so there is no invitation to send again"
        )
    return share(
        store,
        settings,
        clock,
        calendar.name,
        found.mailbox.address,
        found.level,
        lang=found.lang,
        message=found.message,
        random_bytes=random_bytes,
        owner=calendar.owner,
    )
