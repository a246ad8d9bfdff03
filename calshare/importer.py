"""Import a calendar: fetch it, then apply it (calshare.reindex) in one transaction.

Everything that can fail (reading, parsing, expanding) happens before the
write transaction opens, and the transaction replaces the changed events, their
index and the calendar's metadata together: a failed import changes nothing.
The work is bounded ([calendars] max_* settings, see calshare.expansion.Caps):
a source is often someone else's URL. A calendar imported before is brought to
the new file incrementally (only the UIDs that changed are re-read and
re-indexed, see calshare.reindex), the same write path the source refresh uses.
"""

from __future__ import annotations

import hashlib
import logging
from contextlib import nullcontext
from dataclasses import dataclass, field

from calshare.bulk import paused_gc
from calshare.calendars import (
    Calendar,
    add_calendar,
    calendar_by_id,
    get_calendar,
    remove_new_calendar,
)
from calshare.clock import Clock
from calshare.config import Settings
from calshare.errors import ImportFailed
from calshare.reindex import apply_data
from calshare.sources import read_source
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


def import_calendar(
    store: Store,
    settings: Settings,
    clock: Clock,
    name: str,
    location: str,
    *,
    pause_gc: bool = False,
    owner: str | None = None,
) -> ImportResult:
    """Bring the calendar's events to the source's.

    ``pause_gc`` pauses Python's cyclic garbage collector for the import (see
    calshare.bulk): worth it in a command that does only this, not in a daemon
    whose other threads would lose their collector too.
    """
    calendar = get_calendar(store.db, name, owner)  # fail on a wrong name before fetching anything
    source = read_source(
        location, max_bytes=settings.import_.max_bytes, timeout=settings.import_.timeout_seconds
    )
    digest = hashlib.sha256(source.data).hexdigest()
    if calendar.imported_at and calendar.source_sha256 == digest and calendar.source == location:
        # Nothing to do, and the calendar's version (what feeds' ETags follow) stays.
        log.info("calendar %s: %s is unchanged since the last import", name, source.label)
        return ImportResult(calendar, source.label, calendar.event_count, 0, 0, [], unchanged=True)
    with paused_gc() if pause_gc else nullcontext():
        applied = apply_data(
            store, settings, clock, calendar.id, source.data, source.label, location=location
        )
    log.info(
        "imported calendar %s from %s: %d events, %d series, %d occurrences, %d warnings",
        name,
        source.label,
        applied.events,
        applied.series,
        applied.indexed,
        len(applied.warnings),
    )
    return ImportResult(
        calendar=calendar_by_id(store.db, calendar.id),
        source=source.label,
        events=applied.events,
        series=applied.series,
        occurrences=applied.indexed,
        warnings=list(applied.warnings),
    )


def add_from_data(
    store: Store,
    settings: Settings,
    clock: Clock,
    name: str,
    owner: str,
    tz: str | None,
    data: bytes,
    label: str,
) -> ImportResult:
    """Add a calendar with the events of ``data`` (an uploaded file): both, or neither.

    ``label`` names the data in messages (the upload's file name). The calendar
    follows nothing: an upload is read once. If the data is too large, not
    iCalendar or passes the expansion limits, the new calendar is taken back and
    the error raised: the store ends as it was.
    """
    if len(data) > settings.import_.max_bytes:
        raise ImportFailed(
            f"{label} is larger than the import limit of {settings.import_.max_bytes:,} bytes"
        )
    calendar = add_calendar(store, clock, name, owner, tz, settings.calendars.default_tz)
    try:
        applied = apply_data(store, settings, clock, calendar.id, data, label)
    except BaseException:
        remove_new_calendar(store, calendar)
        raise
    log.info("added calendar %s from %s: %d events", name, label, applied.events)
    return ImportResult(
        calendar=calendar_by_id(store.db, calendar.id),
        source=label,
        events=applied.events,
        series=applied.series,
        occurrences=applied.indexed,
        warnings=list(applied.warnings),
    )
