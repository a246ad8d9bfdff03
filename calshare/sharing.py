"""Share a calendar with someone, change the level, stop sharing, and list who has what.

One share per (calendar, invitee): sharing again changes that share instead of
making a second one. Every change and the mail that reports it are written in
the same transaction, so a mail is queued exactly when its change happened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlite_utils import Database

from calshare.addresses import Mailbox, parse_mailbox
from calshare.calendars import Calendar, get_calendar
from calshare.clock import Clock, utc_text
from calshare.config import Settings
from calshare.errors import ShareRefused, UnknownShare, UsageError
from calshare.levels import Level
from calshare.policy import check_share
from calshare.store import Store
from calshare.tokens import RandomBytes, log_id, new_token, token_hash
from mailer import compose, outbox

log = logging.getLogger(__name__)

INVITED, ACCEPTED, DECLINED, REVOKED, EXPIRED, UNDELIVERABLE = (
    "invited",
    "accepted",
    "declined",
    "revoked",
    "expired",
    "undeliverable",
)


@dataclass(frozen=True)
class Share:
    calendar: str
    invitee: str
    invitee_name: str
    level: Level
    status: str  # as shown: "expired" is an invitation past its date
    lang: str
    invited_at: str
    expires_at: str
    answered_at: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class ShareOutcome:
    share: Share
    action: str  # invited | level_changed | unchanged
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


def audit(
    db: Database, now: datetime, action: str, calendar_id: int, subject: str, detail: str
) -> None:
    db.execute(
        "INSERT INTO audit (at, action, calendar_id, subject, detail) VALUES (?, ?, ?, ?, ?)",
        [utc_text(now), action, calendar_id, subject, detail],
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
) -> ShareOutcome:
    """Invite someone, or change the level of an existing share."""
    calendar = get_calendar(store.db, calendar_name)
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
        if row is not None and row.status == ACCEPTED:
            share_id = row.id
            if row.level == level.value:
                return ShareOutcome(_load(db, share_id, now), "unchanged", None)
            db.execute(
                "UPDATE shares SET level = ?, lang = ?, updated_at = ? WHERE id = ?",
                [level.value, lang, utc_text(now), share_id],
            )
            mail = compose.notice(
                sender,
                mailbox,
                kind="level_changed",
                calendar=calendar.name,
                lang=lang,
                now=now,
                level=level,
            )
            outbox.enqueue(db, mail, kind=outbox.LEVEL_CHANGED, share_id=share_id, now=now)
            audit(db, now, "level_changed", calendar.id, mailbox.address, f"{row.level} -> {level}")
            log.info(
                "share %s -> %s: level %s -> %s", calendar.name, mailbox.address, row.level, level
            )
            return ShareOutcome(_load(db, share_id, now), "level_changed", mail.message_id)

        expires = now + timedelta(days=settings.policy.invitation_days)
        token = new_token(random_bytes) if random_bytes else new_token()
        if row is None:
            share_id = int(
                db.execute(
                    """INSERT INTO shares (calendar_id, invitee, invitee_name, level, status, lang,
                           message, created_at, invited_at, expires_at, updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [
                        calendar.id,
                        mailbox.address,
                        mailbox.display_name,
                        level.value,
                        INVITED,
                        lang,
                        message,
                        utc_text(now),
                        utc_text(now),
                        utc_text(expires),
                        utc_text(now),
                    ],
                ).lastrowid
                or 0
            )
        else:
            share_id = row.id
            _withdraw(db, share_id, now)
            db.execute(
                """UPDATE shares SET invitee_name = COALESCE(NULLIF(?, ''), invitee_name),
                       level = ?, status = ?, lang = ?, message = ?,
                       invited_at = ?, expires_at = ?, answered_at = NULL, revoked_at = NULL,
                       feed_hash = NULL, updated_at = ?
                   WHERE id = ?""",
                [
                    mailbox.display_name,
                    level.value,
                    INVITED,
                    lang,
                    message,
                    utc_text(now),
                    utc_text(expires),
                    utc_text(now),
                    share_id,
                ],
            )
        db.execute(
            """INSERT INTO invitations (share_id, token_hash, level, created_at, expires_at)
               VALUES (?, ?, ?, ?, ?)""",
            [share_id, token_hash(token), level.value, utc_text(now), utc_text(expires)],
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
        outbox.enqueue(db, mail, kind=outbox.INVITATION, share_id=share_id, now=now)
        audit(db, now, "invited", calendar.id, mailbox.address, f"level {level}")
        log.info(
            "share %s -> %s: invited at %s, token %s, mail %s",
            calendar.name,
            mailbox.address,
            level,
            log_id(token),
            mail.message_id,
        )
        return ShareOutcome(_load(db, share_id, now), "invited", mail.message_id)


class _Row(NamedTuple):
    id: int
    status: str
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
    return None if row is None else _Row(*row)


def _withdraw(db: Database, share_id: int, now: datetime) -> None:
    """Old tokens stop working and their unsent invitations are not sent."""
    db.execute(
        "UPDATE invitations SET revoked_at = ? WHERE share_id = ? AND revoked_at IS NULL"
        " AND used_at IS NULL",
        [utc_text(now), share_id],
    )
    outbox.cancel(db, share_id, outbox.WITHDRAWN_WITH_SHARE)


def unshare(
    store: Store, settings: Settings, clock: Clock, calendar_name: str, invitee: str
) -> Share:
    """Stop sharing: tokens die at once, and the former invitee is told (if configured)."""
    calendar = get_calendar(store.db, calendar_name)
    mailbox = parse_mailbox(invitee)
    now = clock.now()
    with store.write() as db:
        row = _existing(db, calendar.id, mailbox.address)
        if row is None or row.status in (REVOKED, DECLINED):
            raise UnknownShare(f"{calendar.name!r} is not shared with {mailbox.address}")
        share_id, status, lang, name = row.id, row.status, row.lang, row.name
        _withdraw(db, share_id, now)
        db.execute(
            # the feed secret goes with the share: its URL stops working at once
            """UPDATE shares SET status = ?, revoked_at = ?, feed_hash = NULL, updated_at = ?
               WHERE id = ?""",
            [REVOKED, utc_text(now), utc_text(now), share_id],
        )
        if settings.mail.notify_unshare and _was_told(db, share_id, status):
            mail = compose.notice(
                mail_sender(settings, calendar),
                Mailbox(mailbox.address, name),
                kind="unshared",
                calendar=calendar.name,
                lang=lang,
                now=now,
            )
            outbox.enqueue(db, mail, kind=outbox.UNSHARED, share_id=share_id, now=now)
        audit(db, now, "unshared", calendar.id, mailbox.address, f"was {status}")
        log.info("share %s -> %s: revoked (was %s)", calendar.name, mailbox.address, status)
        return _load(db, share_id, now)


def _was_told(db: Database, share_id: int, status: str) -> bool:
    """Whether the invitee knows of the share: accepted it, or got an invitation.

    Someone whose invitation was withdrawn before it went out hears nothing.
    """
    if status == ACCEPTED:
        return True
    if status != INVITED:
        return False
    sent = db.execute(
        "SELECT 1 FROM outbox WHERE share_id = ? AND kind = ? AND status = 'sent' LIMIT 1",
        [share_id, outbox.INVITATION],
    ).fetchone()
    return sent is not None


def mark_undeliverable(db: Database, share_id: int, now: datetime, reason: str) -> None:
    """The invitation could not be delivered: the share says so, and its tokens die."""
    row = db.execute(
        "SELECT status, calendar_id, invitee FROM shares WHERE id = ?", [share_id]
    ).fetchone()
    if row is None or row[0] != INVITED:
        return
    db.execute(
        "UPDATE shares SET status = ?, updated_at = ? WHERE id = ?",
        [UNDELIVERABLE, utc_text(now), share_id],
    )
    db.execute(
        "UPDATE invitations SET revoked_at = ? WHERE share_id = ? AND revoked_at IS NULL",
        [utc_text(now), share_id],
    )
    audit(db, now, "undeliverable", row[1], row[2], reason[:300])


def delivery_failed(db: Database, mail: outbox.Claimed, now: datetime, reason: str) -> None:
    """What a mail the recipient's side refused for good means here (the outbox sender's
    ``on_failed``): an invitation nobody can receive makes its share undeliverable."""
    if mail.kind == outbox.INVITATION and mail.share_id is not None:
        mark_undeliverable(db, mail.share_id, now, reason)


_SELECT = """
SELECT c.name, s.invitee, s.invitee_name, s.level, s.status, s.lang, s.invited_at, s.expires_at,
       s.answered_at, s.revoked_at
FROM shares s JOIN calendars c ON c.id = s.calendar_id
"""


def _shown_status(status: str, expires_at: str, now: datetime) -> str:
    return EXPIRED if status == INVITED and expires_at <= utc_text(now) else status


def _from_row(row: tuple[str, ...], now: datetime) -> Share:
    name, invitee, invitee_name, level, status, lang, invited, expires, answered, revoked = row
    return Share(
        name,
        invitee,
        invitee_name,
        Level(level),
        _shown_status(status, expires, now),
        lang,
        invited,
        expires,
        answered,
        revoked,
    )


def _load(db: Database, share_id: int, now: datetime) -> Share:
    return _from_row(db.execute(_SELECT + " WHERE s.id = ?", [share_id]).fetchone(), now)


def list_shares(store: Store, clock: Clock, calendar_name: str | None = None) -> list[Share]:
    now = clock.now()
    if calendar_name is None:
        rows = store.db.execute(_SELECT + " ORDER BY c.name, s.invitee").fetchall()
    else:
        calendar = get_calendar(store.db, calendar_name)
        rows = store.db.execute(
            _SELECT + " WHERE s.calendar_id = ? ORDER BY s.invitee", [calendar.id]
        ).fetchall()
    return [_from_row(row, now) for row in rows]
