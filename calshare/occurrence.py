"""One occurrence of an event, as every output (JSON, HTML, ICS, feed) sees it."""

from __future__ import annotations

from datetime import date, datetime
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
