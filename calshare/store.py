"""The SQLite store: one file, WAL, foreign keys on, forward-only migrations.

Durability matters more than speed here (the inbox answers 250 only after a
commit), so synchronous=FULL: in WAL mode NORMAL can lose the last commits on
power loss. Writers take the lock up front (BEGIN IMMEDIATE) so two writers
queue on the busy timeout instead of failing half-way.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from calshare.errors import StoreBusy, StoreError
from calshare.redaction import redact_mail
from calshare.tokens import redact

log = logging.getLogger(__name__)

DEFAULT_DB = Path("var") / "calshare.db"


def _schema_1(db: Database) -> None:
    """Owners, calendars, events as imported, and the occurrence index."""
    statements = [
        """CREATE TABLE owners (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE calendars (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            owner_id INTEGER NOT NULL REFERENCES owners(id),
            tz TEXT,
            zone TEXT NOT NULL,
            created_at TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 0,
            imported_at TEXT,
            source TEXT,
            source_sha256 TEXT,
            source_name TEXT,
            vtimezones TEXT NOT NULL DEFAULT '',
            event_count INTEGER NOT NULL DEFAULT 0,
            indexed_from INTEGER,
            indexed_until INTEGER,
            max_duration INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX calendars_owner ON calendars(owner_id)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            calendar_id INTEGER NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
            uid TEXT NOT NULL,
            recurrence_id TEXT,
            source_tz TEXT,
            line INTEGER NOT NULL,
            recurs INTEGER NOT NULL,
            busy TEXT NOT NULL,
            status TEXT,
            private INTEGER NOT NULL,
            summary TEXT,
            location TEXT,
            description TEXT,
            organizer TEXT,
            attendees TEXT NOT NULL DEFAULT '[]',
            categories TEXT NOT NULL DEFAULT '[]',
            url TEXT,
            ical TEXT NOT NULL
        )""",
        "CREATE INDEX events_calendar ON events(calendar_id, recurs)",
        """CREATE TABLE occurrences (
            calendar_id INTEGER NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
            event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
            start_ts INTEGER NOT NULL,
            end_ts INTEGER NOT NULL,
            start TEXT NOT NULL,
            end TEXT NOT NULL,
            all_day INTEGER NOT NULL
        )""",
        "CREATE INDEX occurrences_window ON occurrences(calendar_id, start_ts)",
        "CREATE INDEX occurrences_event ON occurrences(event_id)",
    ]
    for statement in statements:
        db.execute(statement)


def _schema_2(db: Database) -> None:
    """Sharing: one share per (calendar, invitee), its invitation tokens, the outbox, audit.

    Only token hashes are stored. A queued mail holds its token until it is sent,
    then its bytes are dropped: the outbox keeps what happened, not the secret.
    The bytes live in their own table so that marking a mail sent rewrites a small
    row, not a message.
    """
    statements = [
        """CREATE TABLE shares (
            id INTEGER PRIMARY KEY,
            calendar_id INTEGER NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
            invitee TEXT NOT NULL,
            invitee_name TEXT NOT NULL DEFAULT '',
            level TEXT NOT NULL,
            status TEXT NOT NULL,
            lang TEXT NOT NULL,
            message TEXT,
            created_at TEXT NOT NULL,
            invited_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            answered_at TEXT,
            revoked_at TEXT,
            updated_at TEXT NOT NULL,
            UNIQUE (calendar_id, invitee)
        )""",
        """CREATE TABLE invitations (
            id INTEGER PRIMARY KEY,
            share_id INTEGER NOT NULL REFERENCES shares(id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL UNIQUE,
            level TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT,
            revoked_at TEXT
        )""",
        "CREATE INDEX invitations_share ON invitations(share_id)",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            share_id INTEGER REFERENCES shares(id) ON DELETE SET NULL,
            envelope_from TEXT NOT NULL,
            recipients TEXT NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            last_error TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT
        )""",
        "CREATE INDEX outbox_due ON outbox(status, next_attempt_at)",
        """CREATE TABLE outbox_bodies (
            outbox_id INTEGER PRIMARY KEY REFERENCES outbox(id) ON DELETE CASCADE,
            raw BLOB,
            spec TEXT,
            CHECK ((raw IS NULL) != (spec IS NULL))
        )""",
        "CREATE INDEX outbox_share ON outbox(share_id)",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            calendar_id INTEGER REFERENCES calendars(id) ON DELETE SET NULL,
            subject TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX audit_calendar ON audit(calendar_id, at)",
        """CREATE TABLE meta (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
    ]
    for statement in statements:
        db.execute(statement)
    # The key that turns UIDs into stand-ins at hidden levels: without it, a viewer
    # who knows or guesses a UID could tell which busy block is that event.
    db.execute("INSERT INTO meta (name, value) VALUES ('uid_key', ?)", [secrets.token_hex(32)])


def _schema_3(db: Database) -> None:
    """Answers: the feed secret of an accepted share, and the log of every inbound mail.

    ``inbound.dedup`` names a (message, recipient) pair, so a mail delivered twice
    changes nothing the second time. Raw bytes live apart, for operators to
    inspect, and are deleted after ``inbox.keep_raw_days``.
    """
    statements = [
        "ALTER TABLE shares ADD COLUMN feed_hash TEXT",
        "CREATE UNIQUE INDEX shares_feed ON shares(feed_hash) WHERE feed_hash IS NOT NULL",
        """CREATE TABLE inbound (
            id INTEGER PRIMARY KEY,
            received_at TEXT NOT NULL,
            dedup TEXT NOT NULL UNIQUE,
            message_id TEXT NOT NULL,
            mail_from TEXT NOT NULL,
            recipient TEXT NOT NULL,
            sender TEXT,
            token_hash TEXT,
            kind TEXT NOT NULL,
            reason TEXT NOT NULL,
            outcome TEXT NOT NULL,
            share_id INTEGER REFERENCES shares(id) ON DELETE SET NULL,
            size INTEGER NOT NULL
        )""",
        "CREATE INDEX inbound_received ON inbound(received_at)",
        "CREATE INDEX inbound_token ON inbound(token_hash, sender)",
        """CREATE TABLE inbound_raw (
            inbound_id INTEGER PRIMARY KEY REFERENCES inbound(id) ON DELETE CASCADE,
            raw BLOB NOT NULL
        )""",
    ]
    for statement in statements:
        db.execute(statement)


def _schema_4(db: Database) -> None:
    """Feeds: the hashes of feed secrets that no longer work, so their URLs answer 410.

    A trigger records the old hash whenever a share's feed secret is cleared or
    replaced (unshare, re-invite), wherever in the code that happens. Only the hash
    is kept, as for every secret; an unknown secret still gets a plain 404.
    """
    statements = [
        "CREATE TABLE retired_feeds (hash TEXT PRIMARY KEY) WITHOUT ROWID",
        """CREATE TRIGGER shares_feed_retired AFTER UPDATE OF feed_hash ON shares
           WHEN OLD.feed_hash IS NOT NULL AND NEW.feed_hash IS NOT OLD.feed_hash
           BEGIN
               INSERT OR IGNORE INTO retired_feeds (hash) VALUES (OLD.feed_hash);
           END""",
        """CREATE TRIGGER shares_feed_deleted AFTER DELETE ON shares
           WHEN OLD.feed_hash IS NOT NULL
           BEGIN
               INSERT OR IGNORE INTO retired_feeds (hash) VALUES (OLD.feed_hash);
           END""",
    ]
    for statement in statements:
        db.execute(statement)


def _schema_5(db: Database) -> None:
    """Publishing: a calendar's public links, by the hash of their secret.

    Publishing again makes a new row and retires the old one; a retired row stays
    so that its links answer 410. At most one live publication per calendar.
    ``webdav_files`` mirrors what calshare believes it has on WebDAV servers: a row
    is written as soon as a PUT succeeds (with the ETag for If-Match) and deleted
    as soon as a DELETE does, so a failure halfway leaves a record to finish from.
    """
    statements = [
        """CREATE TABLE publications (
            id INTEGER PRIMARY KEY,
            calendar_id INTEGER NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
            secret_hash TEXT NOT NULL UNIQUE,
            level TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT,
            webdav_url TEXT
        )""",
        """CREATE UNIQUE INDEX publications_live ON publications(calendar_id)
           WHERE revoked_at IS NULL""",
        "CREATE INDEX publications_calendar ON publications(calendar_id)",
        """CREATE TABLE webdav_files (
            url TEXT PRIMARY KEY,
            calendar_id INTEGER NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
            etag TEXT,
            written_at TEXT NOT NULL
        )""",
    ]
    for statement in statements:
        db.execute(statement)


def _schema_6(db: Database) -> None:
    """No live secret at rest: stored mails and reasons written before redaction was robust.

    ``inbound_raw`` held mails as received, quoting live tokens and feed secrets;
    each becomes the redacted copy new mails get (``redaction.redact_mail``). Stored
    reasons and audit details are redacted again with the stricter ``tokens.redact``
    (a token with a letter glued to it used to pass). ``secure_delete`` zeroes the old
    bytes; the WAL is checkpointed once the migration commits (``Store._migrate``).
    """
    for inbound_id, raw in db.execute("SELECT inbound_id, raw FROM inbound_raw").fetchall():
        db.execute(
            "UPDATE inbound_raw SET raw = ? WHERE inbound_id = ?",
            [redact_mail(bytes(raw)), inbound_id],
        )
    for table, column in (("inbound", "reason"), ("inbound", "recipient"), ("audit", "detail")):
        for row_id, text in db.execute(f"SELECT id, {column} FROM {table}").fetchall():
            if redact(text) != text:
                db.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", [redact(text), row_id])


def _schema_7(db: Database) -> None:
    """One timestamp convention: the outbox's ``next_attempt_at`` becomes UTC text too.

    It was the one ``*_at`` column in epoch seconds; every other is TEXT written by
    ``clock.utc_text``, which sorts and compares as text the same way, so the queue's
    ``next_attempt_at <= ?`` keeps its order and its index. SQLite cannot change a
    column's type, so the column is added anew, filled, and takes the old one's name.
    """
    statements = [
        "DROP INDEX outbox_due",
        "ALTER TABLE outbox ADD COLUMN next_attempt TEXT NOT NULL DEFAULT ''",
        "UPDATE outbox SET next_attempt ="
        " strftime('%Y-%m-%dT%H:%M:%SZ', next_attempt_at, 'unixepoch')",
        "ALTER TABLE outbox DROP COLUMN next_attempt_at",
        "ALTER TABLE outbox RENAME COLUMN next_attempt TO next_attempt_at",
        "CREATE INDEX outbox_due ON outbox(status, next_attempt_at)",
    ]
    for statement in statements:
        db.execute(statement)


def _schema_8(db: Database) -> None:
    """Whether we wrote back about an inbound mail, as a field the once-a-day guards read.

    The guards read the outcome's words (``outcome LIKE 'replied%'``, one outcome
    word for word) and rewording an outcome would have lifted them. ``inbound.reply``
    says it instead: NULL (nothing), ``explained`` (we told the invitee why or how)
    or ``confirm_asked`` (the invitee was asked to confirm); the rows of before are
    filled in once, from the words they were written with.
    """
    db.execute("ALTER TABLE inbound ADD COLUMN reply TEXT")
    db.execute(
        """UPDATE inbound SET reply = CASE
               WHEN outcome = 'replied: held, the invitee was asked to confirm'
               THEN 'confirm_asked' ELSE 'explained' END
           WHERE outcome LIKE 'replied%'"""
    )


def _schema_9(db: Database) -> None:
    """Live sources: where a calendar's events come from, and how reading it goes.

    One row per calendar that follows a source. ``location`` is the full URL or path
    (a URL's path and query are secrets: shown only through
    ``subscriptions.shown_source``). ``next_due_ts`` is Unix seconds, indexed, so a round
    finds what is due among thousands with one range scan. The rest records the last
    attempt, the validators for conditional requests, and the failure bookkeeping that
    decides when the owner is told (once after ``sources.notify_after``, once on recovery).
    A CalDAV source also keeps its objects (``calendar_source_objects``) and its sync
    token (``state``).
    """
    statements = [
        """CREATE TABLE calendar_sources (
            calendar_id INTEGER PRIMARY KEY REFERENCES calendars(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            location TEXT NOT NULL,
            interval_seconds INTEGER NOT NULL,
            etag TEXT,
            last_modified TEXT,
            state TEXT,
            next_due_ts INTEGER,
            last_attempt_at TEXT,
            last_result TEXT,
            last_cause TEXT,
            last_error TEXT,
            last_success_at TEXT,
            last_changed_at TEXT,
            last_altered INTEGER,
            failing_since TEXT,
            owner_told_at TEXT,
            failures INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX calendar_sources_due ON calendar_sources(next_due_ts)",
        # A CalDAV source's objects as last fetched (href -> iCalendar bytes): a sync
        # brings only what changed, and the calendar is all of them put together.
        """CREATE TABLE calendar_source_objects (
            calendar_id INTEGER NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
            href TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (calendar_id, href)
        ) WITHOUT ROWID""",
    ]
    for statement in statements:
        db.execute(statement)


def _schema_10(db: Database) -> None:
    """The owner console: sign-in links sent by mail, and the sessions they open.

    Only hashes of the link tokens and session secrets are stored (``tokens.token_hash``),
    as with invitations: a copy of the database signs nobody in. ``signin_requests``
    counts asks per address and per client for the rate limits, whether or not a link
    was sent (an unknown address gets none, and the page says the same either way).
    """
    statements = [
        """CREATE TABLE signin_links (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT
        )""",
        "CREATE INDEX signin_links_email ON signin_links(email)",
        """CREATE TABLE signin_requests (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL,
            client TEXT NOT NULL,
            at_ts INTEGER NOT NULL
        )""",
        "CREATE INDEX signin_requests_email ON signin_requests(email, at_ts)",
        "CREATE INDEX signin_requests_client ON signin_requests(client, at_ts)",
        """CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            secret_hash TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            ended_at TEXT
        )""",
        "CREATE INDEX sessions_email ON sessions(email)",
    ]
    for statement in statements:
        db.execute(statement)


def _schema_11(db: Database) -> None:
    """Owners are tenants: a calendar's name is unique per owner, not per installation.

    SQLite cannot drop the inline UNIQUE of ``calendars.name``, so the table is rebuilt
    as SQLite's 12-step ALTER procedure says: a new table with ``UNIQUE (owner_id,
    name)``, every row copied with its id, the old one dropped, the new one renamed.
    ``Store._migrate`` runs migrations with foreign keys off (else dropping the parent
    would delete every event, share and publication through ON DELETE CASCADE) and
    checks them all with ``PRAGMA foreign_key_check`` before it commits. The owner index
    comes back; a name index keeps the CLI's lookups by name alone (no ``--owner``) quick.
    """
    statements = [
        """CREATE TABLE calendars_new (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            owner_id INTEGER NOT NULL REFERENCES owners(id),
            tz TEXT,
            zone TEXT NOT NULL,
            created_at TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 0,
            imported_at TEXT,
            source TEXT,
            source_sha256 TEXT,
            source_name TEXT,
            vtimezones TEXT NOT NULL DEFAULT '',
            event_count INTEGER NOT NULL DEFAULT 0,
            indexed_from INTEGER,
            indexed_until INTEGER,
            max_duration INTEGER NOT NULL DEFAULT 0,
            UNIQUE (owner_id, name)
        )""",
        """INSERT INTO calendars_new (id, name, owner_id, tz, zone, created_at, version,
               imported_at, source, source_sha256, source_name, vtimezones, event_count,
               indexed_from, indexed_until, max_duration)
           SELECT id, name, owner_id, tz, zone, created_at, version,
               imported_at, source, source_sha256, source_name, vtimezones, event_count,
               indexed_from, indexed_until, max_duration
           FROM calendars""",
        "DROP TABLE calendars",
        "ALTER TABLE calendars_new RENAME TO calendars",
        "CREATE INDEX calendars_owner ON calendars(owner_id)",
        "CREATE INDEX calendars_name ON calendars(name)",
    ]
    for statement in statements:
        db.execute(statement)


def _schema_12(db: Database) -> None:
    """Who set a calendar's source: ``guarded`` 1 when an owner added it from the console.

    Such a source is fetched under the SSRF guard (``calshare.netguard``: no loopback,
    private or link-local peer unless ``owners.private_sources``); 0, the default and
    every source before this version, was set by the operator's CLI, which is trusted.
    """
    db.execute("ALTER TABLE calendar_sources ADD COLUMN guarded INTEGER NOT NULL DEFAULT 0")


# Append only: a migration, once released, never changes. The index is the version.
MIGRATIONS: list[Callable[[Database], None]] = [
    _schema_1,
    _schema_2,
    _schema_3,
    _schema_4,
    _schema_5,
    _schema_6,
    _schema_7,
    _schema_8,
    _schema_9,
    _schema_10,
    _schema_11,
    _schema_12,
]
SCHEMA_VERSION = len(MIGRATIONS)


class Store:
    """An open calshare database."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(
        cls,
        path: str | Path = DEFAULT_DB,
        *,
        busy_timeout_ms: int = 5000,
        durable: bool = True,
        same_thread: bool = True,
    ) -> Store:
        """Open (creating and migrating as needed) the database.

        ``durable=False`` gives a connection whose commits use synchronous=NORMAL:
        they survive a killed process but maybe not a power cut. Only for records
        whose loss costs a repeat, never data: the outbox's "sent" marks.
        ``same_thread=False`` lets one thread at a time other than the opener use it
        (the daemon's sender hands its database work to a worker thread).
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(path), timeout=busy_timeout_ms / 1000, check_same_thread=same_thread
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"Cannot open the database {path}: {exc}") from None
        try:
            db = Database(conn, execute_plugins=False)
            with db.ensure_autocommit_on():
                db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                db.execute("PRAGMA foreign_keys = ON")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                # Freed pages are zeroed: a sent mail's bytes (and its token) do not
                # linger in the file, whatever the SQLite build's default.
                db.execute("PRAGMA secure_delete = ON")
            store = cls(db, path)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{path} is not a usable calshare database ({exc})") from None
        except BaseException:
            conn.close()
            raise
        return store

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[Database]:
        """One write transaction, all or nothing, holding the write lock from the start.

        Storage trouble (locked past the timeout, disk full, read-only file)
        becomes a StoreError the edges can answer (exit 2, SMTP 451); anything
        else is a bug and propagates as is.
        """
        conn = self.db.conn
        if conn.in_transaction:
            raise RuntimeError("nested write transaction")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        except sqlite3.OperationalError as exc:
            problem = self._storage_problem(exc)
            if conn.in_transaction:
                conn.rollback()
            if problem is None:
                raise
            raise problem from None

    def _storage_problem(self, exc: sqlite3.OperationalError) -> StoreError | None:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return StoreBusy(
                f"The database {self.path} is busy: another calshare process is writing; "
                "try again in a moment"
            )
        if "full" in text or "readonly" in text or "read-only" in text or "disk i/o" in text:
            return StoreError(f"Cannot write to the database {self.path}: {exc}")
        return None

    def meta(self, name: str) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", [name]).fetchone()
        if row is None:
            raise StoreError(f"{self.path} lacks its {name!r}; it was not made by calshare")
        return str(row[0])

    @property
    def uid_key(self) -> bytes:
        """The key for stand-in UIDs (see levels.opaque_uid)."""
        return bytes.fromhex(self.meta("uid_key"))

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        """Bring the schema up to date; a current database is only read, never locked.

        Migrations run with foreign keys off, as SQLite's ALTER TABLE procedure asks:
        a migration that rebuilds a parent table (schema 11) must not have its DROP
        TABLE cascade to the children. The pragma is a no-op inside a transaction, so
        it is set around it; ``PRAGMA foreign_key_check`` then proves, before the
        commit, that every reference still points at a row, or nothing is changed.
        """
        if self.schema_version == SCHEMA_VERSION:
            return
        with self.db.ensure_autocommit_on():
            self.db.execute("PRAGMA foreign_keys = OFF")
        try:
            self._run_migrations()
        finally:
            with self.db.ensure_autocommit_on():
                self.db.execute("PRAGMA foreign_keys = ON")
        # Old pages of a migration that rewrote secrets (schema 6) leave the WAL now,
        # not at some later checkpoint; the rewritten file has them zeroed.
        with self.db.ensure_autocommit_on():
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _run_migrations(self) -> None:
        with self.write() as db:
            current = self.schema_version  # again, under the lock: another process may have won
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer calshare (schema {current}; "
                    f"this one knows {SCHEMA_VERSION}): upgrade calshare"
                )
            for version in range(current, SCHEMA_VERSION):
                MIGRATIONS[version](db)
                db.execute(f"PRAGMA user_version = {version + 1}")
                log.info("migrated %s to schema %d", self.path, version + 1)
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                table, rowid, parent, _ = broken[0]
                raise StoreError(
                    f"Cannot upgrade {self.path}: {len(broken)} rows would point at nothing "
                    f"(first: {table} row {rowid} -> {parent}); the database is unchanged"
                )
