"""Every past schema, with data in it, upgrades to the current one and keeps its data.

For each schema version N an older calshare could have left behind, the test builds a
real SQLite file at N the way that calshare did: the released migrations 1..N
(``calshare.store.MIGRATIONS``, append-only) and, after each, rows of what that version
stored, written with plain SQL as that version's code would have written them. Then
``Store.open`` upgrades it, and calshare's own read paths must find the data as it was:
the calendar and its occurrences, the shares, a feed secret (which must still work and,
once replaced, answer 410 through the trigger schema 4 added), a publication, and the
inbound log, whose stored mails and reasons schema 6 must have redacted.

A new migration needs its own rows here (``FILLS``): the test says so if it has none.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from calshare.calendars import add_calendar, get_calendar, list_calendars
from calshare.clock import FixedClock, utc_text
from calshare.errors import AmbiguousCalendar, DuplicateCalendar, StoreError
from calshare.feeds import GONE, Grant, find_grant
from calshare.index import occurrences_between
from calshare.levels import Level
from calshare.publishing import find_publication
from calshare.sharing import list_shares
from calshare.store import MIGRATIONS, SCHEMA_VERSION, Store
from calshare.subscriptions import get_source, list_sources
from calshare.tokens import holds_token, token_hash
from mailer.outbox import claim, entries, unclaim
from tests.conftest import NOW
from tests.support.inbox import DOMAIN, reply

LATEST = SCHEMA_VERSION
PAST = list(range(1, LATEST))  # every version a database can be at and still need upgrading
T0 = "2026-11-01T08:00:00Z"
MEETING = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
INDEXED_FROM, INDEXED_UNTIL = datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)
# Secrets as the old versions held them: only hashes in columns, but the live token of
# an invitation quoted in a stored mail and glued to a letter in a stored reason.
INVITATION_TOKEN = "bob2invitationtoken2222222"
FEED_SECRET = "bobsfeedsecretbobsfeedsecr"
RETIRED_FEED = "oldfeedsecretoldfeedsecret"
PUBLICATION_SECRET = "publishedlinkspublishedlin"
NEW_FEED = "newfeedsecretnewfeedsecret"
RETRY = NOW + timedelta(minutes=10)  # the next try schema 7's row was deferred to
STORE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")  # clock.utc_text


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


# --- what each version stored, as plain SQL


def _fill_1(db: sqlite3.Connection) -> None:
    """Schema 1: an owner, a calendar imported with one event, its occurrence indexed."""
    db.execute(
        "INSERT INTO owners (id, email, name, created_at) VALUES (1, 'ann@example.org', "
        "'Ann Demo', ?)",
        [T0],
    )
    db.execute(
        """INSERT INTO calendars (id, name, owner_id, tz, zone, created_at, version,
               imported_at, source, source_sha256, source_name, vtimezones, event_count,
               indexed_from, indexed_until, max_duration)
           VALUES (1, 'project', 1, 'UTC', 'UTC', ?, 1, ?, '/srv/project.ics', ?,
               'project.ics', '', 1, ?, ?, 3600)""",
        [
            T0,
            T0,
            "ab" * 32,
            _ts(datetime(2026, 1, 1, tzinfo=UTC)),
            _ts(datetime(2028, 1, 1, tzinfo=UTC)),
        ],
    )
    db.execute(
        """INSERT INTO events (id, calendar_id, uid, line, recurs, busy, status, private,
               summary, location, description, attendees, categories, ical)
           VALUES (1, 1, 'kickoff@example.org', 4, 0, 'busy', 'CONFIRMED', 0,
               'Project kickoff', 'Room 4', 'Agenda to follow', '[]', '[]',
               'BEGIN:VEVENT\r\nUID:kickoff@example.org\r\nEND:VEVENT\r\n')"""
    )
    end = MEETING + timedelta(hours=1)
    db.execute(
        """INSERT INTO occurrences (calendar_id, event_id, start_ts, end_ts, start, end, all_day)
           VALUES (1, 1, ?, ?, ?, ?, 0)""",
        [_ts(MEETING), _ts(end), MEETING.isoformat(), end.isoformat()],
    )


def _fill_2(db: sqlite3.Connection) -> None:
    """Schema 2: a share with its invitation, the invitation mail queued, an audit line."""
    db.execute(
        """INSERT INTO shares (id, calendar_id, invitee, invitee_name, level, status, lang,
               created_at, invited_at, expires_at, updated_at)
           VALUES (1, 1, 'bob@example.org', 'Bob', 'titles', 'invited', 'en', ?, ?,
               '2026-11-15T08:00:00Z', ?)""",
        [T0, T0, T0],
    )
    db.execute(
        """INSERT INTO invitations (id, share_id, token_hash, level, created_at, expires_at)
           VALUES (1, 1, ?, 'titles', ?, '2026-11-15T08:00:00Z')""",
        [token_hash(INVITATION_TOKEN), T0],
    )
    db.execute(
        """INSERT INTO outbox (id, message_id, kind, share_id, envelope_from, recipients,
               subject, status, attempts, next_attempt_at, created_at)
           VALUES (1, '<invitation-1@share.example.org>', 'invitation', 1,
               'bounces+key@share.example.org', '["bob@example.org"]', 'Ann Demo shared',
               'queued', 0, ?, ?)""",
        [_ts(NOW), T0],
    )
    db.execute(
        "INSERT INTO outbox_bodies (outbox_id, raw) VALUES (1, ?)",
        [b"Subject: Ann Demo shared\r\n\r\nAccept: mailto:accept+(the token)@share\r\n"],
    )
    db.execute(
        "INSERT INTO audit (id, at, action, calendar_id, subject, detail) "
        "VALUES (1, ?, 'invited', 1, 'bob@example.org', ?)",
        [T0, f"token {INVITATION_TOKEN}x"],  # glued to a letter: the old redaction missed it
    )


def _fill_3(db: sqlite3.Connection) -> None:
    """Schema 3: the share accepted (a feed secret), and an unclear answer kept raw."""
    db.execute(
        "UPDATE shares SET status = 'accepted', answered_at = ?, updated_at = ?, "
        "feed_hash = ? WHERE id = 1",
        [T0, T0, token_hash(FEED_SECRET)],
    )
    db.execute("UPDATE invitations SET used_at = ? WHERE id = 1", [T0])
    raw = reply(
        to=f"share+{INVITATION_TOKEN}@{DOMAIN}",
        body=f"maybe?\n> https://cal.example.org/i/{INVITATION_TOKEN}\n",
        cte="base64",
    )
    db.execute(
        """INSERT INTO inbound (id, received_at, dedup, message_id, mail_from, recipient,
               sender, token_hash, kind, reason, outcome, share_id, size)
           VALUES (1, ?, 'dedup-1', '<reply-1@mail.example.org>', 'bob@example.org', ?,
               'bob@example.org', ?, 'unclear', ?, 'replied: how to answer', 1, ?)""",
        [
            T0,
            f"share+{INVITATION_TOKEN}x@{DOMAIN}",
            token_hash(INVITATION_TOKEN),
            f"no answer found: {INVITATION_TOKEN}x",
            len(raw),
        ],
    )
    db.execute("INSERT INTO inbound_raw (inbound_id, raw) VALUES (1, ?)", [raw])
    # what the once-a-day guards read from these words until schema 8 made it a field
    for number, outcome in (
        (2, "replied: held, the invitee was asked to confirm"),
        (3, "held: not from the invitee"),
        (4, "replied: invalid token (accepted)"),
        (5, "ignored"),
    ):
        db.execute(
            """INSERT INTO inbound (id, received_at, dedup, message_id, mail_from, recipient,
                   sender, token_hash, kind, reason, outcome, share_id, size)
               VALUES (?, ?, ?, ?, 'carol@example.org', 'share+…@share.example.org',
                   'carol@example.org', ?, 'accept', 'an answer', ?, 1, 100)""",
            [
                number,
                T0,
                f"dedup-{number}",
                f"<reply-{number}@mail.example.org>",
                token_hash(INVITATION_TOKEN),
                outcome,
            ],
        )


def _fill_4(db: sqlite3.Connection) -> None:
    """Schema 4: a feed secret retired before (a re-invited share's old feed)."""
    db.execute("INSERT INTO retired_feeds (hash) VALUES (?)", [token_hash(RETIRED_FEED)])


def _fill_5(db: sqlite3.Connection) -> None:
    """Schema 5: the calendar published, its copy on a WebDAV server."""
    db.execute(
        """INSERT INTO publications (id, calendar_id, secret_hash, level, created_at,
               webdav_url)
           VALUES (1, 1, ?, 'free-busy', ?, 'https://dav.example.org/cal/')""",
        [token_hash(PUBLICATION_SECRET), T0],
    )
    db.execute(
        "INSERT INTO webdav_files (url, calendar_id, etag, written_at) VALUES "
        "('https://dav.example.org/cal/project.ics', 1, '\"e1\"', ?)",
        [T0],
    )


def _fill_6(db: sqlite3.Connection) -> None:
    """Schema 6 changed data, no tables: what it must do is checked in ``_check``."""


def _fill_7(db: sqlite3.Connection) -> None:
    """Schema 7: the queued mail deferred once, its next try in UTC text as every ``*_at``."""
    db.execute(
        "UPDATE outbox SET attempts = 1, last_error = '451 4.3.0 try later',"
        " next_attempt_at = ? WHERE id = 1",
        [utc_text(RETRY)],
    )


def _fill_8(db: sqlite3.Connection) -> None:
    """Schema 8: whether we wrote back is a field, whatever the outcome says (reworded here)."""
    db.execute(
        """INSERT INTO inbound (id, received_at, dedup, message_id, mail_from, recipient,
               sender, token_hash, kind, reason, outcome, reply, share_id, size)
           VALUES (6, ?, 'dedup-6', '<reply-6@mail.example.org>', 'bob@example.org',
               'share+…@share.example.org', 'bob@example.org', ?, 'unknown', 'no answer',
               'wrote back: how to answer', 'explained', 1, 100)""",
        [T0, token_hash(INVITATION_TOKEN)],
    )


def _fill_9(db: sqlite3.Connection) -> None:
    """Schema 9: the calendar follows a URL, read once, failing since."""
    db.execute(
        """INSERT INTO calendar_sources (calendar_id, kind, location, interval_seconds, etag,
               next_due_ts, last_attempt_at, last_result, last_cause, failing_since, failures)
           VALUES (1, 'url', 'https://calendar.google.com/calendar/ical/x/private-s3cr3t/basic.ics',
               900, '"v1"', ?, ?, 'failed', 'not_found', ?, 2)""",
        [_ts(NOW), T0, T0],
    )


def _fill_10(db: sqlite3.Connection) -> None:
    """Schema 10: ann asked for a sign-in link, used it, and is signed in."""
    db.execute(
        """INSERT INTO signin_links (email, token_hash, created_at, expires_at, used_at)
           VALUES ('ann@example.org', ?, ?, ?, ?)""",
        [token_hash("signin" + "a" * 20), T0, T0, T0],
    )
    db.execute(
        "INSERT INTO signin_requests (email, client, at_ts) VALUES ('ann@example.org', 'c', ?)",
        [_ts(NOW)],
    )
    db.execute(
        """INSERT INTO sessions (secret_hash, email, created_at, last_seen_at)
           VALUES (?, 'ann@example.org', ?, ?)""",
        [token_hash("session" + "b" * 19), T0, T0],
    )


def _fill_11(db: sqlite3.Connection) -> None:
    """Schema 11: names are per owner, so zoe has a "project" of her own next to ann's."""
    db.execute(
        "INSERT INTO owners (id, email, name, created_at) VALUES (2, 'zoe@example.org', '', ?)",
        [T0],
    )
    db.execute(
        """INSERT INTO calendars (id, name, owner_id, zone, created_at)
           VALUES (2, 'project', 2, 'UTC', ?)""",
        [T0],
    )


def _fill_12(db: sqlite3.Connection) -> None:
    """Schema 12: zoe added her "project" from the console, following a URL: guarded."""
    db.execute(
        """INSERT INTO calendar_sources (calendar_id, kind, location, interval_seconds, guarded)
           VALUES (2, 'url', 'https://zoe.example.net/cal.ics', 900, 1)"""
    )


# One entry per migration: index N-1 holds what a database at schema N had in it.
FILLS: list[Callable[[sqlite3.Connection], None]] = [
    _fill_1,
    _fill_2,
    _fill_3,
    _fill_4,
    _fill_5,
    _fill_6,
    _fill_7,
    _fill_8,
    _fill_9,
    _fill_10,
    _fill_11,
    _fill_12,
]


def _database_at(path: Path, version: int) -> None:
    """A database as calshare at schema ``version`` left it: its migrations, its rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        db = Database(conn)
        for number, (migration, fill) in enumerate(zip(MIGRATIONS, FILLS, strict=False), 1):
            if number > version:
                break
            # as Store._migrate runs them: foreign keys off (a rebuilt parent table must
            # not cascade), on again for the rows that version's code wrote
            conn.execute("PRAGMA foreign_keys = OFF")
            with conn:
                migration(db)
            conn.execute("PRAGMA foreign_keys = ON")
            with conn:
                fill(conn)
                conn.execute(f"PRAGMA user_version = {number}")
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version


def _rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in store.db.execute(sql).fetchall()]


def _stored_secrets(db: Database) -> list[str]:
    """Where a token-shaped string is still stored as text (hashes are hex, never one)."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    found = []
    for table, column in (
        ("inbound", "reason"),
        ("inbound", "recipient"),
        ("audit", "detail"),
        ("inbound_raw", "raw"),
    ):
        if table not in tables:
            continue
        for (value,) in db.execute(f"SELECT {column} FROM {table}").fetchall():
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            if holds_token(text) or INVITATION_TOKEN in text:
                found.append(f"{table}.{column}: {text[:80]!r}")
    return found


def _stored_times(db: Database) -> list[str]:
    """``*_at`` values not in the store's one time format (``clock.utc_text``)."""
    found = []
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        for column in db.execute(f"PRAGMA table_info({table})").fetchall():
            name = column[1]
            if name != "at" and not name.endswith("_at"):
                continue
            for (value,) in db.execute(f"SELECT {name} FROM {table}").fetchall():
                if value is not None and not (
                    isinstance(value, str) and STORE_TIME.fullmatch(value)
                ):
                    found.append(f"{table}.{name}: {value!r}")
    return found


def _check(store: Store, version: int) -> None:
    """The data of every version up to ``version`` is there, read by calshare's own code."""
    (calendar,) = list_calendars(store.db, owner="ann@example.org")
    assert (calendar.name, calendar.owner, calendar.event_count) == (
        "project",
        "ann@example.org",
        1,
    )
    (meeting,) = occurrences_between(
        store, calendar, MEETING - timedelta(hours=2), MEETING + timedelta(hours=2), now=NOW
    )
    assert (meeting.uid, meeting.start, meeting.summary) == (
        "kickoff@example.org",
        MEETING,
        "Project kickoff",
    )
    shares = list_shares(store, FixedClock(NOW))
    if version < 2:
        assert shares == []
        assert store.meta("uid_key")  # made by schema 2 for a database that had none
        return
    (share,) = shares
    assert (share.invitee, share.level) == ("bob@example.org", Level.TITLES)
    assert _rows(store, "SELECT kind, status FROM outbox") == [("invitation", "queued")]
    assert _rows(store, "SELECT action FROM audit") == [("invited",)]
    # Schema 7: the epoch seconds of schema 2's outbox became UTC text, due as before.
    (entry,) = entries(store.db)
    due = RETRY if version >= 7 else NOW
    assert (entry.next_attempt_at, entry.attempts) == (utc_text(due), int(version >= 7))
    with store.write() as db:
        assert claim(db, due - timedelta(seconds=1), 10) == []
        (claimed,) = claim(db, due, 10)
        assert (claimed.id, claimed.created_at) == (1, datetime(2026, 11, 1, 8, tzinfo=UTC))
        unclaim(db, [1])
    assert _stored_times(store.db) == []
    if version < 3:
        assert share.status == "expired"  # invited, expiry passed: shown as it always was
        assert find_grant(store.db, FEED_SECRET) is None
        assert _stored_secrets(store.db) == []  # the audit line, redacted by schema 6
        return
    assert share.status == "accepted"
    grant = find_grant(store.db, FEED_SECRET)
    assert isinstance(grant, Grant) and grant.invitee == "bob@example.org"
    ((outcome, raw),) = _rows(
        store, "SELECT i.outcome, r.raw FROM inbound i JOIN inbound_raw r ON r.inbound_id = i.id"
    )
    assert outcome == "replied: how to answer"
    # schema 8 filled ``reply`` in from the words the guards used to read, once
    assert _rows(store, "SELECT id, reply FROM inbound ORDER BY id") == [
        (1, "explained"),
        (2, "confirm_asked"),
        (3, None),
        (4, "explained"),
        (5, None),
        *([(6, "explained")] if version >= 8 else []),
    ]
    assert isinstance(raw, bytes) and b"maybe?" in raw  # still readable, once redacted
    assert _stored_secrets(store.db) == []  # schema 6 redacted the mail and the reasons
    assert find_grant(store.db, RETIRED_FEED) == (GONE if version >= 4 else None)
    # The trigger of schema 4 covers shares from before it: a replaced feed answers 410.
    with store.write() as db:
        db.execute("UPDATE shares SET feed_hash = ? WHERE id = 1", [token_hash(NEW_FEED)])
    assert find_grant(store.db, FEED_SECRET) == GONE
    if version >= 5:
        publication = find_publication(store.db, PUBLICATION_SECRET)
        assert not isinstance(publication, str) and publication is not None
        assert _rows(store, "SELECT url, etag FROM webdav_files") == [
            ("https://dav.example.org/cal/project.ics", '"e1"')
        ]
    else:
        assert find_publication(store.db, PUBLICATION_SECRET) is None
    if version >= 9:
        source = get_source(store.db, "project", owner="ann@example.org")
        assert (source.kind, source.shown, source.failures) == (
            "url",
            "https://calendar.google.com/…",
            2,
        )
        assert source.etag == '"v1"' and source.last_cause == "not_found"
        # set before schema 12 (by the operator's CLI): not fetched under the SSRF guard
        assert source.guarded is False
    else:
        assert list_sources(store.db) == []
    if version >= 10:
        assert _rows(store, "SELECT email, used_at IS NOT NULL FROM signin_links") == [
            ("ann@example.org", 1)
        ]
        assert _rows(store, "SELECT email FROM sessions WHERE ended_at IS NULL") == [
            ("ann@example.org",)
        ]
    if version >= 11:
        assert [(c.id, c.owner) for c in list_calendars(store.db) if c.name == "project"] == [
            (1, "ann@example.org"),
            (2, "zoe@example.org"),
        ]
    if version >= 12:
        zoes = get_source(store.db, "project", owner="zoe@example.org")
        assert (zoes.shown, zoes.guarded) == ("https://zoe.example.net/…", True)


# Every reference to a calendar (and to what hangs off one): a rebuild of ``calendars``
# that let DROP TABLE cascade would empty these or set them to NULL.
CHILDREN = (
    ("events", "calendar_id"),
    ("occurrences", "calendar_id"),
    ("shares", "calendar_id"),
    ("invitations", "share_id"),
    ("outbox", "share_id"),
    ("audit", "calendar_id"),
    ("publications", "calendar_id"),
    ("webdav_files", "calendar_id"),
    ("calendar_sources", "calendar_id"),
    ("calendar_source_objects", "calendar_id"),
)


def _references(db: Database) -> dict[str, list[tuple[object, ...]]]:
    """Each child table's rows as (rowid, reference), for before/after comparisons."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    found: dict[str, list[tuple[object, ...]]] = {}
    for table, column in CHILDREN:
        if table in tables:
            key = "href" if table == "calendar_source_objects" else "rowid"
            rows = db.execute(f"SELECT {key}, {column} FROM {table} ORDER BY 1").fetchall()
            found[table] = [tuple(row) for row in rows]
    return found


def _two_owners_one_name(store: Store) -> None:
    """After the upgrade a name is unique per owner: zoe may have "project", ann not twice."""
    clock = FixedClock(NOW)
    if not any(c.owner == "zoe@example.org" for c in list_calendars(store.db)):
        zoe = add_calendar(store, clock, "project", "zoe@example.org", None, "UTC")
        assert (zoe.name, zoe.owner) == ("project", "zoe@example.org")
    with pytest.raises(DuplicateCalendar):
        add_calendar(store, clock, "project", "ann@example.org", None, "UTC")
    with pytest.raises(AmbiguousCalendar) as ambiguous:
        get_calendar(store.db, "project")
    assert ambiguous.value.owners == ("ann@example.org", "zoe@example.org")
    assert get_calendar(store.db, "project", "ann@example.org").id == 1


def test_every_migration_has_rows_to_upgrade() -> None:
    """Adding schema N+1 means adding what a database at N+1 holds (``FILLS``)."""
    assert len(FILLS) == len(MIGRATIONS), (
        f"calshare has {len(MIGRATIONS)} migrations and this test rows for {len(FILLS)}: "
        "add a _fill_N with what the new schema stores, and checks in _check"
    )
    assert list(range(1, LATEST)) == PAST and len(MIGRATIONS) == LATEST


@pytest.mark.parametrize("version", PAST)
def test_a_database_at_an_old_schema_upgrades_and_keeps_its_data(
    db_path: Path, version: int
) -> None:
    _database_at(db_path, version)
    with closing(sqlite3.connect(db_path)) as conn:  # the secrets schema 6 must take out
        left = 0 if version >= 6 else {1: 0, 2: 1}.get(version, 4)  # none once it ran
        assert len(_stored_secrets(Database(conn))) == left
        before = _references(Database(conn))
    # every child the fills write has rows to lose (a CalDAV source's objects: none)
    assert all(rows for table, rows in before.items() if table != "calendar_source_objects")
    with Store.open(db_path) as store:
        assert store.schema_version == LATEST
        after = _references(store.db)
        assert {table: after[table] for table in before} == before  # nothing lost or nulled
        _check(store, version)
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # on again
        _two_owners_one_name(store)
    with Store.open(db_path) as again:  # opened again: current, nothing migrates twice
        assert again.schema_version == LATEST


def test_the_checks_hold_for_a_database_made_at_the_latest_schema(db_path: Path) -> None:
    """The rows and the checks agree where no upgrade runs (schema 6 ran as it was built)."""
    _database_at(db_path, LATEST)
    with Store.open(db_path) as store:
        assert store.schema_version == LATEST
        _check(store, LATEST)
        _two_owners_one_name(store)


def test_a_migration_that_breaks_a_reference_changes_nothing(db_path: Path) -> None:
    """With foreign keys off during migrations, ``foreign_key_check`` is what guards them:
    an upgrade that would leave a row pointing at nothing is refused and rolled back."""
    _database_at(db_path, 10)  # the one before schema 11, which rebuilds ``calendars``
    with closing(sqlite3.connect(db_path)) as conn, conn:
        # a share whose calendar is gone, as a faulty migration could leave it
        conn.execute(
            """INSERT INTO shares (calendar_id, invitee, level, status, lang, created_at,
                   invited_at, expires_at, updated_at)
               VALUES (99, 'x@example.org', 'titles', 'invited', 'en', ?, ?, ?, ?)""",
            [T0, T0, T0, T0],
        )
    with pytest.raises(StoreError, match="would point at nothing"):
        Store.open(db_path)
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 10
        assert (
            "name TEXT NOT NULL UNIQUE"
            in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'calendars'").fetchone()[0]
        )
