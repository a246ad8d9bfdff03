"""A calendar's live source: what it follows, and the record of reading it.

A calendar may follow a URL (``https://``, ``http://``, ``webcal://``), a CalDAV
collection, or a file. URLs and files are read whole (a URL conditionally, with the
validators kept here); a CalDAV collection is read object by object (see
``calshare.refresh``). A file is static: it is read when the source is set and when
refreshed by hand, never by the daemon.

The full location is stored, because it is needed to fetch, but a URL's path and
query are secrets (Google's and Outlook's addresses are capabilities): everything
that shows a source shows ``shown_source``, its scheme and host.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from calshare.calendars import Calendar, get_calendar
from calshare.config import Settings, parse_duration
from calshare.errors import Field, Remedy, UsageError
from calshare.links import from_webcal
from calshare.sources import is_url, redact
from calshare.store import Store

URL, FILE, CALDAV = "url", "file", "caldav"
KINDS = (URL, FILE, CALDAV)


@dataclass(frozen=True)
class SourceRecord:
    """One row of ``calendar_sources``, with its calendar's name and owner."""

    calendar_id: int
    calendar: str
    owner: str
    kind: str
    location: str  # secret for a URL: show ``shown`` instead
    interval_seconds: int
    etag: str | None
    last_modified: str | None
    state: str | None
    next_due_ts: int | None
    last_attempt_at: str | None
    last_result: str | None
    last_cause: str | None
    last_error: str | None
    last_success_at: str | None
    last_changed_at: str | None
    last_altered: int | None
    failing_since: str | None
    owner_told_at: str | None
    failures: int
    event_count: int = 0  # the calendar's, as last applied
    source_sha256: str | None = None
    imported_at: str | None = None
    # another owner has a calendar of this name too: credentials kept for the name alone
    # are not this owner's to use (config.find_credential)
    shared_name: bool = False
    # an owner added it from the console: fetched under the SSRF guard (calshare.netguard)
    guarded: bool = False

    @property
    def shown(self) -> str:
        return shown_source(self.kind, self.location)

    @property
    def host(self) -> str:
        return source_host(self.location) if self.kind != FILE else ""


def shown_source(kind: str | None, location: str | None) -> str:
    """How a source is shown, everywhere (lists, ``--json``, logs, mails, errors).

    A URL or CalDAV collection: its scheme and host only. A file: its path.
    """
    if not location:
        return ""
    if kind in (URL, CALDAV) or (kind is None and is_url(location)):
        try:
            return redact(location)
        except ValueError:
            return "(a URL that cannot be read)"
    return location


def source_host(location: str) -> str:
    """The host of a URL source, lower case (for credentials and the owner's mail)."""
    from urllib.parse import urlsplit

    try:
        return (urlsplit(from_webcal(location)).hostname or "").lower()
    except ValueError:
        return ""


def parse_interval(text: str, settings: Settings) -> int:
    """``--every 15m``: seconds, at least ``sources.minimum_interval``."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise UsageError(
            f"The interval {text!r} cannot be read: {exc}", field=Field.INTERVAL
        ) from None
    minimum = settings.sources.minimum_interval
    if seconds < minimum:
        raise UsageError(
            f"Reading the source every {text} is more often than this server allows: the "
            f"shortest interval is {minimum // 60} minutes (setting sources.minimum_interval)",
            field=Field.INTERVAL,
        )
    if seconds > 7 * 86400:
        raise UsageError(
            f"The interval {text} is longer than 7 days; use a shorter interval",
            field=Field.INTERVAL,
        )
    return seconds


def kind_of(location: str, caldav: bool) -> str:
    if caldav:
        if not is_url(location):
            raise UsageError(
                "A CalDAV source needs the collection's https:// URL", field=Field.CALDAV
            )
        return CALDAV
    return URL if is_url(location) else FILE


def jitter_fraction(calendar_id: int) -> float:
    """A number in [0, 1) fixed for each calendar: where in its jitter window it falls.

    Deterministic, so tests can reason about due times, yet spread evenly over
    calendars, so thousands of them added together do not fire together.
    """
    digest = hashlib.sha256(f"calshare-source-{calendar_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def set_source(
    store: Store,
    calendar: Calendar,
    kind: str,
    location: str,
    interval_seconds: int,
    due_at: int | None,
    *,
    guarded: bool = False,
) -> SourceRecord:
    """Make the calendar follow ``location`` (replacing what it followed before).

    ``guarded``: an owner set it from the console, so every read of it goes through
    the SSRF guard; the operator's CLI leaves it false (it is trusted).
    """
    with store.write() as db:
        db.execute(
            """INSERT INTO calendar_sources (calendar_id, kind, location, interval_seconds,
                   next_due_ts, guarded)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (calendar_id) DO UPDATE SET kind = excluded.kind,
                   location = excluded.location, interval_seconds = excluded.interval_seconds,
                   next_due_ts = excluded.next_due_ts, guarded = excluded.guarded, etag = NULL,
                   last_modified = NULL, state = NULL, failures = 0, failing_since = NULL,
                   owner_told_at = NULL""",
            [calendar.id, kind, location, interval_seconds, due_at, int(guarded)],
        )
    found = find_source(store.db, calendar.id)
    assert found is not None  # the row written just above
    return found


_SELECT = """
SELECT s.*, c.name AS calendar, o.email AS owner, c.event_count AS event_count,
       c.source_sha256 AS source_sha256, c.imported_at AS imported_at,
       EXISTS (SELECT 1 FROM calendars x WHERE x.name = c.name AND x.id != c.id) AS shared_name
FROM calendar_sources s JOIN calendars c ON c.id = s.calendar_id
JOIN owners o ON o.id = c.owner_id
"""


def _record(row: dict[str, Any]) -> SourceRecord:
    names = SourceRecord.__dataclass_fields__
    fields = {key: value for key, value in row.items() if key in names}
    return SourceRecord(
        **{
            **fields,
            "shared_name": bool(row.get("shared_name")),
            "guarded": bool(row.get("guarded")),
        }
    )


def get_source(db: Database, calendar_name: str, owner: str | None = None) -> SourceRecord:
    """The calendar's source; UsageError if it follows none."""
    calendar = get_calendar(db, calendar_name, owner)  # UnknownCalendar for a wrong name
    rows = list(db.query(_SELECT + " WHERE s.calendar_id = ?", [calendar.id]))
    if not rows:
        raise UsageError(
            f"{calendar_name!r} follows no source",
            remedies=[Remedy.ADD_SOURCE],
            calendar=calendar_name,
        )
    return _record(rows[0])


def find_source(db: Database, calendar_id: int) -> SourceRecord | None:
    rows = list(db.query(_SELECT + " WHERE s.calendar_id = ?", [calendar_id]))
    return _record(rows[0]) if rows else None


def list_sources(db: Database, owner: str | None = None) -> list[SourceRecord]:
    """Every calendar's source, or only ``owner``'s (owners are tenants)."""
    if owner is not None:
        return [
            _record(row)
            for row in db.query(_SELECT + " WHERE o.email = ? ORDER BY c.name", [owner])
        ]
    return [_record(row) for row in db.query(_SELECT + " ORDER BY c.name, o.email")]


def due_sources(db: Database, now: datetime, limit: int | None = None) -> list[SourceRecord]:
    """Sources the daemon should read now (files never), earliest first."""
    sql = _SELECT + " WHERE s.next_due_ts <= ? AND s.kind != ? ORDER BY s.next_due_ts"
    parameters: list[Any] = [int(now.timestamp()), FILE]
    if limit is not None:
        sql += " LIMIT ?"
        parameters.append(limit)
    return [_record(row) for row in db.query(sql, parameters)]


def next_due(db: Database) -> int | None:
    """When the earliest source is due (Unix seconds), or None when none will be."""
    row = db.execute(
        "SELECT min(next_due_ts) FROM calendar_sources WHERE kind != ?", [FILE]
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def feed_refresh(db: Database, calendar_id: int, default_minutes: int) -> int:
    """Minutes a feed of the calendar asks subscribers to wait between reads.

    A calendar that follows a live source changes at most once per its interval, so
    its feeds ask for that; any other calendar asks for ``http.feed_refresh_minutes``.
    """
    row = db.execute(
        "SELECT kind, interval_seconds FROM calendar_sources WHERE calendar_id = ?",
        [calendar_id],
    ).fetchone()
    if row is None or row[0] == FILE:
        return default_minutes
    return max(1, int(row[1]) // 60)
