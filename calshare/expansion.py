"""Expand events into occurrences placed on the timeline: the rows of the index.

recurring-ical-events decides which occurrences exist (RRULE, RDATE, EXDATE,
RECURRENCE-ID overrides); this module only places them in time. Floating times
and all-day dates belong to the calendar's zone, so they get that zone here;
the index then compares plain UTC seconds.

Expansion is bounded (``Caps``): a source can say FREQ=SECONDLY with no end, and
URL sources are written by third parties. Rules are iterated lazily; what a
series keeps (its occurrences in the span) counts toward its cap and the run's
total, what its rule walks over from its start counts toward a much larger walk
budget, and the clock is looked at with every instance walked. The work stops at
a cap or the deadline, with a message naming the event.
"""

from __future__ import annotations

import functools
import logging
import time as monotonic_time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, Protocol

import icalendar
from recurring_ical_events import Series
from recurring_ical_events.adapters import EventAdapter
from recurring_ical_events.errors import BadRuleStringFormat
from recurring_ical_events.util import (
    compare_greater,
    convert_to_datetime,
    is_pytz,
    is_pytz_dt,
    normalize_pytz,
)

from calshare.errors import ExpansionLimit
from calshare.ics_reader import NO_UID, PARSE_ERRORS, reason

if TYPE_CHECKING:
    from calshare.config import CalendarSettings

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
    capped: bool = False  # a cap cut the result short (queries only; an import fails instead)


WALK_FACTOR = 10


@dataclass(frozen=True)
class Caps:
    """Limits on one run of expansion: an import, or one query's expansion.

    ``per_series`` counts the occurrences a series has in the span expanded (what
    would be stored); ``per_run`` counts those of every series and the single
    events of the run. Walking a rule from its start to the span costs work too,
    so a series may walk at most ``walk`` instances (``WALK_FACTOR`` times
    ``per_series``: an hourly series since 1990 passes, a minutely one does not);
    the deadline bounds everything, looked at with every instance walked.
    """

    per_series: int = 50_000
    per_run: int = 250_000
    seconds: float = 60.0

    @property
    def walk(self) -> int:
        return self.per_series * WALK_FACTOR

    @classmethod
    def of(cls, calendars: CalendarSettings) -> Caps:
        return cls(
            per_series=calendars.max_occurrences_per_series,
            per_run=calendars.max_occurrences_per_import,
            seconds=calendars.max_import_seconds,
        )


class _Cap(Exception):
    """A cap or the deadline was passed; ``why`` says which, for a message."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _SeriesCap(_Cap):
    """One series has more than ``Caps.per_series`` occurrences, or walked past ``walk``."""


class _RunCap(_Cap):
    """The run produced more than ``Caps.per_run``, or ran past its deadline."""


class Meter:
    """Counts the work of one expansion run against its caps and its deadline.

    One meter per import or per query, shared by every series in it; ``now`` is
    a monotonic clock (injectable for tests), started when the meter is made.
    ``series`` and ``walked`` belong to the series being expanded (reset by
    ``next_series``); single events count toward ``total`` only.
    """

    def __init__(self, caps: Caps, now: Callable[[], float] = monotonic_time.monotonic) -> None:
        self.caps = caps
        self.total = 0
        self.series = 0
        self.walked = 0
        self._now = now
        self.deadline = now() + caps.seconds

    def next_series(self) -> None:
        self.series = 0
        self.walked = 0

    def single(self) -> None:
        """One single event kept; raises past the run's total or the deadline."""
        self._count_in_run()
        self.check_time()

    def emitted(self) -> None:
        """One occurrence of the current series kept (in the span); raises past a cap."""
        self.series += 1
        if self.series > self.caps.per_series:
            raise _SeriesCap(
                f"it recurs more than {self.caps.per_series:,} times in the span expanded"
                " ([calendars] max_occurrences_per_series)"
            )
        self._count_in_run()

    def walk(self) -> None:
        """One instance generated by the current series' rule, kept or not."""
        self.walked += 1
        if self.walked > self.caps.walk:
            raise _SeriesCap(
                f"its rule generates more than {self.caps.walk:,} instances from its start"
                f" to the end of the span expanded ({WALK_FACTOR} ×"
                " [calendars] max_occurrences_per_series)"
            )
        self.check_time()

    def _count_in_run(self) -> None:
        self.total += 1
        if self.total > self.caps.per_run:
            raise _RunCap(
                f"more than {self.caps.per_run:,} occurrences in all"
                " ([calendars] max_occurrences_per_import)"
            )

    def out_of_time(self) -> bool:
        return self._now() > self.deadline

    def check_time(self) -> None:
        if self.out_of_time():
            raise _RunCap(
                f"it took longer than {self.caps.seconds:g} s ([calendars] max_import_seconds)"
            )


class _LazyRules(Series.RecurrenceRules):  # type: ignore[misc]
    """recurring-ical-events' rules, iterated lazily and metered.

    The library asks dateutil for ``rule.between(...)``, which builds the whole
    list first (34 million datetimes for a year of FREQ=SECONDLY) and walks from
    DTSTART without a way to stop. This iterates the same rules one instance at a
    time, counts each on the meter's walk (and looks at its clock), and otherwise
    does what the library does. No UNTIL is added to bound the rule: dateutil
    compares UNTIL only with an instance it has found, which is where this loop
    stops anyway; a rule that finds none (BYMONTH=2;BYMONTHDAY=30) is refused
    when the calendar is read (``ics_reader.never_occurs``).
    """

    meter: Meter | None = None

    def rrule_between(self, span_start: Any, span_stop: Any) -> Iterator[Any]:
        start = convert_to_datetime(span_start, self.tzinfo)
        stop = convert_to_datetime(span_stop, self.tzinfo)
        if is_pytz(self.tzinfo):  # as the library does, for pytz at DST changes
            start = normalize_pytz(start - timedelta(hours=1))
            stop = normalize_pytz(stop + timedelta(hours=1))
        for rule in self.rrules:
            for moment in rule:
                if moment > stop:
                    break
                if self.meter is not None:
                    self.meter.walk()
                if moment < start:
                    continue
                if is_pytz_dt(moment):
                    moment = moment.tzinfo.localize(moment.replace(tzinfo=None))
                if rule.until is None or not compare_greater(moment, rule.until):
                    yield moment


class _TrackedSeries(Series):  # type: ignore[misc]
    """Remember which component each occurrence came from (master or override).

    ``Series.occurrence`` is recurring-ical-events' documented hook for this;
    ``RecurrenceRules`` is the class it makes the rules of a series with.
    """

    RecurrenceRules = _LazyRules

    def __init__(self, components: Sequence[Any], meter: Meter | None = None) -> None:
        super().__init__(components)
        if isinstance(self.recurrence, _LazyRules):
            self.recurrence.meter = meter

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
def expand_singles(
    events: Sequence[Expandable], positions: list[int], zone: tzinfo, meter: Meter | None = None
) -> Expansion:
    """Single events are indexed whatever their date: one row each, no horizon needed.

    Each counts toward the run's total on the meter (never toward a series' cap);
    passing the total or the deadline raises ExpansionLimit naming the event.
    """
    result = Expansion()
    for index in positions:
        event = events[index]
        if meter is not None:
            try:
                meter.single()
            except _Cap as exc:
                raise ExpansionLimit(_limit_message(event, exc.why)) from None
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
    meter: Meter | None = None,
    *,
    cut: bool = False,
) -> Expansion:
    """Occurrences of every series that start in [start_ts, end_ts).

    With a meter, the caps hold. At import (``cut`` False) a series over
    ``per_series`` is skipped with a warning, and passing ``per_run`` or the
    deadline raises ExpansionLimit naming the event. In a query (``cut`` True)
    nothing raises: a series over its cap keeps what it had, the run stops at
    the others, each with a warning, and the result says ``capped``.
    """
    result = Expansion()
    window_start = datetime.fromtimestamp(max(start_ts - _PAD, _MIN_TS), UTC)
    window_end = datetime.fromtimestamp(min(end_ts + _PAD, _MAX_TS), UTC)
    for uid, positions in series.items():
        first = events[positions[0]]
        found: list[Slot] = []
        if meter is not None:
            meter.next_series()
        try:
            adapters = [EventAdapter(events[index].component) for index in positions]
            position_of = {
                id(adapter): index for adapter, index in zip(adapters, positions, strict=True)
            }
            made = _TrackedSeries(adapters, meter)
            for occurrence in made.between(window_start, window_end):
                index = position_of[id(occurrence.source_adapter)]
                slot = _slot(index, occurrence.start, occurrence.end, zone)
                if start_ts <= slot.start_ts < end_ts:
                    if meter is not None:
                        meter.emitted()
                    found.append(slot)
        except PARSE_ERRORS as exc:
            result.failed.add(uid)
            result.warnings.append(_skipped(first, exc))
            continue
        except _SeriesCap as exc:
            why = exc.why
            if not cut:
                result.failed.add(uid)
                result.warnings.append(_skipped(first, why))
                continue
            result.capped = True
            result.warnings.append(_limit_message(first, f"{why}; later ones are left out"))
        except _Cap as exc:  # _RunCap, and any cap to come: never an escape
            if not cut:
                raise ExpansionLimit(_limit_message(first, exc.why)) from None
            result.capped = True
            result.slots.extend(found)
            result.warnings.append(
                _limit_message(first, f"{exc.why}; this and later series are left out")
            )
            break
        result.slots.extend(found)
    return result


def event_name(event: Expandable) -> str:
    """How a message names an event: its UID and, shortened, its SUMMARY."""
    if event.uid.startswith(NO_UID):
        name = "an event without UID"
    else:
        name = f"event {_shorten(event.uid)!r}"
    try:
        summary = event.component.get("SUMMARY")
    except PARSE_ERRORS:
        summary = None
    if isinstance(summary, str) and summary.strip():
        name += f" ({_shorten(summary.strip())!r})"
    return name


def _shorten(text: str) -> str:
    text = "".join(char if char.isprintable() else "?" for char in " ".join(text.split()))
    return text if len(text) <= 60 else text[:60] + "…"


def _limit_message(event: Expandable, why: str) -> str:
    return f"line {event.line}: {event_name(event)}: {why}"


def _skipped(event: Expandable, exc: BaseException | str) -> str:
    if isinstance(exc, str):  # a cap: named in full, summary too
        return f"line {event.line}: skipped {event_name(event)}: {exc}"
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
