"""The life of a share and its invitations: the states, and the named moves between them.

A share is ``invited`` (an invitation with a live token is out), then ``accepted``
or ``declined`` by its invitee, ``revoked`` by its owner, or ``undeliverable`` when
the invitation bounced. ``expired`` is never stored: it is an invitation past its
date, shown so and refused an answer (expiry is the clock's doing, not a write);
every check here reads a share's state with its date taken into account.

Each move is a small function over the database, inside the caller's transaction:
it checks the share's state is one the move may start from (``MOVES``), then writes
the share and its invitations. A move refused is a ``ShareStateError`` (a bug in the
caller, or a race the caller's transaction rules out); the one exception is
``mark_undeliverable``, whose caller is a bounce that may come late: it says
whether it applied. What the moves cause in mail (notices, cancelled mails) is
the callers' (``calshare.sharing``, ``calshare.answers``): this module stays below
the mail edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlite_utils import Database

from calshare.addresses import Mailbox
from calshare.clock import utc_text
from calshare.errors import ShareStateError
from calshare.levels import Level


class ShareStatus(StrEnum):
    """A share's state; the ``shares.status`` column holds all but ``expired``."""

    INVITED = "invited"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"  # shown only: invited, and the invitation's date has passed


class Move(StrEnum):
    """The named transitions of a share.

    Resending an invitation is ``INVITE`` again (a new token; the old one dies).
    Expiring is no move: the clock does it (``shown_status``).
    """

    INVITE = "invite"  # a first invitation, or a new one (new token) replacing the last
    CHANGE_LEVEL = "change level"  # an accepted share shows more or less
    ACCEPT = "accept"
    DECLINE = "decline"
    REVOKE = "revoke"  # the owner stops sharing: tokens and feed die at once
    MARK_UNDELIVERABLE = "mark undeliverable"  # the invitation bounced: its tokens die


# No share yet: where the first invitation starts from.
NO_SHARE = None
State = ShareStatus | None

_OPEN = frozenset({ShareStatus.INVITED, ShareStatus.EXPIRED})
# move -> (the states it may start from, the state it leaves the share in)
MOVES: dict[Move, tuple[frozenset[State], ShareStatus]] = {
    # an accepted share changes level instead: its invitee keeps the feed they have
    Move.INVITE: (
        frozenset(
            {
                NO_SHARE,
                *_OPEN,
                ShareStatus.DECLINED,
                ShareStatus.REVOKED,
                ShareStatus.UNDELIVERABLE,
            }
        ),
        ShareStatus.INVITED,
    ),
    Move.CHANGE_LEVEL: (frozenset({ShareStatus.ACCEPTED}), ShareStatus.ACCEPTED),
    Move.ACCEPT: (frozenset({ShareStatus.INVITED}), ShareStatus.ACCEPTED),
    Move.DECLINE: (frozenset({ShareStatus.INVITED}), ShareStatus.DECLINED),
    # declined or revoked: there is nothing left to stop
    Move.REVOKE: (
        frozenset({*_OPEN, ShareStatus.ACCEPTED, ShareStatus.UNDELIVERABLE}),
        ShareStatus.REVOKED,
    ),
    Move.MARK_UNDELIVERABLE: (_OPEN, ShareStatus.UNDELIVERABLE),
}


def allows(move: Move, state: State) -> bool:
    """Whether ``move`` may start from ``state`` (None: no share yet)."""
    return state in MOVES[move][0]


def shown_status(status: str, expires_at: str, now: datetime) -> ShareStatus:
    """The state as people see it: an invitation past its date is expired."""
    stored = ShareStatus(status)
    if stored == ShareStatus.INVITED and expires_at <= utc_text(now):
        return ShareStatus.EXPIRED
    return stored


def state(db: Database, share_id: int | None, now: datetime) -> State:
    """The share's state now (None: no such share)."""
    if share_id is None:
        return NO_SHARE
    row = db.execute("SELECT status, expires_at FROM shares WHERE id = ?", [share_id]).fetchone()
    return None if row is None else shown_status(row[0], row[1], now)


def _check(db: Database, move: Move, share_id: int | None, now: datetime) -> State:
    found = state(db, share_id, now)
    if not allows(move, found):
        what = (
            f"there is no share #{share_id}" if found is None else f"share #{share_id} is {found}"
        )
        raise ShareStateError(f"Cannot {move}: {what}")
    return found


def audit(
    db: Database, now: datetime, action: str, calendar_id: int, subject: str, detail: str
) -> None:
    """One line in the audit log, in the transaction of what it reports."""
    db.execute(
        "INSERT INTO audit (at, action, calendar_id, subject, detail) VALUES (?, ?, ?, ?, ?)",
        [utc_text(now), action, calendar_id, subject, detail],
    )


# --- the moves


def invite(
    db: Database,
    share_id: int | None,
    *,
    calendar_id: int,
    invitee: Mailbox,
    level: Level,
    lang: str,
    message: str | None,
    token_hash: str,
    now: datetime,
    expires: datetime,
) -> int:
    """Invite ``invitee`` with a new token (its hash): a new share, or the share again.

    Inviting again replaces what there was: the old tokens stop working, the feed
    secret goes, the answer is forgotten. Returns the share's id.
    """
    _check(db, Move.INVITE, share_id, now)
    if share_id is None:
        share_id = int(
            db.execute(
                """INSERT INTO shares (calendar_id, invitee, invitee_name, level, status, lang,
                       message, created_at, invited_at, expires_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    calendar_id,
                    invitee.address,
                    invitee.display_name,
                    level.value,
                    ShareStatus.INVITED,
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
        _withdraw_tokens(db, share_id, now)
        db.execute(
            """UPDATE shares SET invitee_name = COALESCE(NULLIF(?, ''), invitee_name),
                   level = ?, status = ?, lang = ?, message = ?,
                   invited_at = ?, expires_at = ?, answered_at = NULL, revoked_at = NULL,
                   feed_hash = NULL, updated_at = ?
               WHERE id = ?""",
            [
                invitee.display_name,
                level.value,
                ShareStatus.INVITED,
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
        [share_id, token_hash, level.value, utc_text(now), utc_text(expires)],
    )
    return share_id


def change_level(db: Database, share_id: int, level: Level, lang: str, now: datetime) -> None:
    """An accepted share shows ``level`` from now on; its feed stays the same."""
    _check(db, Move.CHANGE_LEVEL, share_id, now)
    db.execute(
        "UPDATE shares SET level = ?, lang = ?, updated_at = ? WHERE id = ?",
        [level.value, lang, utc_text(now), share_id],
    )


def accept(db: Database, share_id: int, invitation_id: int, feed_hash: str, now: datetime) -> None:
    """The invitee said yes with the open invitation ``invitation_id``: the feed is theirs."""
    _answer(db, Move.ACCEPT, share_id, invitation_id, now)
    db.execute(
        """UPDATE shares SET status = ?, answered_at = ?, feed_hash = ?, updated_at = ?
           WHERE id = ?""",
        [ShareStatus.ACCEPTED, utc_text(now), feed_hash, utc_text(now), share_id],
    )
    _use(db, invitation_id, now)
    _audit_answer(db, "accepted", share_id, now)


def decline(db: Database, share_id: int, invitation_id: int, now: datetime) -> None:
    """The invitee said no with the open invitation ``invitation_id``."""
    _answer(db, Move.DECLINE, share_id, invitation_id, now)
    db.execute(
        "UPDATE shares SET status = ?, answered_at = ?, updated_at = ? WHERE id = ?",
        [ShareStatus.DECLINED, utc_text(now), utc_text(now), share_id],
    )
    _use(db, invitation_id, now)
    _audit_answer(db, "declined", share_id, now)


def _audit_answer(db: Database, action: str, share_id: int, now: datetime) -> None:
    """An answer is part of the calendar's history (its owner's History page shows it)."""
    calendar_id, invitee, level = db.execute(
        "SELECT calendar_id, invitee, level FROM shares WHERE id = ?", [share_id]
    ).fetchone()
    audit(db, now, action, calendar_id, invitee, f"level {level}")


def _answer(db: Database, move: Move, share_id: int, invitation_id: int, now: datetime) -> None:
    """An answer needs an invited share and one of its invitations still open."""
    _check(db, move, share_id, now)
    row = db.execute(
        "SELECT share_id, used_at, revoked_at FROM invitations WHERE id = ?", [invitation_id]
    ).fetchone()
    if row is None or row[0] != share_id or row[1] is not None or row[2] is not None:
        raise ShareStateError(
            f"Cannot {move}: invitation #{invitation_id} of share #{share_id} is not open"
        )


def _use(db: Database, invitation_id: int, now: datetime) -> None:
    db.execute("UPDATE invitations SET used_at = ? WHERE id = ?", [utc_text(now), invitation_id])


def revoke(db: Database, share_id: int, now: datetime) -> ShareStatus:
    """The owner stops sharing: tokens die, the feed secret goes (its URL answers 410).

    Returns the status the share had, as stored (an expired invitation is ``invited``).
    """
    _check(db, Move.REVOKE, share_id, now)
    (was,) = db.execute("SELECT status FROM shares WHERE id = ?", [share_id]).fetchone()
    _withdraw_tokens(db, share_id, now)
    db.execute(
        # the feed secret goes with the share: its URL stops working at once
        """UPDATE shares SET status = ?, revoked_at = ?, feed_hash = NULL, updated_at = ?
           WHERE id = ?""",
        [ShareStatus.REVOKED, utc_text(now), utc_text(now), share_id],
    )
    return ShareStatus(was)


def mark_undeliverable(db: Database, share_id: int, now: datetime, reason: str) -> bool:
    """The invitation could not be delivered: the share says so, and its tokens die.

    A bounce may come after the share moved on (accepted, revoked, invited again and
    then answered): then it changes nothing, and this says False.
    """
    if not allows(Move.MARK_UNDELIVERABLE, state(db, share_id, now)):
        return False
    calendar_id, invitee = db.execute(
        "SELECT calendar_id, invitee FROM shares WHERE id = ?", [share_id]
    ).fetchone()
    db.execute(
        "UPDATE shares SET status = ?, updated_at = ? WHERE id = ?",
        [ShareStatus.UNDELIVERABLE, utc_text(now), share_id],
    )
    db.execute(
        "UPDATE invitations SET revoked_at = ? WHERE share_id = ? AND revoked_at IS NULL",
        [utc_text(now), share_id],
    )
    audit(db, now, "undeliverable", calendar_id, invitee, reason[:300])
    return True


def _withdraw_tokens(db: Database, share_id: int, now: datetime) -> None:
    """The share's tokens not yet used stop working."""
    db.execute(
        "UPDATE invitations SET revoked_at = ? WHERE share_id = ? AND revoked_at IS NULL"
        " AND used_at IS NULL",
        [utc_text(now), share_id],
    )


@dataclass(frozen=True)
class AuditLine:
    """One line of a calendar's history, as ``audit`` wrote it."""

    id: int
    at: str  # UTC text (``clock.utc_text``)
    action: str
    subject: str
    detail: str


def history(
    db: Database, calendar_id: int, *, before: int | None = None, limit: int = 200
) -> list[AuditLine]:
    """The calendar's audit lines, newest first: at most ``limit``, older than ``before``.

    Paged by id (ids grow with time), so a page stays the same while new lines arrive.
    """
    rows = db.execute(
        "SELECT id, at, action, subject, detail FROM audit"
        " WHERE calendar_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        [calendar_id, before if before is not None else 2**62, limit],
    ).fetchall()
    return [AuditLine(*row) for row in rows]
