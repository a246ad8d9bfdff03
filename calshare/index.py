"""The occurrence index: write it at import, query it by time, extend it on demand.

"Occurrences of calendar X between A and B" is one range scan on
(calendar_id, start_ts). An occurrence that starts before A can still overlap
it, by at most the calendar's longest event, so the scan starts that much
earlier. Single events are always indexed; recurring series only over the
calendar's indexed span, which grows when a query reaches past it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from time import gmtime, strftime

from sqlite_utils import Database

from calshare.bulk import paused_gc
from calshare.busy import Busy
from calshare.calendars import Calendar, get_calendar
from calshare.errors import StoreError
from calshare.expansion import Slot, expand_series, group_by_uid
from calshare.ics_reader import SourceEvent, read_calendar
from calshare.occurrence import Occurrence
from calshare.store import Store

log = logging.getLogger(__name__)

# When a query reaches past the indexed span, index this much more than asked,
# so that paging through months does not re-expand every series each time.
EXTENSION_SLACK = 90 * 86400


_EVENT_COLUMNS = (
    "id, calendar_id, uid, recurrence_id, source_tz, line, recurs, tzid, busy, status, private, "
    "summary, location, description, organizer, attendees, categories, url, ical"
)


def insert_events(db: Database, calendar_id: int, events: Sequence[SourceEvent]) -> list[int]:
    """Store events as imported; returns their row ids in the same order.

    Ids are handed out here (inside the caller's write transaction, which holds
    the lock) so that one executemany can insert them all.
    """
    first = int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM events").fetchone()[0])
    ids = list(range(first, first + len(events)))
    db.conn.executemany(
        f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ({', '.join('?' * 19)})",
        [
            (
                event_id,
                calendar_id,
                event.uid,
                event.recurrence_id,
                event.source_tz,
                event.line,
                int(event.recurs),
                event.tzid,
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
    event_ids: Mapping[int, int] | Sequence[int],
    slots: Iterable[Slot],
) -> None:
    """Index occurrences; ``event_ids`` maps a slot's event position to its row id."""
    db.conn.executemany(
        """INSERT INTO occurrences (calendar_id, event_id, start_ts, end_ts, start, end, all_day)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (
            (calendar_id, event_ids[event], start_ts, end_ts, start, end, all_day)
            for event, start_ts, end_ts, start, end, all_day in slots
        ),
    )


def longest(slots: Sequence[Slot]) -> int:
    return max((slot.end_ts - slot.start_ts for slot in slots), default=0)


def occurrences_between(
    store: Store, calendar: Calendar, start: datetime, end: datetime
) -> list[Occurrence]:
    """Every occurrence overlapping [start, end), in time order, unfiltered."""
    start_ts, end_ts = int(start.timestamp()), int(end.timestamp())
    calendar = ensure_indexed(store, calendar, start_ts, end_ts)
    rows = store.db.conn.execute(
        """SELECT o.start_ts, o.start, o.end, o.all_day, e.recurs, e.recurrence_id, e.uid, e.busy,
                  e.status, e.private, e.summary, e.location, e.description, e.organizer,
                  e.attendees, e.categories, e.url
           FROM occurrences o JOIN events e ON e.id = o.event_id
           WHERE o.calendar_id = ? AND o.start_ts >= ? AND o.start_ts < ?
             AND (o.end_ts > ? OR o.start_ts >= ?)
           ORDER BY o.start_ts, e.uid""",
        (calendar.id, start_ts - calendar.max_duration, end_ts, start_ts, start_ts),
    )
    return [_occurrence(row) for row in rows]


def _time(text: str, all_day: int) -> date | datetime:
    return date.fromisoformat(text) if all_day else datetime.fromisoformat(text)


def _occurrence(row: tuple) -> Occurrence:  # type: ignore[type-arg]
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
        # An instance of a series is named by its start, in iCalendar's basic form.
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


@dataclass(frozen=True)
class _Span:
    start: int
    end: int


def _missing(calendar: Calendar, start_ts: int, end_ts: int) -> list[_Span]:
    low, high = calendar.indexed_from, calendar.indexed_until
    if low is None or high is None:
        return []  # never imported: nothing to extend
    wanted_from = start_ts - calendar.max_duration
    spans = []
    if wanted_from < low:
        spans.append(_Span(wanted_from - EXTENSION_SLACK, low))
    if end_ts > high:
        spans.append(_Span(high, end_ts + EXTENSION_SLACK))
    return spans


def ensure_indexed(store: Store, calendar: Calendar, start_ts: int, end_ts: int) -> Calendar:
    """Extend the calendar's indexed span of recurring series to cover [start_ts, end_ts)."""
    if not _missing(calendar, start_ts, end_ts) or not _has_series(store.db, calendar.id):
        return calendar
    with store.write() as db, paused_gc():
        calendar = get_calendar(db, calendar.name)  # another process may have extended it
        spans = _missing(calendar, start_ts, end_ts)
        low, high = calendar.indexed_from, calendar.indexed_until
        if not spans or low is None or high is None:
            return calendar
        rows = list(
            db.execute(
                "SELECT id, line, ical, source_tz FROM events"
                " WHERE calendar_id = ? AND recurs = 1 ORDER BY id",
                [calendar.id],
            )
        )
        events, event_ids = _reparse(calendar, rows)
        _, series = group_by_uid(events)
        added: list[Slot] = []
        for span in spans:
            found = expand_series(events, series, calendar.zoneinfo, span.start, span.end)
            for warning in found.warnings:
                log.warning("calendar %s: %s", calendar.name, warning)
            added.extend(found.slots)
        insert_slots(db, calendar.id, event_ids, added)
        new_from = min(span.start for span in [*spans, _Span(low, high)])
        new_until = max(span.end for span in [*spans, _Span(low, high)])
        db.execute(
            "UPDATE calendars SET indexed_from = ?, indexed_until = ?, max_duration = ?"
            " WHERE id = ?",
            [new_from, new_until, max(calendar.max_duration, longest(added)), calendar.id],
        )
        log.info(
            "calendar %s: indexed %d more occurrences (%s .. %s)",
            calendar.name,
            len(added),
            datetime.fromtimestamp(new_from, UTC).date(),
            datetime.fromtimestamp(new_until, UTC).date(),
        )
        return get_calendar(db, calendar.name)


def _has_series(db: Database, calendar_id: int) -> bool:
    found = db.execute(
        "SELECT 1 FROM events WHERE calendar_id = ? AND recurs = 1 LIMIT 1", [calendar_id]
    )
    return found.fetchone() is not None


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
    text = ""
    for tz, group in by_tz.items():
        text += "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + (f"X-WR-TIMEZONE:{tz}\r\n" if tz else "")
        text += calendar.vtimezones + "".join(row[2] for row in group) + "END:VCALENDAR\r\n"
    rows = [row for group in by_tz.values() for row in group]
    parsed = read_calendar(text.encode("utf-8", "surrogatepass"), f"calendar {calendar.name}")
    if len(parsed.events) != len(rows):
        raise StoreError(
            f"calendar {calendar.name}: stored events no longer parse; import it again"
        )
    for event, row in zip(parsed.events, rows, strict=True):
        event.line = row[1]
    return parsed.events, [row[0] for row in rows]
