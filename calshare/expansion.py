"""Expand events into occurrences placed on the timeline: the rows of the index.

recurring-ical-events decides which occurrences exist (RRULE, RDATE, EXDATE,
RECURRENCE-ID overrides); this module only places them in time. Floating times
and all-day dates belong to the calendar's zone, so they get that zone here;
the index then compares plain UTC seconds.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, NamedTuple, ParamSpec, Protocol

import icalendar
from recurring_ical_events import Series
from recurring_ical_events.adapters import EventAdapter
from recurring_ical_events.errors import BadRuleStringFormat

from calshare.ics_reader import NO_UID, PARSE_ERRORS, reason

log = logging.getLogger(__name__)
P = ParamSpec("P")

# Floating and all-day events are compared by recurring-ical-events as if they
# were in the query's zone; asking for a day more on each side and filtering on
# our own placement covers every UTC offset (-12 … +14 hours).
_PAD = 86400
_MIN_TS = int(datetime(1, 1, 3, tzinfo=UTC).timestamp())
_MAX_TS = int(datetime(9999, 12, 29, tzinfo=UTC).timestamp())


class Expandable(Protocol):
    component: icalendar.Event
    uid: str
    recurs: bool  # has RRULE, RDATE, EXDATE or RECURRENCE-ID, or shares its UID
    line: int


class Slot(NamedTuple):
    """One occurrence in the index. ``event`` is the position in the list given to expand.

    An instance of a series is identified by its start (its RECURRENCE-ID) or, when
    an override moved it, by the override's RECURRENCE-ID, which its event row holds.
    """

    event: int
    start_ts: int
    end_ts: int
    start: str
    end: str
    all_day: bool


@dataclass
class Expansion:
    slots: list[Slot] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)  # UIDs of series that could not be expanded


class _TrackedSeries(Series):  # type: ignore[misc]
    """Remember which component each occurrence came from (master or override).

    ``Series.occurrence`` is recurring-ical-events' documented hook for this.
    """

    def occurrence(self, adapter: Any, start: Any = None, end: Any = None) -> Any:
        made = super().occurrence(adapter, start, end)
        made.source_adapter = adapter
        return made


def place(value: date | datetime, zone: tzinfo) -> tuple[int, str, bool]:
    """(UTC seconds, ISO text, all-day) for a start or end as the event wrote it."""
    if not isinstance(value, datetime):
        moment = datetime.combine(value, time(), zone)
        return int(moment.timestamp()), value.isoformat(), True
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return int(value.timestamp()), value.isoformat(), False


def _slot(index: int, start: Any, end: Any, zone: tzinfo) -> Slot:
    start_ts, start_text, all_day = place(start, zone)
    end_ts, end_text, _ = place(end, zone)
    return Slot(index, start_ts, max(end_ts, start_ts), start_text, end_text, all_day)


def group_by_uid(events: Sequence[Expandable]) -> tuple[list[int], dict[str, list[int]]]:
    """Split positions into single events and series.

    A series is every event sharing a UID with another or with recurrence rules:
    recurring-ical-events must see such a group whole (overrides, duplicates with a
    higher SEQUENCE).
    """
    by_uid: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        by_uid.setdefault(event.uid, []).append(index)
    singles: list[int] = []
    series: dict[str, list[int]] = {}
    for uid, positions in by_uid.items():
        if len(positions) == 1 and not events[positions[0]].recurs:
            singles.append(positions[0])
        else:
            series[uid] = positions
    return singles, series


def _warnings_as_data(expand: Callable[P, Expansion]) -> Callable[P, Expansion]:
    """What the libraries warn about while expanding comes back in the result's warnings."""

    @functools.wraps(expand)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Expansion:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = expand(*args, **kwargs)
        result.warnings.extend(str(warning.message) for warning in caught)
        return result

    return wrapper


@_warnings_as_data
def expand_singles(events: Sequence[Expandable], positions: list[int], zone: tzinfo) -> Expansion:
    """Single events are indexed whatever their date: one row each, no horizon needed."""
    result = Expansion()
    for index in positions:
        event = events[index]
        try:
            adapter = EventAdapter(event.component)
            result.slots.append(_slot(index, adapter.start, adapter.end, zone))
        except PARSE_ERRORS as exc:
            result.failed.add(event.uid)
            result.warnings.append(_skipped(event, exc))
    return result


@_warnings_as_data
def expand_series(
    events: Sequence[Expandable],
    series: dict[str, list[int]],
    zone: tzinfo,
    start_ts: int,
    end_ts: int,
) -> Expansion:
    """Occurrences of every series that start in [start_ts, end_ts)."""
    result = Expansion()
    window_start = datetime.fromtimestamp(max(start_ts - _PAD, _MIN_TS), UTC)
    window_end = datetime.fromtimestamp(min(end_ts + _PAD, _MAX_TS), UTC)
    for uid, positions in series.items():
        adapters = [EventAdapter(events[index].component) for index in positions]
        position_of = {
            id(adapter): index for adapter, index in zip(adapters, positions, strict=True)
        }
        try:
            found = []
            for occurrence in _TrackedSeries(adapters).between(window_start, window_end):
                index = position_of[id(occurrence.source_adapter)]
                slot = _slot(index, occurrence.start, occurrence.end, zone)
                if start_ts <= slot.start_ts < end_ts:
                    found.append(slot)
        except PARSE_ERRORS as exc:
            result.failed.add(uid)
            result.warnings.append(_skipped(events[positions[0]], exc))
            continue
        result.slots.extend(found)
    return result


def _skipped(event: Expandable, exc: BaseException) -> str:
    if isinstance(exc, BadRuleStringFormat):
        # recurring-ical-events says "UNTIL parameter is missing" for any rule it cannot read.
        why = f"its RRULE {exc.rule!r} cannot be expanded (unknown FREQ or RSCALE, or a bad UNTIL)"
    elif isinstance(exc, TypeError):
        why = "its dates and times are of kinds that cannot be compared (e.g. RDATE;VALUE=TIME)"
    else:
        why = reason(exc)
    name = f"event {event.uid!r}" if not event.uid.startswith(NO_UID) else "an event without UID"
    return f"line {event.line}: skipped {name}: {why}"


def longest_span(events: Sequence[Expandable], positions: Iterable[int]) -> int:
    """The longest any occurrence of these events can last, in seconds, without expanding.

    The index needs this bound for its scans before it has expanded anything: an
    occurrence that starts before a window can still reach into it by this much.
    It comes from each component's own length and its RDATE periods, plus two
    hours for days that a DST change makes longer.
    """
    longest = 0
    for index in positions:
        try:
            adapter = EventAdapter(events[index].component)
            spans = [adapter.duration]
            for rdate in adapter.rdates:
                if isinstance(rdate, tuple):
                    end = rdate[1]
                    spans.append(end if isinstance(end, timedelta) else end - rdate[0])
        except PARSE_ERRORS:
            continue  # such an event fails its expansion too, and is skipped there
        longest = max(longest, *(int(span.total_seconds()) for span in spans))
    return longest + 7200


def horizon(now: datetime, past_days: int, future_days: int) -> tuple[int, int]:
    """The span indexed at import, in UTC seconds, whole days around now."""
    midnight = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    start = midnight - timedelta(days=past_days)
    end = midnight + timedelta(days=future_days + 1)
    return int(start.timestamp()), int(end.timestamp())
