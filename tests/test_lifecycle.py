"""The share lifecycle as a table: every move from every state, on a real SQLite store.

``ALLOWED`` below is the lifecycle written out by hand (it is not read from
``calshare.lifecycle.MOVES``, which it checks). For each move and each state a share
can be in (no share yet, and the six a share shows), the test makes a share in that
state with the lifecycle's own moves, tries the move, and checks: an allowed move
leaves the share in its state; a refused one raises ``ShareStateError`` (a late
bounce just says False) and changes nothing, neither the share nor its tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from calshare import lifecycle
from calshare.addresses import Mailbox
from calshare.calendars import add_calendar
from calshare.clock import FixedClock
from calshare.errors import ShareStateError
from calshare.levels import Level
from calshare.lifecycle import MOVES, NO_SHARE, Move, ShareStatus, State
from calshare.store import Store
from calshare.tokens import token_hash
from tests.conftest import NOW

INVITED, ACCEPTED, DECLINED = ShareStatus.INVITED, ShareStatus.ACCEPTED, ShareStatus.DECLINED
REVOKED, EXPIRED = ShareStatus.REVOKED, ShareStatus.EXPIRED
UNDELIVERABLE = ShareStatus.UNDELIVERABLE

# move -> the states it may start from; every other state refuses it
ALLOWED: dict[Move, set[State]] = {
    Move.INVITE: {NO_SHARE, INVITED, EXPIRED, DECLINED, REVOKED, UNDELIVERABLE},
    Move.CHANGE_LEVEL: {ACCEPTED},
    Move.ACCEPT: {INVITED},
    Move.DECLINE: {INVITED},
    Move.REVOKE: {INVITED, EXPIRED, ACCEPTED, UNDELIVERABLE},
    Move.MARK_UNDELIVERABLE: {INVITED, EXPIRED},
}
STATES: list[State] = [NO_SHARE, *ShareStatus]
LEAVES = {
    Move.INVITE: INVITED,
    Move.CHANGE_LEVEL: ACCEPTED,
    Move.ACCEPT: ACCEPTED,
    Move.DECLINE: DECLINED,
    Move.REVOKE: REVOKED,
    Move.MARK_UNDELIVERABLE: UNDELIVERABLE,
}
INVITEE = Mailbox("bob@example.org", "Bob")
MISSING = 999  # a share id no share has


def test_the_table_is_the_lifecycle() -> None:
    assert set(MOVES) == set(Move) == set(ALLOWED)
    for move, (starts, leaves) in MOVES.items():
        assert set(starts) == ALLOWED[move], move
        assert leaves == LEAVES[move], move
        for state in STATES:
            assert lifecycle.allows(move, state) == (state in ALLOWED[move]), (move, state)


@pytest.fixture
def store(db_path: object) -> Iterator[Store]:
    with Store.open(db_path) as opened:  # type: ignore[arg-type]
        add_calendar(opened, FixedClock(NOW), "project", "Ann <ann@example.org>", "UTC", "UTC")
        yield opened


def _invite(store: Store, share_id: int | None, now: datetime, secret: str) -> int:
    with store.write() as db:
        return lifecycle.invite(
            db,
            share_id,
            calendar_id=1,
            invitee=INVITEE,
            level=Level.TITLES,
            lang="en",
            message=None,
            token_hash=token_hash(secret),
            now=now,
            expires=now + timedelta(days=14),
        )


def _open_invitation(store: Store, share_id: int) -> int:
    """The share's newest invitation (an id no invitation has, for no share)."""
    (found,) = store.db.execute(
        "SELECT max(id) FROM invitations WHERE share_id = ?", [share_id]
    ).fetchone()
    return MISSING if found is None else int(found)


def _share_in(store: Store, state: State) -> tuple[int, datetime]:
    """A share in ``state`` (an id no share has, for none), and the time to try a move at."""
    if state is NO_SHARE:
        return MISSING, NOW
    made = NOW - timedelta(days=1)
    share_id = _invite(store, None, made, "first")
    invitation = _open_invitation(store, share_id)
    with store.write() as db:
        if state == ACCEPTED:
            lifecycle.accept(db, share_id, invitation, token_hash("feed"), made)
        elif state == DECLINED:
            lifecycle.decline(db, share_id, invitation, made)
        elif state == REVOKED:
            lifecycle.revoke(db, share_id, made)
        elif state == UNDELIVERABLE:
            assert lifecycle.mark_undeliverable(db, share_id, made, "bounced")
    # an expired invitation is an invited one looked at after its date
    at = made + timedelta(days=15) if state == EXPIRED else NOW
    with store.write() as db:
        assert lifecycle.state(db, share_id, at) == state
    return share_id, at


def _try(store: Store, move: Move, share_id: int, at: datetime) -> bool:
    """Make ``move``; False for a bounce that changed nothing (the move's own refusal)."""
    attempts: dict[Move, Callable[[], object]] = {
        Move.INVITE: lambda: _invite(store, None if share_id == MISSING else share_id, at, "new"),
        Move.CHANGE_LEVEL: lambda: _in_write(
            store, lambda db: lifecycle.change_level(db, share_id, Level.DETAILS, "nb", at)
        ),
        Move.ACCEPT: lambda: _in_write(
            store,
            lambda db: lifecycle.accept(
                db, share_id, _open_invitation(store, share_id), token_hash("feed2"), at
            ),
        ),
        Move.DECLINE: lambda: _in_write(
            store,
            lambda db: lifecycle.decline(db, share_id, _open_invitation(store, share_id), at),
        ),
        Move.REVOKE: lambda: _in_write(store, lambda db: lifecycle.revoke(db, share_id, at)),
        Move.MARK_UNDELIVERABLE: lambda: _in_write(
            store, lambda db: lifecycle.mark_undeliverable(db, share_id, at, "bounced")
        ),
    }
    return attempts[move]() is not False


def _in_write(store: Store, work: Callable[..., object]) -> object:
    with store.write() as db:
        return work(db)


def _snapshot(store: Store) -> list[tuple[object, ...]]:
    """Everything the lifecycle writes: the shares, their invitations, the audit log."""
    return [
        tuple(row)
        for table in ("shares", "invitations", "audit")
        for row in store.db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
    ]


@pytest.mark.parametrize("state", STATES, ids=lambda state: str(state or "no share"))
@pytest.mark.parametrize("move", list(Move), ids=str)
def test_a_move_from_a_state(store: Store, move: Move, state: State) -> None:
    share_id, at = _share_in(store, state)
    before = _snapshot(store)
    if state in ALLOWED[move]:
        assert _try(store, move, share_id, at)
        if share_id == MISSING:
            share_id = 1  # the first share, made by the move
        with store.write() as db:
            assert lifecycle.state(db, share_id, at) == LEAVES[move]
        assert _snapshot(store) != before
    elif move == Move.MARK_UNDELIVERABLE:
        assert not _try(store, move, share_id, at)  # a late bounce: nothing to do
        assert _snapshot(store) == before
    else:
        with pytest.raises(ShareStateError, match=f"^Cannot {move}: .*share #{share_id}"):
            _try(store, move, share_id, at)
        assert _snapshot(store) == before


def test_an_answer_needs_an_open_invitation_of_its_share(store: Store) -> None:
    """A superseded token (the share was invited again) answers nothing, though the
    share is invited: the lifecycle checks the invitation, not only the share."""
    share_id = _invite(store, None, NOW - timedelta(hours=2), "old")
    old = _open_invitation(store, share_id)
    _invite(store, share_id, NOW - timedelta(hours=1), "new")
    new = _open_invitation(store, share_id)
    before = _snapshot(store)
    with store.write() as db:
        for invitation in (old, MISSING):
            with pytest.raises(ShareStateError, match=f"invitation #{invitation} of share"):
                lifecycle.accept(db, share_id, invitation, token_hash("feed"), NOW)
    assert _snapshot(store) == before
    with store.write() as db:
        lifecycle.decline(db, share_id, new, NOW)
        assert lifecycle.state(db, share_id, NOW) == DECLINED


def test_revoke_says_the_status_as_stored(store: Store) -> None:
    """An expired invitation is still ``invited`` underneath: that is what unshare reports
    (and whether the invitee was told depends on it)."""
    share_id = _invite(store, None, NOW - timedelta(days=20), "old")
    with store.write() as db:
        assert lifecycle.state(db, share_id, NOW) == EXPIRED
        assert lifecycle.revoke(db, share_id, NOW) == INVITED
        assert db.execute("SELECT revoked_at FROM invitations").fetchall() == [
            ("2026-11-26T09:00:00Z",)
        ]
