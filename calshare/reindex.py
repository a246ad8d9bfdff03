"""Bring a calendar to exactly what a source now says, re-indexing only the events that changed.

The one write path for a calendar's events: ``calshare calendar import`` and the
daemon's source refresh both end here. Everything that can fail (reading,
parsing, expanding) happens before the write transaction, which then replaces
events, occurrences and metadata together: a failed apply changes nothing, and a
process killed half-way leaves the old calendar or the new one, never a mix.

A refresh of a big calendar usually changes a few events, and parsing is most of
an import's cost, so the incremental path parses only what changed:

1. The file is decoded, split into lines and its structure checked (the cheap
   part of reading it: the same checks and messages as a full read).
2. Each VEVENT's text (with the X-WR-TIMEZONE of its VCALENDAR) is compared with
   the text stored for the calendar's events (``events.ical`` keeps every
   component as read), as multisets: what matches is unchanged and is not parsed.
   A component whose only difference is its DTSTAMP matches too (Google stamps
   every event with the time of the request; no output shows DTSTAMP, calshare
   writes its own), unless it has no UID (its stand-in UID is a digest of its text).
3. The UIDs of what did not match (stored rows gone, components new) are the
   changed UIDs; their whole groups (a series with its overrides) are parsed, with
   every other VEVENT blanked out so that line numbers stay those of the file,
   then expanded, and only they are deleted and inserted.

The result equals a full import of the same bytes (tests/test_reindex.py checks
it as a property): the same events and occurrences, the same caps. Whenever that
cannot be had cheaply, the whole calendar is read again (a "full" apply): on the
first import, when the VTIMEZONEs or the calendar's zone changed, when most
components changed, for components outside a VCALENDAR, and when a cap was hit
while the indexed span differs from the import horizon (see ``_incremental``).

The calendar's version (what feed ETags and cached pages follow) moves only when
a UID was added, changed or removed, or when the title, zone or VTIMEZONEs
changed: so an unchanged or only re-ordered source keeps every 304 a 304.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlite_utils import Database

from calshare.calendars import Calendar, calendar_by_id, get_calendar
from calshare.clock import Clock, utc_text
from calshare.config import Settings
from calshare.errors import ExpansionLimit, ImportFailed, StoreBusy
from calshare.expansion import (
    Caps,
    Meter,
    Slot,
    expand_series,
    expand_singles,
    group_by_uid,
    horizon,
    longest_span,
)
from calshare.ics_reader import (
    NO_UID,
    ParsedCalendar,
    SourceEvent,
    Span,
    check_timezones,
    read_lines,
    scan,
    split_lines,
    time_key,
)
from calshare.index import insert_events, insert_slots, longest
from calshare.store import Store

log = logging.getLogger(__name__)

# More changed components than this share of the file: reading everything is as cheap.
FULL_SHARE = 0.5
_ATTEMPTS = 3  # another writer changed the calendar between reading and writing: again


@dataclass(frozen=True)
class Applied:
    """What an apply did. Counts are of UIDs (a series and its overrides are one)."""

    added: int
    changed: int
    removed: int
    unchanged: int
    visible: bool  # could what some level shows have changed (the version moved)?
    version: int  # the calendar's version after
    events: int = 0  # events stored after (components)
    series: int = 0  # recurring UIDs stored after
    occurrences: int = 0  # occurrences written by this apply
    indexed: int = 0  # occurrences in the calendar's index after
    warnings: tuple[str, ...] = ()  # about what was read (all of it on a full apply)
    full: bool = False  # the whole calendar was read and replaced
    same_bytes: bool = False  # the same bytes as last time: nothing was read or written


def apply_source(
    store: Store,
    settings: Settings,
    calendar_name: str,
    data: bytes,
    label: str,
    clock: Clock,
    *,
    owner: str | None = None,
) -> Applied:
    """Bring the calendar to exactly ``data``.

    Parsing and expanding happen outside the write transaction (same caps and
    errors as calshare.importer); then one transaction touches only the UIDs whose
    content changed. Raises the same ImportFailed/ExpansionLimit as an import.
    """
    calendar = get_calendar(store.db, calendar_name, owner)
    return apply_data(store, settings, clock, calendar.id, data, label)


def apply_data(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar_id: int,
    data: bytes,
    label: str,
    *,
    location: str | None = None,
) -> Applied:
    """apply_source, by the calendar's id (its name is only unique per owner); ``location``
    (a file or URL given to ``calendar import``) is stored too."""
    digest = hashlib.sha256(data).hexdigest()
    for _ in range(_ATTEMPTS):
        calendar = calendar_by_id(store.db, calendar_id)
        if (
            calendar.imported_at
            and calendar.source_sha256 == digest
            and (location is None or calendar.source == location)
        ):
            log.info("calendar %s: %s is unchanged since it was last read", calendar.name, label)
            return Applied(
                0,
                0,
                0,
                _uid_count(store.db, calendar.id),
                visible=False,
                version=calendar.version,
                events=calendar.event_count,
                same_bytes=True,
            )
        plan = _plan(store, settings, clock, calendar, data, label)
        applied = _write(store, calendar, plan, digest, location, clock)
        if applied is not None:
            _log(calendar.name, label, applied)
            return applied
        log.info("calendar %s changed while %s was read; reading it again", calendar.name, label)
    raise StoreBusy(
        f"calendar {calendar.name!r} kept changing while {label} was applied; try again"
    )


# --- planning: everything before the write transaction


@dataclass
class _Plan:
    """What to write: the rows to delete, the events and slots to insert, the metadata."""

    full: bool
    zone: str
    name: str | None
    vtimezones: str
    delete_ids: list[int]
    events: list[SourceEvent]
    slots: list[Slot]  # ``event`` is a position in ``events``
    lines: list[tuple[int, int]]  # (line, row id) of kept rows that moved in the file
    span: tuple[int, int]
    max_duration: int
    warnings: list[str]
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    meta_changed: bool = False
    snapshot: tuple[object, ...] = ()  # the calendar's state the plan was made from


@dataclass
class _Row:
    id: int
    uid: str
    ical: str
    source_tz: str | None
    line: int


@dataclass
class _Component:
    """A VEVENT of the new file, found by the structural scan."""

    span: Span
    tz: str | None  # the X-WR-TIMEZONE of its VCALENDAR, as far as a raw read tells
    text: str
    row: _Row | None = None  # the stored row with the same text, if any


def _snapshot(calendar: Calendar) -> tuple[object, ...]:
    return (calendar.version, calendar.indexed_from, calendar.indexed_until, calendar.zone)


def _plan(
    store: Store, settings: Settings, clock: Clock, calendar: Calendar, data: bytes, label: str
) -> _Plan:
    meter = Meter(Caps.of(settings.calendars))  # reading counts toward the deadline too
    lines, notes = split_lines(data, label)
    top, stray = scan(lines, label)
    check_timezones(lines, top, label, settings.calendars.max_timezone_transitions)
    if calendar.imported_at is None or any(span.name == "VEVENT" for span in top):
        return _full(store, settings, clock, calendar, (lines, notes, label), (top, stray))
    rows = _stored_rows(store.db, calendar.id)
    components = _components(lines, top)
    _match(components, rows)
    unmatched = [component for component in components if component.row is None]
    if len(unmatched) > FULL_SHARE * max(len(components), 1):
        return _full(store, settings, clock, calendar, (lines, notes, label), (top, stray))
    plan = _incremental(
        store,
        settings,
        clock,
        calendar,
        (lines, notes, label),
        (top, stray),
        components,
        rows,
        meter,
    )
    if plan is None:
        return _full(store, settings, clock, calendar, (lines, notes, label), (top, stray))
    return plan


def _stored_rows(db: Database, calendar_id: int) -> list[_Row]:
    found = db.execute(
        "SELECT id, uid, ical, source_tz, line FROM events WHERE calendar_id = ? ORDER BY id",
        [calendar_id],
    ).fetchall()
    return [_Row(*row) for row in found]


_UNFOLD = re.compile(r"\r\n[ \t]")
_DTSTAMP = re.compile(
    r"^DTSTAMP[;:][^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", re.MULTILINE | re.IGNORECASE
)


def _without_stamp(text: str) -> str:
    return _DTSTAMP.sub("", text)


def _property(lines: list[str], numbers: Iterable[int], name: str) -> str | None:
    """The first value of a property among these physical lines, unfolded; raw (unescaped).

    Only a guess, checked against the parser's reading wherever it matters.
    """
    logical: list[str] = []
    for number in numbers:
        line = lines[number]
        if line[:1] in (" ", "\t") and logical:
            logical[-1] += line[1:]
        elif line:
            logical.append(line)
    wanted = name.upper()
    for line in logical:
        head, colon, value = line.partition(":")
        if colon and head.split(";", 1)[0].strip().upper() == wanted:
            return value.strip() or None
    return None


def _own_lines(span: Span) -> Iterable[int]:
    """The lines of a component outside its children: its own properties."""
    number = span.first + 1
    for child in span.children:
        yield from range(number, child.first)
        number = child.last + 1
    yield from range(number, span.last)


def _components(lines: list[str], top: Sequence[Span]) -> list[_Component]:
    found: list[_Component] = []
    for span in top:
        if span.name != "VCALENDAR":
            continue
        tz = _property(lines, _own_lines(span), "X-WR-TIMEZONE")
        for child in span.children:
            if child.name == "VEVENT":
                text = "\r\n".join(lines[child.first : child.last + 1]) + "\r\n"
                found.append(_Component(child, tz, text))
    return found


def _match(components: list[_Component], rows: list[_Row]) -> None:
    """Pair components with stored rows of the same text (and zone), as multisets."""
    by_text: dict[tuple[str, str | None], list[_Row]] = {}
    for row in rows:
        by_text.setdefault((row.ical, row.source_tz), []).append(row)
    left: list[_Component] = []
    for component in components:
        same = by_text.get((component.text, component.tz))
        if same:
            component.row = same.pop()
        else:
            left.append(component)
    if not left:
        return
    # Then the same text but for DTSTAMP (events with a UID only).
    by_stamp: dict[tuple[str, str | None], list[_Row]] = {}
    for rest in by_text.values():
        for row in rest:
            if not row.uid.startswith(NO_UID):
                by_stamp.setdefault((_without_stamp(row.ical), row.source_tz), []).append(row)
    if not by_stamp:
        return
    for component in left:
        same = by_stamp.get((_without_stamp(component.text), component.tz))
        if same:
            component.row = same.pop()


def _raw_uid(component: _Component, lines: list[str]) -> str | None:
    return _property(lines, range(component.span.first + 1, component.span.last), "UID")


def _incremental(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar: Calendar,
    source: tuple[list[str], list[str], str],
    structure: tuple[list[Span], list[int]],
    components: list[_Component],
    rows: list[_Row],
    meter: Meter,
) -> _Plan | None:
    """The plan that re-reads only the changed UIDs, or None where a full read is needed.

    ``source`` is the file's lines, the notes on its encoding and its label;
    ``structure`` what ``scan`` found in them.
    """
    lines, notes, label = source
    matched_ids = {component.row.id for component in components if component.row is not None}
    gone = [row for row in rows if row.id not in matched_ids]
    touched = {row.uid for row in gone}
    touched |= {
        uid
        for component in components
        if component.row is None and (uid := _raw_uid(component, lines)) is not None
    }
    parsed: ParsedCalendar | None = None
    chosen: list[_Component] = []
    for _ in range(_ATTEMPTS):
        chosen = [c for c in components if c.row is None or c.row.uid in touched]
        parsed = _read_some(lines, notes, label, components, chosen, structure)
        found = {event.uid for event in parsed.events} | parsed.dropped_uids
        # A component left unread may belong to a UID that turned out to be touched
        # (a UID the raw guess spelled differently): read its group too.
        missed = {
            c.row.uid
            for c in components
            if c.row is not None and c.row.uid not in touched and c.row.uid in found
        }
        if not missed:
            break
        touched |= missed | found
    else:
        return None
    assert parsed is not None
    touched |= {event.uid for event in parsed.events} | parsed.dropped_uids
    by_line = {c.span.first + 1: c for c in chosen}
    for event in parsed.events:
        component = by_line.get(event.line)
        if component is None or component.tz != event.source_tz:
            return None  # the raw reading of X-WR-TIMEZONE was wrong: read it all
    zone_name, zone_warnings = choose_zone(calendar, parsed, settings.calendars.default_tz, label)
    if zone_name != calendar.zone or parsed.vtimezones != calendar.vtimezones:
        return None  # every event may read differently now

    # Which UIDs really changed: compare the old and the new group as texts.
    old: dict[str, list[str]] = {}
    for row in rows:
        if row.uid in touched:
            old.setdefault(row.uid, []).append(_group_key(row.ical, row.source_tz, row.uid))
    new: dict[str, list[str]] = {}
    for event in parsed.events:
        new.setdefault(event.uid, []).append(_group_key(event.ical, event.source_tz, event.uid))
    changed_uids = {
        uid for uid in touched | set(new) if sorted(old.get(uid, [])) != sorted(new.get(uid, []))
    }
    events = [event for event in parsed.events if event.uid in changed_uids]
    delete_ids = [row.id for row in rows if row.uid in changed_uids]

    if meter.out_of_time():
        raise ExpansionLimit(
            f"{label}: reading it took longer than {meter.caps.seconds:g} s"
            " ([calendars] max_import_seconds); nothing was imported"
        )
    # Expand the changed groups over the indexed span, the caps counting the rest too.
    window = horizon(
        clock.now(), settings.calendars.index_past_days, settings.calendars.index_future_days
    )
    low, high = calendar.indexed_from, calendar.indexed_until
    span = (low, high) if low is not None and high is not None else window
    meter.total = _occurrence_count(store.db, calendar.id) - _occurrence_count(
        store.db, calendar.id, delete_ids
    )
    singles, series = group_by_uid(events)
    for positions in series.values():
        for index in positions:
            events[index].recurs = True
    normalize_recurrence_ids(events, ZoneInfo(zone_name))
    try:
        single_result = expand_singles(events, singles, ZoneInfo(zone_name), meter)
        series_result = expand_series(events, series, ZoneInfo(zone_name), *span, meter)
    except ExpansionLimit as exc:
        if span != window:
            return None  # a full import's horizon is what the caps are defined on
        raise ExpansionLimit(f"{label}, {exc}; nothing was imported") from None
    failed = single_result.failed | series_result.failed
    if failed and span != window:
        return None
    skipped = [
        *parsed.skipped,
        *(f"{label}, {text}" for text in single_result.warnings),
        *(f"{label}, {text}" for text in series_result.warnings),
    ]
    keep = [index for index, event in enumerate(events) if event.uid not in failed]
    kept_events = [events[index] for index in keep]
    position = {old_index: new_index for new_index, old_index in enumerate(keep)}
    slots = [
        slot._replace(event=position[slot.event])
        for slot in single_result.slots + series_result.slots
        if slot.event in position
    ]
    remaining = len(rows) - len(delete_ids) + len(kept_events)
    if remaining == 0 and components:
        return None  # a full read says why none can be used
    kept_uids = {event.uid for event in kept_events}
    deleted_uids = {row.uid for row in rows if row.uid in changed_uids}
    stored_uids = {row.uid for row in rows}
    kept_series = [index for index, event in enumerate(kept_events) if event.recurs]
    max_duration = max(
        calendar.max_duration, longest(slots), longest_span(kept_events, kept_series)
    )
    deleted = set(delete_ids)
    moved = [
        (c.span.first + 1, c.row.id)
        for c in components
        if c.row is not None and c.row.id not in deleted and c.row.line != c.span.first + 1
    ]
    return _Plan(
        full=False,
        zone=zone_name,
        name=parsed.name,
        vtimezones=parsed.vtimezones,
        delete_ids=delete_ids,
        events=kept_events,
        slots=slots,
        lines=moved,
        span=span,
        max_duration=max_duration,
        warnings=[*parsed.warnings, *zone_warnings, *skipped],
        added=len(kept_uids - stored_uids),
        changed=len(kept_uids & deleted_uids),
        removed=len(deleted_uids - kept_uids),
        unchanged=len(stored_uids - deleted_uids),
        meta_changed=parsed.name != calendar.source_name,
        snapshot=_snapshot(calendar),
    )


def _group_key(ical: str, source_tz: str | None, uid: str) -> str:
    text = ical if uid.startswith(NO_UID) else _without_stamp(ical)
    return f"{source_tz}\n{text}"


def _read_some(
    lines: list[str],
    notes: list[str],
    label: str,
    components: list[_Component],
    chosen: list[_Component],
    structure: tuple[list[Span], list[int]],
) -> ParsedCalendar:
    """Read the file with every VEVENT but ``chosen`` blanked out, keeping line numbers."""
    keep = {c.span.first for c in chosen}
    blanked = list(lines)
    for component in components:
        first, last = component.span.first, component.span.last
        if first not in keep:
            blanked[first : last + 1] = [""] * (last - first + 1)
    # What scan would say of the blanked lines: the same, less the blanked VEVENTs.
    top = [
        Span(
            span.name,
            span.first,
            span.last,
            tuple(c for c in span.children if c.name != "VEVENT" or c.first in keep),
        )
        for span in structure[0]
    ]
    return read_lines(blanked, label, notes=notes, structure=(top, structure[1]))


def _occurrence_count(db: Database, calendar_id: int, event_ids: list[int] | None = None) -> int:
    if event_ids is None:
        row = db.execute(
            "SELECT COUNT(*) FROM occurrences WHERE calendar_id = ?", [calendar_id]
        ).fetchone()
        return int(row[0])
    total = 0
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        row = db.execute(
            f"SELECT COUNT(*) FROM occurrences WHERE event_id IN ({', '.join('?' * len(chunk))})",
            chunk,
        ).fetchone()
        total += int(row[0])
    return total


def _uid_count(db: Database, calendar_id: int) -> int:
    row = db.execute(
        "SELECT COUNT(DISTINCT uid) FROM events WHERE calendar_id = ?", [calendar_id]
    ).fetchone()
    return int(row[0])


def _full(
    store: Store,
    settings: Settings,
    clock: Clock,
    calendar: Calendar,
    source: tuple[list[str], list[str], str],
    structure: tuple[list[Span], list[int]],
) -> _Plan:
    """Read and expand the whole calendar, as an import always did."""
    lines, notes, label = source
    meter = Meter(Caps.of(settings.calendars))
    parsed = read_lines(lines, label, notes=notes, structure=structure)
    zone_name, zone_warnings = choose_zone(calendar, parsed, settings.calendars.default_tz, label)
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
            f"{label}: reading it took longer than {meter.caps.seconds:g} s"
            " ([calendars] max_import_seconds); nothing was imported"
        )
    try:
        single_result = expand_singles(parsed.events, singles, zone, meter)
        series_result = expand_series(parsed.events, series, zone, *window, meter)
    except ExpansionLimit as exc:
        raise ExpansionLimit(f"{label}, {exc}; nothing was imported") from None
    skipped = [
        *parsed.skipped,
        *(f"{label}, {text}" for text in single_result.warnings),
        *(f"{label}, {text}" for text in series_result.warnings),
    ]
    problems = [*parsed.warnings, *zone_warnings, *skipped]
    failed = single_result.failed | series_result.failed
    keep = [index for index, event in enumerate(parsed.events) if event.uid not in failed]
    if parsed.vevent_count and not keep:
        first = skipped[0] if skipped else "no event could be read"
        raise ImportFailed(
            f"None of the {parsed.vevent_count} events in {label} can be used; "
            f"nothing was imported. First problem: {first}"
        )
    events: list[SourceEvent] = [parsed.events[index] for index in keep]
    position = {old_index: new_index for new_index, old_index in enumerate(keep)}
    slots = [
        slot._replace(event=position[slot.event])
        for slot in single_result.slots + series_result.slots
        if slot.event in position
    ]
    kept_series = [index for index in keep if parsed.events[index].recurs]
    max_duration = max(longest(slots), longest_span(parsed.events, kept_series))

    rows = _stored_rows(store.db, calendar.id)
    old: dict[str, list[str]] = {}
    for row in rows:
        old.setdefault(row.uid, []).append(_group_key(row.ical, row.source_tz, row.uid))
    new: dict[str, list[str]] = {}
    for event in events:
        new.setdefault(event.uid, []).append(_group_key(event.ical, event.source_tz, event.uid))
    same = {uid for uid in old.keys() & new.keys() if sorted(old[uid]) == sorted(new[uid])}
    return _Plan(
        full=True,
        zone=zone_name,
        name=parsed.name,
        vtimezones=parsed.vtimezones,
        delete_ids=[],
        events=events,
        slots=slots,
        lines=[],
        span=window,
        max_duration=max_duration,
        warnings=problems,
        added=len(new.keys() - old.keys()),
        changed=len((old.keys() & new.keys()) - same),
        removed=len(old.keys() - new.keys()),
        unchanged=len(same),
        meta_changed=(
            calendar.imported_at is None
            or parsed.name != calendar.source_name
            or zone_name != calendar.zone
            or parsed.vtimezones != calendar.vtimezones
        ),
        snapshot=_snapshot(calendar),
    )


# --- the write transaction


def _write(
    store: Store,
    calendar: Calendar,
    plan: _Plan,
    digest: str,
    location: str | None,
    clock: Clock,
) -> Applied | None:
    """Write the plan in one transaction; None if the calendar changed since it was made."""
    visible = plan.meta_changed or bool(plan.added or plan.changed or plan.removed)
    with store.write() as db:
        current = calendar_by_id(db, calendar.id)
        if _snapshot(current) != plan.snapshot:
            return None
        if plan.full:
            db.execute("DELETE FROM occurrences WHERE calendar_id = ?", [calendar.id])
            db.execute("DELETE FROM events WHERE calendar_id = ?", [calendar.id])
        else:
            # occurrences go with their events (ON DELETE CASCADE)
            db.conn.executemany(
                "DELETE FROM events WHERE id = ?", [(row_id,) for row_id in plan.delete_ids]
            )
            db.conn.executemany("UPDATE events SET line = ? WHERE id = ?", plan.lines)
        event_ids = insert_events(db, calendar.id, plan.events)
        insert_slots(db, calendar.id, plan.slots, event_ids)
        count = int(
            db.execute(
                "SELECT COUNT(*) FROM events WHERE calendar_id = ?", [calendar.id]
            ).fetchone()[0]
        )
        db.execute(
            """UPDATE calendars SET zone = ?, version = version + ?,
                   imported_at = CASE WHEN ? THEN ? ELSE imported_at END,
                   source = COALESCE(?, source), source_sha256 = ?, source_name = ?,
                   vtimezones = ?, event_count = ?, indexed_from = ?, indexed_until = ?,
                   max_duration = ?
               WHERE id = ?""",
            [
                plan.zone,
                int(visible),
                int(visible or current.imported_at is None),
                utc_text(clock.now()),
                location,
                digest,
                plan.name,
                plan.vtimezones,
                count,
                plan.span[0],
                plan.span[1],
                plan.max_duration,
                calendar.id,
            ],
        )
        series = int(
            db.execute(
                "SELECT COUNT(DISTINCT uid) FROM events WHERE calendar_id = ? AND recurs = 1",
                [calendar.id],
            ).fetchone()[0]
        )
        indexed = _occurrence_count(db, calendar.id)
        version = current.version + int(visible)
    return Applied(
        added=plan.added,
        changed=plan.changed,
        removed=plan.removed,
        unchanged=plan.unchanged,
        visible=visible,
        version=version,
        events=count,
        series=series,
        occurrences=len(plan.slots),
        indexed=indexed,
        warnings=tuple(plan.warnings),
        full=plan.full,
    )


def _log(name: str, label: str, applied: Applied) -> None:
    log.info(
        "calendar %s from %s (%s): %d UIDs added, %d changed, %d removed, %d unchanged;"
        " %d occurrences written, %d warnings%s",
        name,
        label,
        "full" if applied.full else "incremental",
        applied.added,
        applied.changed,
        applied.removed,
        applied.unchanged,
        applied.occurrences,
        len(applied.warnings),
        f"; now version {applied.version}" if applied.visible else "; version kept",
    )


# --- shared with the importer


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


def normalize_recurrence_ids(events: list[SourceEvent], zone: ZoneInfo) -> None:
    """A floating RECURRENCE-ID is a time in the calendar's zone: name it in UTC like the rest.

    Instances of a series are named by their UTC start (see index), so an override
    must use the same form to be recognisable as the same instance.
    """
    for event in events:
        if event.recurrence_id and len(event.recurrence_id) == 15:  # YYYYMMDDTHHMMSS, no Z
            floating = datetime.strptime(event.recurrence_id, "%Y%m%dT%H%M%S")
            event.recurrence_id = time_key(floating.replace(tzinfo=zone))
