"""Import a calendar: fetch, parse, expand, then replace the stored events in one transaction.

Everything that can fail (reading, parsing, expanding) happens before the
write transaction opens, and the transaction replaces the old events, the
index and the calendar's metadata together: a failed import changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calshare.bulk import paused_gc
from calshare.calendars import Calendar, get_calendar, utc_text
from calshare.clock import Clock
from calshare.config import Settings
from calshare.errors import ImportFailed
from calshare.expansion import expand_series, expand_singles, group_by_uid, horizon
from calshare.ics_reader import ParsedCalendar, SourceEvent, read_calendar
from calshare.index import insert_events, insert_slots, longest
from calshare.sources import Source, read_source
from calshare.store import Store

log = logging.getLogger(__name__)


@dataclass
class ImportResult:
    calendar: Calendar
    source: str
    events: int
    series: int
    occurrences: int
    warnings: list[str] = field(default_factory=list)


def choose_zone(
    calendar: Calendar, parsed: ParsedCalendar, default_tz: str, label: str
) -> tuple[str, list[str]]:
    """The owner's --tz wins; else the source's X-WR-TIMEZONE; else the configured default."""
    if calendar.tz:
        return calendar.tz, []
    if parsed.tz:
        try:
            ZoneInfo(parsed.tz)
            return parsed.tz, []
        except (ZoneInfoNotFoundError, ValueError):
            return default_tz, [
                f"{label}: X-WR-TIMEZONE {parsed.tz!r} is not a known zone; using {default_tz}"
            ]
    return default_tz, []


def parse_source(data: bytes, label: str) -> ParsedCalendar:
    """read_calendar, with the library's own warnings turned into import warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parsed = read_calendar(data, label)
    for warning in caught:
        parsed.warnings.append(f"{label}: {warning.message}")
    return parsed


def import_calendar(
    store: Store, settings: Settings, clock: Clock, name: str, location: str
) -> ImportResult:
    calendar = get_calendar(store.db, name)  # fail on a wrong name before fetching anything
    source = read_source(
        location, max_bytes=settings.import_.max_bytes, timeout=settings.import_.timeout_seconds
    )
    with paused_gc():
        return _import(store, settings, clock, calendar, location, source)


def _import(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar: Calendar,
    location: str,
    source: Source,
) -> ImportResult:
    parsed = parse_source(source.data, source.label)
    zone_name, zone_warnings = choose_zone(
        calendar, parsed, settings.calendars.default_tz, source.label
    )
    zone = ZoneInfo(zone_name)
    window = horizon(
        clock.now(), settings.calendars.index_past_days, settings.calendars.index_future_days
    )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        singles, series = group_by_uid(parsed.events)
        single_result = expand_singles(parsed.events, singles, zone)
        series_result = expand_series(parsed.events, series, zone, *window)
    skipped = [
        *parsed.skipped,
        *(f"{source.label}, {text}" for text in single_result.warnings),
        *(f"{source.label}, {text}" for text in series_result.warnings),
    ]
    problems = [
        *parsed.warnings,
        *zone_warnings,
        *skipped,
        *(f"{source.label}: {warning.message}" for warning in caught),
    ]
    failed = single_result.failed | series_result.failed
    keep = [index for index, event in enumerate(parsed.events) if event.uid not in failed]
    if parsed.vevent_count and not keep:
        first = skipped[0] if skipped else "no event could be read"
        raise ImportFailed(
            f"None of the {parsed.vevent_count} events in {source.label} could be read; "
            f"nothing was imported. First problem: {first}"
        )
    events: list[SourceEvent] = [parsed.events[index] for index in keep]
    slots = single_result.slots + series_result.slots
    if failed:
        slots = [slot for slot in slots if parsed.events[slot.event].uid not in failed]
    digest = hashlib.sha256(source.data).hexdigest()

    with store.write() as db:
        db.execute("DELETE FROM occurrences WHERE calendar_id = ?", [calendar.id])
        db.execute("DELETE FROM events WHERE calendar_id = ?", [calendar.id])
        event_ids = insert_events(db, calendar.id, events)
        insert_slots(db, calendar.id, dict(zip(keep, event_ids, strict=True)), slots)
        db.execute(
            """UPDATE calendars SET zone = ?, version = version + 1, imported_at = ?, source = ?,
                   source_sha256 = ?, source_name = ?, source_tz = ?, vtimezones = ?,
                   event_count = ?, indexed_from = ?, indexed_until = ?, max_duration = ?
               WHERE id = ?""",
            [
                zone_name,
                utc_text(clock.now()),
                location,
                digest,
                parsed.name,
                parsed.tz,
                parsed.vtimezones,
                len(events),
                window[0],
                window[1],
                longest(slots),
                calendar.id,
            ],
        )
    series_count = len({event.uid for event in events if event.recurs})
    log.info(
        "imported calendar %s from %s: %d events, %d series, %d occurrences, %d warnings",
        calendar.name,
        source.label,
        len(events),
        series_count,
        len(slots),
        len(problems),
    )
    return ImportResult(
        calendar=get_calendar(store.db, calendar.name),
        source=source.label,
        events=len(events),
        series=series_count,
        occurrences=len(slots),
        warnings=problems,
    )
