"""Permission levels and the one filter every output goes through.

A level is a ceiling. ``filter_occurrence`` is the only place that decides what
a viewer at a level may see; HTML, ICS attachments, feeds and published pages
all render its result, so a field hidden in one output is hidden in all.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from calshare.errors import LevelError
from calshare.occurrence import TEXT_FIELDS, Occurrence, SeriesPart
from calshare.vtimezone import same_clock


class Level(StrEnum):
    FREE_BUSY = "free-busy"
    TITLES = "titles"
    DETAILS = "details"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    @property
    def outlook_words(self) -> str:
        """How Outlook names the level, for people who know Outlook."""
        return _OUTLOOK[self]

    @classmethod
    def parse(cls, text: str) -> Level:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(level.value for level in cls)
            raise LevelError(f"Unknown level {text!r}; use one of: {names}") from None


_ORDER = (Level.FREE_BUSY, Level.TITLES, Level.DETAILS)
_OUTLOOK = {
    Level.FREE_BUSY: "can view when I'm busy",
    Level.TITLES: "can view titles and locations",
    Level.DETAILS: "can view all details",
}

_SHOWN: dict[Level, frozenset[str]] = {
    Level.FREE_BUSY: frozenset(),
    Level.TITLES: frozenset({"summary", "location"}),
    Level.DETAILS: frozenset(TEXT_FIELDS),
}

_EMPTY: dict[str, Any] = {
    name: () if name in ("attendees", "categories") else None for name in TEXT_FIELDS
}


def lower_of(first: Level, second: Level) -> Level:
    """The more restrictive of two levels (policy caps, grant vs. request)."""
    return first if first.rank <= second.rank else second


def calendar_title(level: Level, name: str, source_title: str | None) -> str:
    """The title a viewer at ``level`` sees for the whole calendar.

    The source's own title is text the owner's app wrote, often private in the same
    way an event title is (Google names a primary calendar by the account's address),
    so it is shown only where titles are; free-busy viewers see calshare's name.
    """
    if source_title and "summary" in _SHOWN[level]:
        return source_title
    return name


def stand_in_key(uid_key: bytes, calendar_id: int) -> bytes:
    """The key of one calendar's stand-in UIDs, derived from the installation's secret.

    So the same source UID in two calendars gives unrelated stand-ins.
    """
    return hmac.new(uid_key, f"calendar/{calendar_id}".encode(), hashlib.sha256).digest()


def opaque_uid(uid: str, key: bytes = b"", instance: str = "") -> str:
    """A stable stand-in for one instance's UID: some producers write names or subjects into UIDs.

    Keyed (HMAC-SHA256 with the calendar's key, see stand_in_key), so that a viewer
    who knows or guesses a UID cannot tell which busy block it is, and per
    instance (its RECURRENCE-ID), so that the blocks of a series cannot be grouped
    into one. Always derived, whatever the UID looks like: a source cannot choose
    its stand-in. What is a stand-in is said by ``Occurrence.stand_in``, never by shape.
    """
    message = f"{len(uid)}:{uid}/{instance}".encode("utf-8", "surrogatepass")
    return "busy-" + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def _hidden(level: Level, reduced: bool) -> dict[str, Any]:
    """The text fields a viewer at ``level`` may not see, emptied: the one rule per field."""
    shown = frozenset() if reduced else _SHOWN[level]
    return {name: empty for name, empty in _EMPTY.items() if name not in shown}


def filter_occurrence(
    occurrence: Occurrence,
    level: Level,
    *,
    include_private: bool = False,
    zone: tzinfo | None = None,
    uid_key: bytes = b"",
) -> Occurrence:
    """What a viewer at ``level`` may see of ``occurrence``.

    Private items (CLASS:PRIVATE, CONFIDENTIAL or unknown) are reduced to busy
    time at every level unless the owner chose to include them. Where the UID is
    hidden (free-busy, reduced items), so is everything that tells which event it
    is or where it happens: the UID becomes a keyed stand-in of its own per
    instance (marked ``stand_in``), the RECURRENCE-ID goes, and times are given
    in the calendar's ``zone`` rather than the event's own (an event kept in
    Asia/Tokyo would say where it takes place).
    """
    reduced = occurrence.private and not include_private
    if level is Level.DETAILS and not reduced:
        return occurrence  # nothing to hide: the owner's own view, or a public item
    hidden = _hidden(level, reduced)
    if not reduced and level is not Level.FREE_BUSY:
        return occurrence._replace(**hidden)
    start, end = occurrence.start, occurrence.end
    if zone is not None and isinstance(start, datetime) and isinstance(end, datetime):
        start, end = start.astimezone(zone), end.astimezone(zone)
    uid = occurrence.uid
    if not occurrence.stand_in:  # filtering a filtered occurrence again changes nothing
        uid = opaque_uid(uid, uid_key, occurrence.recurrence_id or "")
    return occurrence._replace(
        uid=uid,
        stand_in=True,
        recurrence_id=None,
        private=False,
        start=start,
        end=end,
        **hidden,
    )


SERIES_INSTANCE = "series"  # the stand-in of a series: one for its master and overrides


def filter_series(
    parts: Sequence[SeriesPart],
    level: Level,
    *,
    include_private: bool = False,
    zone: ZoneInfo,
    uid_key: bytes = b"",
) -> list[SeriesPart] | None:
    """What a viewer at ``level`` may see of a series: ``filter_occurrence``'s twin.

    ``parts[0]`` is the master, the rest its overrides. Each part is filtered on
    its own CLASS by the same field rule (``_hidden``): a private override of a
    public series is reduced, a public override of a private series is not. The
    UID is one for all parts, so that RECURRENCE-ID still binds: a keyed stand-in
    (``SERIES_INSTANCE``) where the level hides UIDs or the master is reduced.
    Where a part's place is hidden (free-busy, reduced), its times move to the
    calendar's ``zone``: an override's by its instants; a master's only where its
    zone keeps the same clock as the calendar's over the series (Europe/Berlin in
    an Oslo calendar), since its rule counts in wall-clock time. Otherwise None:
    the series cannot be written as one without naming its zone, and the caller
    writes its instances (each through ``filter_occurrence``) instead.
    """
    master = parts[0].fields
    hide_uid = level is Level.FREE_BUSY or (master.private and not include_private)
    uid = opaque_uid(master.uid, uid_key, SERIES_INSTANCE) if hide_uid else master.uid
    result: list[SeriesPart] = []
    for number, part in enumerate(parts):
        fields = part.fields
        reduced = fields.private and not include_private
        if level is not Level.DETAILS or reduced:
            fields = fields._replace(**_hidden(level, reduced))
        if reduced or level is Level.FREE_BUSY:
            moved = _moved(part, zone) if number == 0 else _override_moved(part, zone)
            if moved is None:
                return None
            part = moved
            fields = fields._replace(start=part.fields.start, end=part.fields.end, private=False)
        fields = fields._replace(uid=uid, stand_in=hide_uid, recurrence_id=None)
        result.append(part._replace(fields=fields))
    return result


def zone_key(value: date | datetime) -> str | None:
    """The zone a value is written in: a tz database key, "UTC", or None (a date)."""
    if not isinstance(value, datetime):
        return None
    tz = value.tzinfo
    if isinstance(tz, ZoneInfo):
        return "UTC" if tz.key in ("UTC", "Etc/UTC") else tz.key
    if tz is UTC:
        return "UTC"
    raise ValueError(f"{value!r} is not in a tz database zone")


def _override_moved(part: SeriesPart, zone: ZoneInfo) -> SeriesPart:
    """An override's times at their instants, in the calendar's zone (it has no rule)."""
    start, end = part.fields.start, part.fields.end
    if isinstance(start, datetime) and zone_key(start) != "UTC":
        start = start.astimezone(zone)
    if isinstance(end, datetime) and zone_key(end) != "UTC":
        end = end.astimezone(zone)
    return part._replace(fields=part.fields._replace(start=start, end=end))


def _moved(part: SeriesPart, zone: ZoneInfo) -> SeriesPart | None:
    """A master's times in the calendar's zone, at the same wall-clock times, or None."""
    start = part.fields.start
    since = int(start.timestamp()) if isinstance(start, datetime) else 0
    keys = {zone_key(value) for value in _values(part)} - {None, "UTC", zone.key}
    if any(not same_clock(key, zone.key, since) for key in keys if key is not None):
        return None
    if not keys:
        return part

    def move(value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(move(item) for item in value)
        if isinstance(value, datetime) and zone_key(value) in keys:
            return value.replace(tzinfo=zone)
        return value

    fields = part.fields._replace(start=move(part.fields.start), end=move(part.fields.end))
    return part._replace(
        fields=fields,
        rdates=tuple(move(value) for value in part.rdates),
        exdates=tuple(move(value) for value in part.exdates),
    )


def _values(part: SeriesPart) -> list[date | datetime]:
    found: list[date | datetime] = [part.fields.start, part.fields.end, *part.exdates]
    for value in part.rdates:
        found.extend(value if isinstance(value, tuple) else (value,))
    return found
