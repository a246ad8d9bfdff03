"""The occurrence index: write it at import, query it by time, extend it on demand.

"Occurrences of calendar X between A and B" is one range scan on
(calendar_id, start_ts). An occurrence that starts before A can still overlap
it, by at most the calendar's longest event, so the scan starts that much
earlier. Single events are always indexed; recurring series only over the
calendar's indexed span, which grows when a query reaches past it, but never
further than ``calendars.index_limit_years`` from now: a query beyond that is
expanded for its window alone and nothing is stored, so one far-away query can
neither fill the disk nor hold the write lock for long. Each query's expansion is
also bounded by the import caps (``expansion.Caps``): a series that passes them is
cut short, with a warning, and such a cut extension is not stored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from time import gmtime, strftime
from typing import Any

from sqlite_utils import Database

from calshare.busy import Busy
from calshare.calendars import Calendar, calendar_by_id
from calshare.config import CalendarSettings
from calshare.errors import StoreError
from calshare.expansion import Caps, Meter, Slot, expand_series, group_by_uid
from calshare.ics_reader import SourceEvent, read_calendar, wrap_calendar
from calshare.occurrence import Occurrence
from calshare.store import Store

log = logging.getLogger(__name__)

# When a query reaches past the indexed span, index this much more than asked,
# so that paging through months does not re-expand every series each time.
EXTENSION_SLACK = 90 * 86400
YEAR = 366 * 86400
DEFAULT_CAPS = Caps.of(CalendarSettings())

_EVENT_COLUMNS = (
    "id, calendar_id, uid, recurrence_id, source_tz, line, recurs, busy, status, private, "
    "summary, location, description, organizer, attendees, categories, url, ical"
)
_EVENT_FIELDS = (
    "e.recurs, e.recurrence_id, e.uid, e.busy, e.status, e.private, e.summary, e.location,"
    " e.description, e.organizer, e.attendees, e.categories, e.url"
)


def insert_events(db: Database, calendar_id: int, events: Sequence[SourceEvent]) -> list[int]:
    """Store events as imported; returns their row ids in the same order.

    Ids are handed out here, after the highest ever used (AUTOINCREMENT keeps that
    in sqlite_sequence), inside the caller's write transaction, which holds the
    lock: so one executemany inserts them all, and no id is ever used twice.
    """
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    first = (int(row[0]) if row else 0) + 1
    ids = list(range(first, first + len(events)))
    db.conn.executemany(
        f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ({', '.join('?' * 18)})",
        [
            (
                event_id,
                calendar_id,
                event.uid,
                event.recurrence_id,
                event.source_tz,
                event.line,
                int(event.recurs),
                str(event.busy),
                event.status,
                int(event.private),
                event.summary,
                event.location,
                event.description,
                event.organizer,
                json.dumps(list(event.attendees), ensure_ascii=False),
                json.dumps(list(event.categories), ensure_ascii=False),
                event.url,
                event.ical,
            )
            for event_id, event in zip(ids, events, strict=True)
        ],
    )
    return ids


def insert_slots(
    db: Database,
    calendar_id: int,
    slots: Iterable[Slot],
    event_ids: Mapping[int, int] | Sequence[int] | None = None,
) -> None:
    """Index occurrences. ``event_ids`` maps a slot's event position to its row id;
    without it, a slot's ``event`` is the row id already."""
    db.conn.executemany(
        """INSERT INTO occurrences (calendar_id, event_id, start_ts, end_ts, start, end, all_day)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (
            (
                calendar_id,
                event if event_ids is None else event_ids[event],
                start_ts,
                end_ts,
                start,
                end,
                all_day,
            )
            for event, start_ts, end_ts, start, end, all_day in slots
        ),
    )


def longest(slots: Sequence[Slot]) -> int:
    return max((slot.end_ts - slot.start_ts for slot in slots), default=0)


@dataclass(frozen=True)
class _Span:
    start: int
    end: int


def occurrences_between(
    store: Store,
    calendar: Calendar,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    limit_years: int = 10,
    caps: Caps | None = None,
    warnings: list[str] | None = None,
) -> list[Occurrence]:
    """Every occurrence overlapping [start, end), in time order, unfiltered.

    Expansion for the query stops at ``caps`` (default: the settings' defaults);
    what a cap left out is said in ``warnings`` if given, else in the log.
    """
    start_ts, end_ts = int(start.timestamp()), int(end.timestamp())
    if calendar.indexed_from is None:
        return []  # never imported
    now_ts = int(now.timestamp())
    limits = _Span(now_ts - limit_years * YEAR, now_ts + limit_years * YEAR)
    meter = Meter(caps or DEFAULT_CAPS)
    calendar = ensure_indexed(store, calendar, start_ts, end_ts, limits, meter, warnings)
    low = start_ts - calendar.max_duration
    rows = store.db.conn.execute(
        f"""SELECT o.start_ts, o.start, o.end, o.all_day, {_EVENT_FIELDS}
            FROM occurrences o JOIN events e ON e.id = o.event_id
            WHERE o.calendar_id = ? AND o.start_ts >= ? AND o.start_ts < ?
              AND (o.end_ts > ? OR o.start_ts >= ?)
            ORDER BY o.start_ts, e.uid""",
        (calendar.id, low, end_ts, start_ts, start_ts),
    ).fetchall()
    # What the index does not hold (series beyond the limits) is expanded for this
    # window only, and not stored.
    unindexed = _uncovered(calendar, _Span(low, end_ts))
    if unindexed and _has_series(store.db, calendar.id):
        slots, _ = _expand_stored(store.db, calendar, unindexed, meter, warnings)
        fields = _event_fields(store.db, {slot.event for slot in slots})
        for slot in slots:
            if slot.start_ts < end_ts and (slot.end_ts > start_ts or slot.start_ts >= start_ts):
                rows.append(
                    (slot.start_ts, slot.start, slot.end, slot.all_day, *fields[slot.event])
                )
        rows.sort(key=lambda row: (row[0], row[6]))
    return [_occurrence(row) for row in rows]


def _event_fields(db: Database, event_ids: set[int]) -> dict[int, tuple[Any, ...]]:
    marks = ", ".join("?" * len(event_ids))
    found = db.execute(
        f"SELECT e.id, {_EVENT_FIELDS} FROM events e WHERE e.id IN ({marks})", list(event_ids)
    ).fetchall()
    return {row[0]: tuple(row[1:]) for row in found}


def _time(text: str, all_day: int) -> date | datetime:
    return date.fromisoformat(text) if all_day else datetime.fromisoformat(text)


def _occurrence(row: tuple[Any, ...]) -> Occurrence:
    (
        start_ts,
        start,
        end,
        all_day,
        recurs,
        rid,
        uid,
        busy,
        status,
        private,
        summary,
        location,
        description,
        organizer,
        attendees,
        categories,
        url,
    ) = row
    if rid is None and recurs:
        # An instance of a series is named by its start, in iCalendar's basic form, in
        # UTC (overrides' RECURRENCE-IDs are stored the same way, see the importer).
        rid = start.replace("-", "") if all_day else strftime("%Y%m%dT%H%M%SZ", gmtime(start_ts))
    return Occurrence(
        uid=uid,
        start=_time(start, all_day),
        end=_time(end, all_day),
        all_day=bool(all_day),
        busy=Busy(busy),
        recurrence_id=rid,
        private=bool(private),
        status=status,
        summary=summary,
        location=location,
        description=description,
        organizer=organizer,
        attendees=() if attendees == "[]" else tuple(json.loads(attendees)),
        categories=() if categories == "[]" else tuple(json.loads(categories)),
        url=url,
    )


def _uncovered(calendar: Calendar, wanted: _Span) -> list[_Span]:
    """The parts of ``wanted`` outside the calendar's indexed span."""
    low, high = calendar.indexed_from, calendar.indexed_until
    if low is None or high is None:
        return []
    parts = []
    if wanted.start < low:
        parts.append(_Span(wanted.start, min(wanted.end, low)))
    if wanted.end > high:
        parts.append(_Span(max(wanted.start, high), wanted.end))
    return [part for part in parts if part.start < part.end]


def _extension(calendar: Calendar, start_ts: int, end_ts: int, limits: _Span) -> list[_Span]:
    """What to add to the index for this query, with slack and within limits.

    Always adjoining the indexed span, so that it stays one span without holes.
    """
    low, high = calendar.indexed_from, calendar.indexed_until
    if low is None or high is None:
        return []
    parts = []
    wanted_from = start_ts - calendar.max_duration
    if wanted_from < low:
        parts.append(_Span(max(wanted_from - EXTENSION_SLACK, limits.start), low))
    if end_ts > high:
        parts.append(_Span(high, min(end_ts + EXTENSION_SLACK, limits.end)))
    return [part for part in parts if part.start < part.end]


def ensure_indexed(
    store: Store,
    calendar: Calendar,
    start_ts: int,
    end_ts: int,
    limits: _Span,
    meter: Meter | None = None,
    warnings: list[str] | None = None,
) -> Calendar:
    """Extend the indexed span of recurring series towards [start_ts, end_ts), within limits.

    The expansion runs before the write transaction, which then only inserts; if
    the calendar changed meanwhile (another import or extension), the work is
    dropped and the query reads what is there. An expansion a cap cut short is
    not stored either: the index holds whole spans or nothing.
    """
    spans = _extension(calendar, start_ts, end_ts, limits)
    if not spans or not _has_series(store.db, calendar.id):
        return calendar
    slots, capped = _expand_stored(
        store.db, calendar, spans, meter or Meter(DEFAULT_CAPS), warnings
    )
    if capped:
        return calendar
    with store.write() as db:
        current = calendar_by_id(db, calendar.id)
        if (current.version, current.indexed_from, current.indexed_until) != (
            calendar.version,
            calendar.indexed_from,
            calendar.indexed_until,
        ):
            return current
        insert_slots(db, calendar.id, slots)
        covered = [
            *spans,
            _Span(calendar.indexed_from or start_ts, calendar.indexed_until or end_ts),
        ]
        new_from = min(span.start for span in covered)
        new_until = max(span.end for span in covered)
        db.execute(
            "UPDATE calendars SET indexed_from = ?, indexed_until = ?, max_duration = ?"
            " WHERE id = ?",
            [new_from, new_until, max(calendar.max_duration, longest(slots)), calendar.id],
        )
        log.info(
            "calendar %s: indexed %d more occurrences, now %d .. %d",
            calendar.name,
            len(slots),
            new_from,
            new_until,
        )
        return calendar_by_id(db, calendar.id)


def _has_series(db: Database, calendar_id: int) -> bool:
    found = db.execute(
        "SELECT 1 FROM events WHERE calendar_id = ? AND recurs = 1 LIMIT 1", [calendar_id]
    )
    return found.fetchone() is not None


def _expand_stored(
    db: Database,
    calendar: Calendar,
    spans: Sequence[_Span],
    meter: Meter,
    warnings: list[str] | None = None,
) -> tuple[list[Slot], bool]:
    """Occurrences of the stored series starting in ``spans``; ``event`` is the row id.

    Also whether a cap cut them short. Warnings go to ``warnings`` if given, else the log.
    """
    rows = db.execute(
        "SELECT id, line, ical, source_tz FROM events"
        " WHERE calendar_id = ? AND recurs = 1 ORDER BY id",
        [calendar.id],
    ).fetchall()
    events, ids = _reparse(calendar, rows)
    _, series = group_by_uid(events)
    slots: list[Slot] = []
    capped = False
    for span in spans:
        found = expand_series(
            events, series, calendar.zoneinfo, span.start, span.end, meter, cut=True
        )
        for warning in found.warnings:
            if warnings is None:
                log.warning("calendar %s: %s", calendar.name, warning)
            else:  # the caller says it (the CLI prints it as a warning)
                warnings.append(f"calendar {calendar.name}, {warning}")
        slots.extend(slot._replace(event=ids[slot.event]) for slot in found.slots)
        capped = capped or found.capped
    return slots, capped


def _reparse(
    calendar: Calendar, rows: list[tuple[int, int, str, str | None]]
) -> tuple[list[SourceEvent], list[int]]:
    """Parse the stored series again, with the zones and X-WR-TIMEZONE they came with.

    A file can hold several VCALENDARs with different X-WR-TIMEZONEs (exports
    concatenated), so each group of events is wrapped with its own.
    """
    by_tz: dict[str | None, list[tuple[int, int, str, str | None]]] = {}
    for row in rows:
        by_tz.setdefault(row[3], []).append(row)
    text = "".join(
        wrap_calendar(calendar.vtimezones + "".join(row[2] for row in group), x_wr_timezone=tz)
        for tz, group in by_tz.items()
    )
    ordered = [row for group in by_tz.values() for row in group]
    parsed = read_calendar(text.encode("utf-8", "surrogatepass"), f"calendar {calendar.name}")
    if len(parsed.events) != len(ordered):
        raise StoreError(
            f"calendar {calendar.name}: stored events no longer parse; import it again"
        )
    for event, row in zip(parsed.events, ordered, strict=True):
        event.line = row[1]
        event.recurs = True
    return parsed.events, [row[0] for row in ordered]


def singles_from(store: Store, calendar: Calendar, start: datetime) -> list[Occurrence]:
    """Every single event overlapping [start, …), in time order, unfiltered: no end.

    Single events are always indexed, whatever their date, so this is one range scan.
    """
    start_ts = int(start.timestamp())
    rows = store.db.conn.execute(
        f"""SELECT o.start_ts, o.start, o.end, o.all_day, {_EVENT_FIELDS}
            FROM events e CROSS JOIN occurrences o ON o.event_id = e.id
            WHERE e.calendar_id = ? AND e.recurs = 0 AND o.start_ts >= ?
              AND (o.end_ts > ? OR o.start_ts >= ?)
            ORDER BY o.start_ts, e.uid""",
        (calendar.id, start_ts - calendar.max_duration, start_ts, start_ts),
    ).fetchall()
    return [_occurrence(row) for row in rows]


def live_series(
    store: Store,
    calendar: Calendar,
    start: datetime,
    *,
    now: datetime,
    limit_years: int = 10,
    caps: Caps | None = None,
) -> tuple[set[str], int]:
    """UIDs of series with an indexed instance overlapping [start, …), and where the index ends.

    The index is first extended to ``start`` if it does not reach it. A series not
    named may still have instances after the end returned (UTC seconds).
    """
    start_ts = int(start.timestamp())
    now_ts = int(now.timestamp())
    limits = _Span(now_ts - limit_years * YEAR, now_ts + limit_years * YEAR)
    calendar = ensure_indexed(
        store, calendar, start_ts, start_ts + 86400, limits, Meter(caps or DEFAULT_CAPS)
    )
    if calendar.indexed_until is None:
        return set(), start_ts
    low = start_ts - calendar.max_duration
    found = store.db.conn.execute(
        """SELECT DISTINCT e.uid FROM events e
           WHERE e.calendar_id = ? AND e.recurs = 1 AND EXISTS (
               SELECT 1 FROM occurrences o WHERE o.event_id = e.id AND o.start_ts >= ?
                 AND (o.end_ts > ? OR o.start_ts >= ?))""",
        (calendar.id, low, start_ts, start_ts),
    ).fetchall()
    return {row[0] for row in found}, calendar.indexed_until
