"""Permission levels and the one filter every output goes through.

A level is a ceiling. ``filter_occurrence`` is the only place that decides what
a viewer at a level may see; HTML, ICS attachments, feeds and published pages
all render its result, so a field hidden in one output is hidden in all.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any

from calshare.errors import LevelError
from calshare.occurrence import TEXT_FIELDS, Occurrence


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
    shown = frozenset() if reduced else _SHOWN[level]
    hidden = {name: empty for name, empty in _EMPTY.items() if name not in shown}
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
