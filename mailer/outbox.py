"""The outbox table: mail is queued in the transaction of the change that causes it.

A row is ``queued`` until a sender claims it (``sending``), then ``sent`` or
``failed``, or ``cancelled`` when what it announced no longer holds (a revoked
invitation). Its bytes live in ``outbox_bodies`` and are deleted once the row
leaves ``queued``/``sending``: the outbox keeps the history, not the tokens
inside the mails.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlite_utils import Database

from calshare.clock import parse_utc, utc_text
from calshare.links import BOUNCE_KEY_FORGOTTEN_SQL
from mailer.compose import NoticeSpec, OutgoingMail


class OutboxKind(StrEnum):
    """What a queued mail is; the outbox's ``kind`` column holds these values."""

    INVITATION = "invitation"
    LEVEL_CHANGED = "level_changed"
    UNSHARED = "unshared"
    WELCOME = "welcome"  # carries the feed link
    CONFIRM = "confirm"  # asks the invitee to confirm an answer from another address
    ANSWER_HELP = "answer_help"
    INVALID_TOKEN = "invalid_token"
    OWNER_ACCEPTED = "owner_accepted"
    OWNER_DECLINED = "owner_declined"
    OWNER_UNDELIVERABLE = "owner_undeliverable"  # to an owner: an invitation came back
    OWNER_HELD = "owner_held"  # to an owner: an answer from another address waits
    SNAPSHOT = "snapshot"  # a copy of a date range, sent by its owner
    SOURCE_FAILING = "source_failing"  # to an owner: the calendar's source has failed for long
    SOURCE_RECOVERED = "source_recovered"  # to an owner: it works again
    SIGNIN = "signin"  # to an owner: a link that signs in to the console (its token inside)


class OutboxStatus(StrEnum):
    """Where a mail is in its life (see the module's docstring); the ``status`` column."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


# What a withdrawn share must not send any more: mails with its token or its feed.
WITHDRAWN_WITH_SHARE = (
    OutboxKind.INVITATION,
    OutboxKind.LEVEL_CHANGED,
    OutboxKind.WELCOME,
    OutboxKind.CONFIRM,
    OutboxKind.ANSWER_HELP,
)


def enqueue(
    db: Database, mail: OutgoingMail, *, kind: OutboxKind, share_id: int | None, now: datetime
) -> int:
    """Queue a mail; call inside the write transaction of the change it reports."""
    mail_id = _insert(
        db, mail.message_id, mail.envelope_from, mail.recipients, mail.subject, kind, share_id, now
    )
    db.execute("INSERT INTO outbox_bodies (outbox_id, raw) VALUES (?, ?)", [mail_id, mail.raw])
    return mail_id


def enqueue_notice(
    db: Database, spec: NoticeSpec, *, kind: OutboxKind, share_id: int | None, now: datetime
) -> int:
    """Queue a notice to be composed by the sender (see NoticeSpec)."""
    subject = (
        f"{spec.kind} about {spec.calendar}"  # for `calshare outbox`; the mail's own is set then
    )
    mail_id = _insert(
        db, spec.message_id, spec.envelope_from, (spec.to.address,), subject, kind, share_id, now
    )
    db.execute(
        "INSERT INTO outbox_bodies (outbox_id, spec) VALUES (?, ?)", [mail_id, spec.to_json()]
    )
    return mail_id


def _insert(
    db: Database,
    message_id: str,
    envelope_from: str,
    recipients: Sequence[str],
    subject: str,
    kind: str,
    share_id: int | None,
    now: datetime,
) -> int:
    cursor = db.execute(
        """INSERT INTO outbox (message_id, kind, share_id, envelope_from, recipients, subject,
               status, next_attempt_at, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            message_id,
            kind,
            share_id,
            envelope_from,
            json.dumps(list(recipients)),
            subject,
            OutboxStatus.QUEUED,
            utc_text(now),
            utc_text(now),
        ],
    )
    return int(cursor.lastrowid or 0)


def cancel(db: Database, share_id: int, kinds: Sequence[OutboxKind]) -> int:
    """Drop queued mails of a share that no longer hold (a superseded invitation)."""
    marks = ", ".join("?" * len(kinds))
    # A mail being sent right now is cancelled too: the sender checks before each send.
    cursor = db.execute(
        f"""UPDATE outbox SET status = ?
            WHERE share_id = ? AND status IN (?, ?) AND kind IN ({marks})""",
        [OutboxStatus.CANCELLED, share_id, OutboxStatus.QUEUED, OutboxStatus.SENDING, *kinds],
    )
    ids = [row[0] for row in db.execute("SELECT id FROM outbox WHERE share_id = ?", [share_id])]
    drop_bodies(db, ids)
    return cursor.rowcount


def drop_bodies(db: Database, mail_ids: Sequence[int]) -> None:
    """Delete the bytes of those mails that no longer need them (sent, failed, cancelled)."""
    if not mail_ids:
        return
    marks = ", ".join("?" * len(mail_ids))
    db.execute(
        f"""DELETE FROM outbox_bodies WHERE outbox_id IN
               (SELECT id FROM outbox WHERE id IN ({marks}) AND status NOT IN (?, ?))""",
        [*mail_ids, OutboxStatus.QUEUED, OutboxStatus.SENDING],
    )


def still_claimed(db: Database, mail_id: int) -> bool:
    row = db.execute("SELECT status FROM outbox WHERE id = ?", [mail_id]).fetchone()
    return row is not None and row[0] == OutboxStatus.SENDING


@dataclass(frozen=True)
class Entry:
    id: int
    message_id: str
    kind: OutboxKind
    recipients: tuple[str, ...]
    subject: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: str  # UTC text, as every *_at (calshare.clock)
    last_error: str | None
    created_at: str
    sent_at: str | None


def entries(
    db: Database,
    statuses: Sequence[OutboxStatus] = (
        OutboxStatus.QUEUED,
        OutboxStatus.SENDING,
        OutboxStatus.FAILED,
    ),
) -> list[Entry]:
    marks = ", ".join("?" * len(statuses))
    rows = db.execute(
        f"""SELECT id, message_id, kind, recipients, subject, status, attempts, next_attempt_at,
                   last_error, created_at, sent_at
            FROM outbox WHERE status IN ({marks}) ORDER BY id""",
        list(statuses),
    ).fetchall()
    return [
        Entry(
            row[0],
            row[1],
            OutboxKind(row[2]),
            tuple(json.loads(row[3])),
            row[4],
            OutboxStatus(row[5]),
            *row[6:],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Claimed:
    id: int
    message_id: str
    kind: OutboxKind
    share_id: int | None
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes | None  # the message, or None when it is to be composed from ``spec``
    attempts: int
    created_at: datetime
    spec: str | None = None

    def message(self, now: datetime) -> bytes:
        """The bytes to send: as queued, or composed now from the spec."""
        if self.raw is not None:
            return self.raw
        assert self.spec is not None
        return NoticeSpec.from_json(self.spec).compose(now).raw


def release_interrupted(db: Database) -> int:
    """Mails a dead sender had claimed go back to the queue.

    Some of them may have reached the relay before the sender died; they are sent
    again with the same Message-ID, which receiving systems use to drop duplicates.
    """
    released = db.execute(
        "UPDATE outbox SET status = ? WHERE status = ?", [OutboxStatus.QUEUED, OutboxStatus.SENDING]
    ).rowcount
    # The dead sender may have recorded deliveries without reaching the end of its
    # batch, where the bytes of sent mail are dropped: drop them now.
    db.execute(
        """DELETE FROM outbox_bodies WHERE outbox_id IN
               (SELECT id FROM outbox WHERE status NOT IN (?, ?))""",
        [OutboxStatus.QUEUED, OutboxStatus.SENDING],
    )
    return int(released)


def claim(
    db: Database, now: datetime, limit: int, *, force: bool = False, after_id: int = 0
) -> list[Claimed]:
    """Take up to ``limit`` due mails after ``after_id``, in queue order, marking them ``sending``.

    A flush walks the queue once by id, so a mail that fails is not retried within
    the same flush, even with ``force``.
    """
    due = "" if force else "AND o.next_attempt_at <= ?"
    parameters: list[str | int] = [
        OutboxStatus.QUEUED,
        after_id,
        *([] if force else [utc_text(now)]),
        limit,
    ]
    rows = db.execute(
        f"""SELECT o.id, o.message_id, o.kind, o.share_id, o.envelope_from, o.recipients,
                   b.raw, o.attempts, o.created_at, b.spec
            FROM outbox o JOIN outbox_bodies b ON b.outbox_id = o.id
            WHERE o.status = ? AND o.id > ? {due} ORDER BY o.id LIMIT ?""",
        parameters,
    ).fetchall()
    if rows:
        marks = ", ".join("?" * len(rows))
        db.execute(
            f"UPDATE outbox SET status = ? WHERE id IN ({marks})",
            [OutboxStatus.SENDING, *(row[0] for row in rows)],
        )
    return [
        Claimed(
            row[0],
            row[1],
            OutboxKind(row[2]),
            row[3],
            row[4],
            tuple(json.loads(row[5])),
            row[6],
            row[7],
            parse_utc(row[8]),
            row[9],
        )
        for row in rows
    ]


# A mail that went (or never will) keeps its bounce address without the key: a bounce
# is matched by the Message-ID, a hash of the key (answers._bounced_mail), and the key
# itself lets whoever reads it forge a bounce to that mail.
_KEY_FORGOTTEN = BOUNCE_KEY_FORGOTTEN_SQL


def mark_sent(db: Database, mail_id: int, now: datetime) -> None:
    db.execute(
        "UPDATE outbox SET status = ?, sent_at = ?, attempts = attempts + 1,"
        f" last_error = NULL, envelope_from = {_KEY_FORGOTTEN} WHERE id = ?",
        [OutboxStatus.SENT, utc_text(now), mail_id],
    )


def mark_deferred(db: Database, mail_id: int, error: str, next_attempt: datetime) -> None:
    db.execute(
        "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?,"
        " next_attempt_at = ? WHERE id = ? AND status = ?",
        [OutboxStatus.QUEUED, error, utc_text(next_attempt), mail_id, OutboxStatus.SENDING],
    )


def mark_failed(db: Database, mail_id: int, error: str) -> None:
    db.execute(
        "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?,"
        f" envelope_from = {_KEY_FORGOTTEN} WHERE id = ? AND status = ?",
        [OutboxStatus.FAILED, error, mail_id, OutboxStatus.SENDING],
    )


def unclaim(db: Database, mail_ids: Sequence[int]) -> None:
    """Give back mails claimed but not tried (the relay went away first)."""
    if mail_ids:
        marks = ", ".join("?" * len(mail_ids))
        db.execute(
            f"UPDATE outbox SET status = ? WHERE id IN ({marks}) AND status = ?",
            [OutboxStatus.QUEUED, *mail_ids, OutboxStatus.SENDING],
        )
