"""One occurrence of an event, as every output (JSON, HTML, ICS, feed) sees it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from calshare.busy import Busy


class Occurrence(NamedTuple):
    """An instance of an event in time.

    Immutable and cheap to make: a 30-day query builds thousands of these, and
    a NamedTuple is made and copied three times faster than a frozen dataclass.

    ``start``/``end`` are dates for all-day events (``end`` exclusive, as in
    iCalendar) and aware datetimes otherwise. The text fields are None (or empty)
    where the source had nothing or where a level hid them: outputs render what
    is set and never look anywhere else, which is what makes levels hold.
    """

    uid: str
    start: date | datetime
    end: date | datetime
    all_day: bool
    busy: Busy
    recurrence_id: str | None = None
    private: bool = False
    status: str | None = None
    summary: str | None = None
    location: str | None = None
    description: str | None = None
    organizer: str | None = None
    attendees: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    url: str | None = None
    # The UID is a keyed stand-in made by levels.filter_occurrence, not the source's:
    # said here, out of band, because a source UID can look like anything.
    stand_in: bool = False


TEXT_FIELDS = (
    "status",
    "summary",
    "location",
    "description",
    "organizer",
    "attendees",
    "categories",
    "url",
)


def occurrence_to_json(occurrence: Occurrence) -> dict[str, Any]:
    """The ``events --json`` shape: fields a level hid are absent, not null."""
    result: dict[str, Any] = {
        "uid": occurrence.uid,
        "start": occurrence.start.isoformat(),
        "end": occurrence.end.isoformat(),
        "all_day": occurrence.all_day,
        "busy": str(occurrence.busy),
    }
    if occurrence.recurrence_id is not None:
        result["recurrence_id"] = occurrence.recurrence_id
    if occurrence.private:
        result["private"] = True
    for name in TEXT_FIELDS:
        value = getattr(occurrence, name)
        if value:
            result[name] = list(value) if isinstance(value, tuple) else value
    return result


# An RDATE value: a date, a date-time, or a PERIOD (start, end).
RDate = date | datetime | tuple[datetime, datetime]


class SeriesPart(NamedTuple):
    """One component of a series as feeds write it: the master, or one override.

    ``fields`` holds what an occurrence holds, its ``start``/``end`` being the
    component's own DTSTART/DTEND (a date, or a datetime in the component's zone;
    floating times already placed in the calendar's zone); ``duration`` replaces
    the end where the source wrote DURATION. The recurrence (``rrules`` checked
    rule texts, ``rdates``, ``exdates``) is the master's; ``recurrence_id`` an
    override's. Every datetime is aware, in a ZoneInfo zone or UTC: the writer
    names its zone (TZID) as the value's own.
    """

    fields: Occurrence
    rrules: tuple[str, ...] = ()
    rdates: tuple[RDate, ...] = ()
    exdates: tuple[date | datetime, ...] = ()
    recurrence_id: date | datetime | None = None
    duration: timedelta | None = None
