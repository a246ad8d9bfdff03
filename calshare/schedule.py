"""Lay filtered occurrences out as a schedule: days, months, time labels, working hours.

Pure: it takes occurrences that have already passed the level filter and says
where each one goes and how its time reads. The snapshot mail and the
published page render what this returns, and nothing else, so the HTML can
only show fields the level left in place.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date

from calshare.busy import Busy
from calshare.occurrence import Occurrence
from calshare.ranges import DateRange

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Past this many days, free days are not written out one by one: a year of
# "No events" helps no one.
DAILY_FREE_DAYS_UP_TO = 62
# Mail clients clip long messages (Gmail at 102 kB of HTML): past this many rows (an
# event on each day it covers counts once per day) the HTML stops and points at the
# attachment, which always holds everything.
HTML_ENTRY_LIMIT = 120
DESCRIPTION_LIMIT = 400


@dataclass(frozen=True)
class WorkingWindow:
    """The owner's working hours: which weekdays, from when to when (local time)."""

    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    @classmethod
    def parse(cls, days: Sequence[str], start: str, end: str) -> WorkingWindow:
        """From the config's words; "24:00" ends the day at midnight."""
        return cls(
            frozenset(WEEKDAYS.index(day) for day in days),
            _clock_time(start),
            _clock_time(end),
        )

    def on(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The day's working hours as UTC instants (so DST never confuses a comparison)."""
        if day.weekday() not in self.days:
            return None
        start = datetime.combine(day, self.start, zone)
        if self.end == time.max:
            end = datetime.combine(day + timedelta(days=1), time(), zone)
        else:
            end = datetime.combine(day, self.end, zone)
        return start.astimezone(UTC), end.astimezone(UTC)


def _clock_time(text: str) -> time:
    return time.max if text.strip() in ("24:00", "24:00:00") else time.fromisoformat(text)


def clip_to_working_hours(
    occurrences: Sequence[Occurrence], window: WorkingWindow, days: DateRange
) -> list[Occurrence]:
    """Only what falls in working hours, as Outlook's "working hours only" shows it.

    A timed event is cut to the working hours of each working day it touches
    (a three-day conference becomes three working days); one wholly outside
    them goes. All-day events stay on working days. Pieces after the first get
    a UID of their own, so a calendar app keeps them apart.
    """
    zone = days.zone
    kept: list[Occurrence] = []
    for occurrence in occurrences:
        start, end = occurrence.start, occurrence.end
        if occurrence.all_day:
            assert not isinstance(start, datetime) and not isinstance(end, datetime)
            touched = _dates(start, max(end, start + timedelta(days=1)))
            if any(d.weekday() in window.days and days.first <= d <= days.last for d in touched):
                kept.append(occurrence)
            continue
        assert isinstance(start, datetime) and isinstance(end, datetime)
        utc_start, utc_end = start.astimezone(UTC), end.astimezone(UTC)
        first_day = utc_start.astimezone(zone).date()
        last_day = utc_end.astimezone(zone).date()
        pieces = 0
        for day in _dates(max(first_day, days.first), min(last_day, days.last) + timedelta(1)):
            hours = window.on(day, zone)
            if hours is None:
                continue
            piece_start, piece_end = max(utc_start, hours[0]), min(utc_end, hours[1])
            if piece_start < piece_end or (
                utc_start == utc_end and hours[0] <= utc_start < hours[1]
            ):
                uid = occurrence.uid if pieces == 0 else f"{occurrence.uid}-{pieces}"
                kept.append(
                    occurrence._replace(
                        uid=uid, start=piece_start.astimezone(zone), end=piece_end.astimezone(zone)
                    )
                )
                pieces += 1
    kept.sort(key=lambda occurrence: _order(occurrence, zone))
    return kept


def _dates(first: date, stop: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((stop - first).days)]


def _order(occurrence: Occurrence, zone: ZoneInfo) -> tuple[int, int, float]:
    """Day by day in the calendar's zone; all-day events first; then by instant."""
    start = occurrence.start
    if isinstance(start, datetime):
        return start.astimezone(zone).toordinal(), 1, start.timestamp()
    return start.toordinal(), 0, 0.0


@dataclass(frozen=True)
class Entry:
    """One line of the schedule: an occurrence as seen on one day."""

    occurrence: Occurrence
    when: str  # "09:00 – 10:00", "All day", "until 00:30"
    busy: Busy

    @property
    def summary(self) -> str | None:
        return self.occurrence.summary

    @property
    def location(self) -> str | None:
        return self.occurrence.location

    @property
    def description(self) -> str | None:
        text = self.occurrence.description
        if text and len(text) > DESCRIPTION_LIMIT:
            return text[: DESCRIPTION_LIMIT - 1].rstrip() + "…"
        return text

    @property
    def private(self) -> bool:
        return self.occurrence.private


@dataclass
class Day:
    day: date
    label: str  # "Monday 30 November"
    short_label: str  # "Mon 30 Nov", for the list layout's narrow column
    entries: list[Entry] = field(default_factory=list)


@dataclass
class Month:
    label: str
    days: list[Day] = field(default_factory=list)


@dataclass(frozen=True)
class Words:
    """The words and date patterns a schedule needs, in the reader's language.

    They come from calshare.wording; the patterns are Babel's, for ``locale``.
    """

    locale: str  # "en_GB"
    all_day: str
    until: str  # "until {time}"
    continues: str  # an event that runs through the whole day
    day: str = "EEEE d MMMM"
    short_day: str = "EEE d MMM"
    month: str = "MMMM y"


@dataclass
class Schedule:
    months: list[Month]
    shown: int  # entries written out
    total: int  # occurrences in the range (all of them are in the .ics)
    # (month, occurrences starting in it) for the whole range: the overview of a long one
    month_counts: list[tuple[str, int]] = field(default_factory=list)

    @property
    def more(self) -> int:
        """Occurrences left out of the HTML (the attachment still has them)."""
        return self.total - self.shown


def _place(
    occurrence: Occurrence, days: DateRange, words: Words, daily: bool
) -> list[tuple[date, tuple[int, float], Entry]]:
    """The rows an occurrence makes: one per day it covers (daily), or one (list)."""
    start, end = occurrence.start, occurrence.end
    if occurrence.all_day:
        assert not isinstance(start, datetime) and not isinstance(end, datetime)
        covered = _dates(start, max(end, start + timedelta(days=1)))
        covered = [d for d in covered if days.first <= d <= days.last] or [days.first]
        label = words.all_day
        if not daily:
            covered = covered[:1]
            if end - start > timedelta(days=1):
                last = format_date(end - timedelta(days=1), words.short_day, locale=words.locale)
                label = f"{words.all_day} – {last}"
        entry = Entry(occurrence, label, occurrence.busy)
        return [(day, (0, 0.0), entry) for day in covered]
    assert isinstance(start, datetime) and isinstance(end, datetime)
    local_start, local_end = start.astimezone(days.zone), end.astimezone(days.zone)
    last_day = local_end.date()
    if local_end.time() == time() and end.timestamp() > start.timestamp():
        last_day -= timedelta(days=1)  # ending at midnight ends the day before
    covered = [
        d
        for d in _dates(local_start.date(), last_day + timedelta(days=1))
        if days.first <= d <= days.last
    ] or [max(days.first, min(local_start.date(), days.last))]
    if not daily:
        covered = covered[:1]
    return [
        (
            day,
            (1, start.timestamp() if day == local_start.date() else 0.0),
            Entry(occurrence, _timed_label(local_start, local_end, day, words), occurrence.busy),
        )
        for day in covered
    ]


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def _timed_label(start: datetime, end: datetime, day: date, words: Words) -> str:
    starts_today, ends_today = (
        start.date() == day,
        end.date() == day or (end.date() == day + timedelta(days=1) and end.time() == time()),
    )
    if starts_today and ends_today:
        # instants, not wall clocks: 02:30 before and after the autumn change differ
        same = end.timestamp() == start.timestamp()
        return _clock(start) if same else f"{_clock(start)} – {_clock(end)}"
    if starts_today:
        pattern = "EEE" if (end.date() - day).days < 7 else words.short_day
        ends = format_date(end.date(), pattern, locale=words.locale)
        return f"{_clock(start)} – {ends} {_clock(end)}"
    if ends_today:
        return words.until.format(time=_clock(end))
    return words.continues


def arrange(
    occurrences: Sequence[Occurrence],
    days: DateRange,
    *,
    words: Words,
    daily: bool,
    free_days: bool = True,
    weekdays: frozenset[int] | None = None,
    limit: int = HTML_ENTRY_LIMIT,
) -> Schedule:
    """The schedule by month and day, in time order, all-day events first.

    ``daily`` puts an event on every day it overlaps (an overnight event shows
    on both days); the list layout shows each occurrence once, on its first
    day in the range. Free days are kept (to say "No events") only when
    ``free_days`` and the range is short enough to list every day; with
    ``weekdays`` (working hours only) other days are left out.
    """
    zone = days.zone
    by_day: dict[date, list[tuple[tuple[int, float], Entry]]] = defaultdict(list)
    shown = rows = 0
    for occurrence in occurrences:
        placed = _place(occurrence, days, words, daily)
        if rows + len(placed) > limit:
            if shown == 0:  # one event longer than the limit still shows its first days
                placed = placed[:limit]
            else:
                break
        for day, key, entry in placed:
            by_day[day].append((key, entry))
        rows += len(placed)
        shown += 1
    listed = days.each_day() if free_days and days.days <= DAILY_FREE_DAYS_UP_TO else sorted(by_day)
    if weekdays is not None:
        listed = [day for day in listed if day.weekday() in weekdays or day in by_day]
    if shown < len(occurrences) and by_day:
        # cut off: days after the last one written would wrongly read as free
        listed = [day for day in listed if day <= max(by_day)]
    months: list[Month] = []
    for day in listed:
        label = format_date(day, words.month, locale=words.locale)
        if not months or months[-1].label != label:
            months.append(Month(label))
        entries = [entry for _, entry in sorted(by_day.get(day, []), key=lambda pair: pair[0])]
        months[-1].days.append(
            Day(
                day,
                format_date(day, words.day, locale=words.locale),
                format_date(day, words.short_day, locale=words.locale),
                entries,
            )
        )
    counts: dict[tuple[int, int], int] = {}
    if shown < len(occurrences):
        for occurrence in occurrences:
            start = occurrence.start
            first = start.astimezone(zone).date() if isinstance(start, datetime) else start
            first = max(first, days.first)  # an event begun before the range counts in it
            key = (first.year, first.month)
            counts[key] = counts.get(key, 0) + 1
    month_counts = [
        (format_date(date(year, month, 1), words.month, locale=words.locale), count)
        for (year, month), count in sorted(counts.items())
    ]
    return Schedule(months, shown, len(occurrences), month_counts)
