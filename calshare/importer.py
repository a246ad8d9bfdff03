"""Import a calendar: fetch, parse, expand, then replace the stored events in one transaction.

Everything that can fail (reading, parsing, expanding) happens before the
write transaction opens, and the transaction replaces the old events, the
index and the calendar's metadata together: a failed import changes nothing.
The work is bounded ([calendars] max_* settings, see calshare.expansion.Caps):
a source is often someone else's URL.
"""

from __future__ import annotations

import hashlib
import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calshare.bulk import paused_gc
from calshare.calendars import Calendar, get_calendar
from calshare.clock import Clock, utc_text
from calshare.config import Settings
from calshare.errors import ExpansionLimit, ImportFailed
from calshare.expansion import (
    Caps,
    Meter,
    expand_series,
    expand_singles,
    group_by_uid,
    horizon,
    longest_span,
)
from calshare.ics_reader import ParsedCalendar, SourceEvent, read_calendar, time_key
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
    unchanged: bool = False  # the same bytes as last time: nothing was written


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


def import_calendar(
    store: Store,
    settings: Settings,
    clock: Clock,
    name: str,
    location: str,
    *,
    pause_gc: bool = False,
) -> ImportResult:
    """Replace the calendar's events with the source's.

    ``pause_gc`` pauses Python's cyclic garbage collector for the import (see
    calshare.bulk): worth it in a command that does only this, not in a daemon
    whose other threads would lose their collector too.
    """
    calendar = get_calendar(store.db, name)  # fail on a wrong name before fetching anything
    source = read_source(
        location, max_bytes=settings.import_.max_bytes, timeout=settings.import_.timeout_seconds
    )
    digest = hashlib.sha256(source.data).hexdigest()
    if calendar.imported_at and calendar.source_sha256 == digest and calendar.source == location:
        # Nothing to do, and the calendar's version (what feeds' ETags follow) stays.
        log.info("calendar %s: %s is unchanged since the last import", name, source.label)
        return ImportResult(calendar, source.label, calendar.event_count, 0, 0, [], unchanged=True)
    with paused_gc() if pause_gc else nullcontext():
        return _import(store, settings, clock, calendar, location, source, digest)


def _import(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar: Calendar,
    location: str,
    source: Source,
    digest: str,
) -> ImportResult:
    meter = Meter(Caps.of(settings.calendars))
    parsed = read_calendar(
        source.data,
        source.label,
        max_timezone_transitions=settings.calendars.max_timezone_transitions,
    )
    zone_name, zone_warnings = choose_zone(
        calendar, parsed, settings.calendars.default_tz, source.label
    )
    zone = ZoneInfo(zone_name)
    window = horizon(
        clock.now(), settings.calendars.index_past_days, settings.calendars.index_future_days
    )
    singles, series = group_by_uid(parsed.events)
    for positions in series.values():
        for index in positions:
            # Stored as part of a series, so the index finds the whole group again.
            parsed.events[index].recurs = True
    normalize_recurrence_ids(parsed.events, zone)
    if meter.out_of_time():
        raise ExpansionLimit(
            f"{source.label}: reading it took longer than {meter.caps.seconds:g} s"
            " ([calendars] max_import_seconds); nothing was imported"
        )
    try:
        single_result = expand_singles(parsed.events, singles, zone, meter)
        series_result = expand_series(parsed.events, series, zone, *window, meter)
    except ExpansionLimit as exc:
        raise ExpansionLimit(f"{source.label}, {exc}; nothing was imported") from None
    skipped = [
        *parsed.skipped,
        *(f"{source.label}, {text}" for text in single_result.warnings),
        *(f"{source.label}, {text}" for text in series_result.warnings),
    ]
    problems = [*parsed.warnings, *zone_warnings, *skipped]
    failed = single_result.failed | series_result.failed
    keep = [index for index, event in enumerate(parsed.events) if event.uid not in failed]
    if parsed.vevent_count and not keep:
        first = skipped[0] if skipped else "no event could be read"
        raise ImportFailed(
            f"None of the {parsed.vevent_count} events in {source.label} can be used; "
            f"nothing was imported. First problem: {first}"
        )
    events: list[SourceEvent] = [parsed.events[index] for index in keep]
    slots = single_result.slots + series_result.slots
    if failed:
        slots = [slot for slot in slots if parsed.events[slot.event].uid not in failed]
    kept_series = [index for index in keep if parsed.events[index].recurs]
    max_duration = max(longest(slots), longest_span(parsed.events, kept_series))

    with store.write() as db:
        db.execute("DELETE FROM occurrences WHERE calendar_id = ?", [calendar.id])
        db.execute("DELETE FROM events WHERE calendar_id = ?", [calendar.id])
        event_ids = insert_events(db, calendar.id, events)
        insert_slots(db, calendar.id, slots, dict(zip(keep, event_ids, strict=True)))
        db.execute(
            """UPDATE calendars SET zone = ?, version = version + 1, imported_at = ?, source = ?,
                   source_sha256 = ?, source_name = ?, vtimezones = ?, event_count = ?,
                   indexed_from = ?, indexed_until = ?, max_duration = ?
               WHERE id = ?""",
            [
                zone_name,
                utc_text(clock.now()),
                location,
                digest,
                parsed.name,
                parsed.vtimezones,
                len(events),
                window[0],
                window[1],
                max_duration,
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


def normalize_recurrence_ids(events: list[SourceEvent], zone: ZoneInfo) -> None:
    """A floating RECURRENCE-ID is a time in the calendar's zone: name it in UTC like the rest.

    Instances of a series are named by their UTC start (see index), so an override
    must use the same form to be recognisable as the same instance.
    """
    for event in events:
        if event.recurrence_id and len(event.recurrence_id) == 15:  # YYYYMMDDTHHMMSS, no Z
            floating = datetime.strptime(event.recurrence_id, "%Y%m%dT%H%M%S")
            event.recurrence_id = time_key(floating.replace(tzinfo=zone))
