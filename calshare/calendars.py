"""Owners and their calendars: add, look up, list."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlite_utils import Database

from calshare.addresses import parse_mailbox
from calshare.clock import Clock, utc_text
from calshare.errors import AmbiguousCalendar, DuplicateCalendar, UnknownCalendar, UsageError
from calshare.store import Store

# Names end up in URLs and file names (NAME.ics on WebDAV), so keep them plain.
_NAME = re.compile(r"[^\W_][\w.-]{0,63}")


@dataclass(frozen=True)
class Calendar:
    id: int
    name: str
    owner: str
    owner_name: str
    tz: str | None  # chosen with --tz; None lets the source's X-WR-TIMEZONE decide
    zone: str  # the zone in use: floating times and all-day dates are read in it
    version: int
    imported_at: str | None
    source: str | None
    source_name: str | None
    source_sha256: str | None
    vtimezones: str
    event_count: int
    indexed_from: int | None
    indexed_until: int | None
    max_duration: int

    @property
    def zoneinfo(self) -> ZoneInfo:
        return ZoneInfo(self.zone)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"{name!r} cannot be a calendar name: use up to 64 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def check_zone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"Unknown time zone {zone!r}; use an IANA name like Europe/Oslo") from None
    return zone


_SELECT = """
SELECT c.*, o.email AS owner, o.name AS owner_name
FROM calendars c JOIN owners o ON o.id = c.owner_id
"""


def _from_row(row: dict[str, object]) -> Calendar:
    names = Calendar.__dataclass_fields__
    return Calendar(**{key: value for key, value in row.items() if key in names})  # type: ignore[arg-type]


def get_calendar(db: Database, name: str, owner: str | None = None) -> Calendar:
    """The calendar called ``name``; with ``owner``, only among that owner's calendars.

    Owners are tenants: the web console always names the owner, so one owner can never
    reach another's calendar by its name. The operator's CLI may leave it out.
    """
    if owner is None:
        rows = list(db.query(_SELECT + " WHERE c.name = ? ORDER BY o.email", [name]))
    else:
        rows = list(db.query(_SELECT + " WHERE c.name = ? AND o.email = ?", [name, owner]))
    if not rows:
        raise UnknownCalendar(name, owner)
    if len(rows) > 1:
        raise AmbiguousCalendar(name, tuple(str(row["owner"]) for row in rows))
    return _from_row(rows[0])


def calendar_by_id(db: Database, calendar_id: int) -> Calendar:
    rows = list(db.query(_SELECT + " WHERE c.id = ?", [calendar_id]))
    if not rows:
        raise UnknownCalendar(f"#{calendar_id}")
    return _from_row(rows[0])


def list_calendars(db: Database, owner: str | None = None) -> list[Calendar]:
    if owner is None:
        rows = db.query(_SELECT + " ORDER BY c.name")
    else:
        rows = db.query(_SELECT + " WHERE o.email = ? ORDER BY c.name", [owner])
    return [_from_row(row) for row in rows]


def add_calendar(
    store: Store, clock: Clock, name: str, owner: str, tz: str | None, default_tz: str
) -> Calendar:
    """Create a calendar (and its owner on first use); the owner can hold any number."""
    check_name(name)
    mailbox = parse_mailbox(owner)
    if tz is not None:
        check_zone(tz)
    now = utc_text(clock.now())
    with store.write() as db:
        existing = db.execute("SELECT id, name FROM owners WHERE email = ?", [mailbox.address])
        row = existing.fetchone()
        if row is None:
            owner_id = db.execute(
                "INSERT INTO owners (email, name, created_at) VALUES (?, ?, ?)",
                [mailbox.address, mailbox.display_name, now],
            ).lastrowid
        else:
            owner_id = row[0]
            if mailbox.display_name and not row[1]:
                db.execute(
                    "UPDATE owners SET name = ? WHERE id = ?", [mailbox.display_name, owner_id]
                )
        try:
            db.execute(
                "INSERT INTO calendars (name, owner_id, tz, zone, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [name, owner_id, tz, tz or default_tz, now],
            )
        except sqlite3.IntegrityError:
            raise DuplicateCalendar(name, mailbox.address) from None
    return get_calendar(store.db, name, mailbox.address)


def remove_new_calendar(store: Store, calendar: Calendar) -> None:
    """Take back a calendar just added whose first import failed: the store ends as before.

    Adding and importing are two steps (a source is read, and its read recorded, only
    once the calendar exists); a calendar whose first read failed would otherwise stay
    behind empty. What it holds goes with it (sources, events: ``ON DELETE CASCADE``),
    and so does its owner when the add created them (an owner with no calendar left
    exists nowhere else, as no command removes calendars).
    """
    with store.write() as db:
        db.execute("DELETE FROM calendars WHERE id = ?", [calendar.id])
        db.execute(
            "DELETE FROM owners WHERE email = ?"
            " AND NOT EXISTS (SELECT 1 FROM calendars c WHERE c.owner_id = owners.id)",
            [calendar.owner],
        )
