"""VTIMEZONE components from the tz database, written the way calendar clients read them.

Clients differ in how much of RFC 5545 they implement: ical.js and vobject read only
the first value of a multi-valued ``RDATE``, so a zone written as one
``RDATE:a,b,c`` line is wrong for every change after the first. Major producers
(Outlook, Google, libical's vzic, tzurl.org) write instead what every client reads:

* the zone's current rule (the POSIX TZ string at the end of its TZif file, RFC 8536)
  as one ``STANDARD`` and one ``DAYLIGHT`` sub-component with a yearly ``RRULE``,
  from the first year it applies;
* every earlier, irregular change as a sub-component of its own (DTSTART only).

``DTSTART`` is the local time *before* the change, in ``TZOFFSETFROM``: the spring
onset of Europe/Oslo is 02:00 +01:00, not 03:00 (RFC 5545, section 3.6.5).

Everything is read from the TZif file ``zoneinfo.ZoneInfo`` reads (its TZPATH, then
the tzdata package), so the offsets a VTIMEZONE implies are zoneinfo's own. The
functions are pure, apart from reading that file once per zone.
"""

from __future__ import annotations

import re
import struct
import zoneinfo
from dataclasses import dataclass
from datetime import UTC as UTC_ZONE
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path

from calshare.errors import CalshareError

_EPOCH = datetime(1970, 1, 1)
_DAY = 86400
_WEEKDAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")  # POSIX numbering: 0 is Sunday
# The onset before the first change a zone ever had: clients need one sub-component
# in force before any event; 1601 is where Outlook and Windows start.
_BEGINNING = datetime(1601, 1, 1)


class ZoneDataError(CalshareError, ValueError):
    """The tz database file of a zone is missing or cannot be read."""


@dataclass(frozen=True)
class Transition:
    """A change of UTC offset (or of daylight saving time) at a UTC instant."""

    at: int  # seconds since the epoch, UTC
    before: int  # UTC offset in seconds before the change
    after: int  # and after it
    dst: bool  # daylight saving time after the change
    name: str  # the abbreviation after the change (CEST, +03)


@dataclass(frozen=True)
class Onset:
    """One side of a POSIX TZ rule: ``Mm.w.d/time`` (or ``Jn``, ``n``) in local time."""

    kind: str  # "M", "J" (1..365, no leap day) or "n" (0..365, leap day counted)
    month: int
    week: int  # 1..5, 5 is the last
    weekday: int  # 0 is Sunday
    day: int  # for J and n
    time: int  # seconds after local midnight, in the offset before the change; may be <0 or >24h

    def day_of(self, year: int) -> datetime:
        """Local midnight of the day the onset refers to in ``year`` (before ``time``)."""
        if self.kind == "J":
            first = datetime(year, 1, 1) + timedelta(days=self.day - 1)
            leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
            return first + timedelta(days=1) if leap and first.month > 2 else first
        if self.kind == "n":
            return datetime(year, 1, 1) + timedelta(days=self.day)
        first = datetime(year, self.month, 1)
        offset = (self.weekday - (first.isoweekday() % 7)) % 7
        day = first + timedelta(days=offset + 7 * (self.week - 1))
        while day.month != self.month:
            day -= timedelta(days=7)  # week 5: the last such weekday of the month
        return day


@dataclass(frozen=True)
class Rule:
    """A POSIX TZ string: the zone's rule after its last listed change."""

    std_name: str
    std_offset: int  # seconds east of UTC
    dst_name: str | None = None
    dst_offset: int = 0
    start: Onset | None = None  # daylight saving time begins
    end: Onset | None = None  # and ends

    def transitions(self, year: int) -> list[Transition]:
        """The rule's changes in ``year``, in order (none for a zone without DST)."""
        if self.start is None or self.end is None or self.dst_name is None:
            return []
        begin = self.start.day_of(year) + timedelta(seconds=self.start.time - self.std_offset)
        finish = self.end.day_of(year) + timedelta(seconds=self.end.time - self.dst_offset)
        found = [
            Transition(_seconds(begin), self.std_offset, self.dst_offset, True, self.dst_name),
            Transition(_seconds(finish), self.dst_offset, self.std_offset, False, self.std_name),
        ]
        return sorted(found, key=lambda item: item.at)


@dataclass(frozen=True)
class ZoneData:
    """What a TZif file says: the first offset, every listed change, the rule after them."""

    first: tuple[int, bool, str]  # offset, DST, name before the first change
    transitions: tuple[Transition, ...]
    rule: Rule | None


def _seconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(seconds=1)


def _wall(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


# --- reading the tz database


def _tzif_bytes(key: str) -> bytes:
    """The zone's TZif file, found where zoneinfo finds it: TZPATH first, then tzdata."""
    if not re.fullmatch(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*", key):
        raise ZoneDataError(f"{key!r} is not a time zone name of the tz database")
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / key
        if path.is_file():
            return path.read_bytes()
    package, _, name = f"tzdata.zoneinfo/{key}".rpartition("/")
    try:
        return resources.files(package.replace("/", ".")).joinpath(name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        raise ZoneDataError(
            f"no tz database file for {key!r}: install the system tzdata or the tzdata package"
        ) from None


def parse_tzif(data: bytes) -> ZoneData:
    """Read a TZif file (RFC 8536): the 64-bit block of version 2+, and its TZ string."""
    if data[:4] != b"TZif":
        raise ZoneDataError("not a TZif file")
    version = data[4:5]
    counts = struct.unpack(">6l", data[20:44])
    size = 4  # version 1: 32-bit times
    position = 44
    if version >= b"2":
        isutc, isstd, leap, times, types, chars = counts
        position += times * 5 + types * 6 + chars + leap * 8 + isstd + isutc
        counts = struct.unpack(">6l", data[position + 20 : position + 44])
        position += 44
        size = 8
    isutc, isstd, leap, times, types, chars = counts
    at = struct.unpack(
        f">{times}{'q' if size == 8 else 'l'}", data[position : position + times * size]
    )
    position += times * size
    indices = data[position : position + times]
    position += times
    kinds = []
    for number in range(types):
        offset, dst, abbr = struct.unpack(
            ">lBB", data[position + 6 * number : position + 6 * number + 6]
        )
        kinds.append((offset, dst, abbr))
    position += types * 6
    names = data[position : position + chars]
    position += chars + leap * (size + 4) + isstd + isutc

    def name(index: int) -> str:
        return names[index : names.index(b"\0", index)].decode("ascii", "replace")

    first = (kinds[0][0], bool(kinds[0][1]), name(kinds[0][2]))
    found: list[Transition] = []
    previous = first[0]
    previous_dst = first[1]
    for moment, index in zip(at, indices, strict=True):
        offset, dst, abbr = kinds[index]
        if offset != previous or bool(dst) != previous_dst:
            found.append(Transition(moment, previous, offset, bool(dst), name(abbr)))
        previous, previous_dst = offset, bool(dst)
    rule = None
    if size == 8:
        footer = data[position:].strip(b"\n").decode("ascii", "replace")
        rule = parse_posix(footer) if footer else None
    return ZoneData(first, tuple(found), rule)


_NAME = r"(<[^>]+>|[A-Za-z]{3,})"
_OFFSET = r"([+-]?\d{1,3}(?::\d{1,2}){0,2})"
_POSIX = re.compile(rf"{_NAME}{_OFFSET}(?:{_NAME}{_OFFSET}?(?:,([^,]+),([^,]+))?)?")


def _clock_seconds(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    parts = [int(part) for part in text.lstrip("+-").split(":")]
    parts += [0] * (3 - len(parts))
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


def _onset(text: str) -> Onset:
    when, _, clock = text.partition("/")
    time = _clock_seconds(clock) if clock else 7200
    if when.startswith("M"):
        month, week, weekday = (int(part) for part in when[1:].split("."))
        return Onset("M", month, week, weekday, 0, time)
    if when.startswith("J"):
        return Onset("J", 0, 0, 0, int(when[1:]), time)
    return Onset("n", 0, 0, 0, int(when), time)


def parse_posix(text: str) -> Rule:
    """A POSIX TZ string with RFC 8536's extensions (hours beyond 24, negative times)."""
    match = _POSIX.fullmatch(text)
    if match is None:
        raise ZoneDataError(f"cannot read the TZ rule {text!r}")
    std_name, std, dst_name, dst, start, end = match.groups()
    std_offset = -_clock_seconds(std)  # POSIX counts west of Greenwich
    if dst_name is None:
        return Rule(std_name.strip("<>"), std_offset)
    dst_offset = -_clock_seconds(dst) if dst else std_offset + 3600
    if start is None or end is None:  # POSIX's default rule; tzdata always writes one
        start, end = "M3.2.0", "M11.1.0"
    return Rule(
        std_name.strip("<>"),
        std_offset,
        dst_name.strip("<>"),
        dst_offset,
        _onset(start),
        _onset(end),
    )


@lru_cache(maxsize=512)
def zone_data(key: str) -> ZoneData:
    """The tz database's data for ``key`` (Europe/Oslo), read once per process."""
    try:
        return parse_tzif(_tzif_bytes(key))
    except (struct.error, IndexError, ValueError) as exc:
        if isinstance(exc, ZoneDataError):
            raise
        raise ZoneDataError(f"the tz database file of {key!r} cannot be read ({exc})") from None


# --- which changes a span of years needs


def transitions_between(data: ZoneData, low: int, high: int) -> list[Transition]:
    """Every change in (low, high], UTC seconds: listed ones, then the rule's, as zoneinfo does."""
    found = [item for item in data.transitions if low < item.at <= high]
    last = data.transitions[-1].at if data.transitions else None
    if data.rule is not None:
        first_year = _wall(max(low, last if last is not None else low)).year - 1
        for year in range(first_year, _wall(high).year + 2):
            for item in data.rule.transitions(year):
                if low < item.at <= high and (last is None or item.at > last):
                    found.append(item)
    return sorted(found, key=lambda item: item.at)


def _state_at(data: ZoneData, moment: int) -> Transition | None:
    """The last change at or before ``moment`` (None: the zone's first offset applies)."""
    earlier = [item for item in data.transitions if item.at <= moment]
    last = data.transitions[-1].at if data.transitions else None
    if data.rule is not None and (last is None or moment > last):
        year = _wall(moment).year
        for candidate in (year, year - 1):
            ruled = [
                item
                for item in data.rule.transitions(candidate)
                if item.at <= moment and (last is None or item.at > last)
            ]
            if ruled:
                return ruled[-1]
    return earlier[-1] if earlier else None


# --- writing


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{secs:02d}" if secs else "")


def local_text(moment: datetime) -> str:
    """A wall-clock time as iCalendar writes it (``YYYYMMDDTHHMMSS``), for every writer.

    Not strftime: it does not pad years before 1000 to four digits; and %-formatting
    is measured faster here than an f-string (thousands of calls per feed).
    """
    return "%04d%02d%02dT%02d%02d%02d" % (  # noqa: UP031 (years before 1000 stay 4 digits)
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
    )


def _component(item: Transition, rrule: str | None = None) -> list[str]:
    kind = "DAYLIGHT" if item.dst else "STANDARD"
    lines = [f"BEGIN:{kind}", f"DTSTART:{local_text(_wall(item.at + item.before))}"]
    if rrule:
        lines.append(f"RRULE:{rrule}")
    lines += [
        f"TZOFFSETFROM:{_offset_text(item.before)}",
        f"TZOFFSETTO:{_offset_text(item.after)}",
        f"TZNAME:{item.name}",
        f"END:{kind}",
    ]
    return lines


def yearly_rule(onset: Onset) -> str | None:
    """The RRULE for one side of a POSIX rule, or None where no simple one exists.

    A time beyond a day moves the weekday: Asia/Jerusalem's ``M3.4.4/26`` (the
    fourth Thursday, 26:00) is the Friday on one of the 23rd to 29th, 02:00.
    """
    if onset.kind != "M":
        return None
    shift = onset.time // _DAY
    head = f"FREQ=YEARLY;BYMONTH={onset.month}"
    if shift == 0:
        ordinal = -1 if onset.week == 5 else onset.week
        return f"{head};BYDAY={ordinal}{_WEEKDAYS[onset.weekday]}"
    # the month's length; February's changes with leap years, so only its first 28 days
    length = (datetime(2001 + onset.month // 12, onset.month % 12 + 1, 1) - timedelta(days=1)).day
    if onset.week == 5:
        if onset.month == 2:
            return None  # the last days of February move with leap years
        first, last = length - 6 + shift, length + shift
    else:
        first, last = 7 * (onset.week - 1) + 1 + shift, 7 * onset.week + shift
    if first < 1 or last > length:
        return None  # the changes cross into another month in some years
    days = ",".join(str(day) for day in range(first, last + 1))
    weekday = _WEEKDAYS[(onset.weekday + shift) % 7]
    return f"{head};BYDAY={weekday};BYMONTHDAY={days}"


def _ruled(rule: Rule | None, item: Transition) -> bool:
    if rule is None:
        return False
    year = _wall(item.at).year
    return any(item in rule.transitions(candidate) for candidate in (year - 1, year, year + 1))


def _complete(rule: Rule, changes: list[Transition], high: int) -> bool:
    """Whether ``changes`` are exactly the rule's changes from the first of them to ``high``."""
    first = changes[0].at
    years = range(_wall(first).year - 1, _wall(high).year + 2)
    ruled = [item for year in years for item in rule.transitions(year) if first <= item.at <= high]
    return ruled == changes


def vtimezone(key: str, first_year: int, last_year: int) -> str:
    """The VTIMEZONE of ``key`` for any instant from ``first_year`` through ``last_year``.

    Changes before the zone's current rule each get a sub-component; the rule, from
    the first year it governs the span on, one STANDARD and one DAYLIGHT with an
    RRULE (where it cannot be an RRULE, its changes are listed one by one too). The
    change in force when the span begins comes first, so no instant of the span is
    before every onset. Lines end in CRLF; none is longer than 75 octets.
    """
    return render(zone_data(key), key, first_year, last_year)


def render(data: ZoneData, key: str, first_year: int, last_year: int) -> str:
    """The VTIMEZONE of ``data`` (see ``vtimezone``), for any zone data, under TZID ``key``."""
    low = _seconds(datetime(first_year, 1, 1)) - 2 * _DAY
    high = _seconds(datetime(last_year, 12, 31)) + 3 * _DAY
    initial = _state_at(data, low)
    changes = ([initial] if initial is not None else []) + transitions_between(data, low, high)
    rule = data.rule
    rules: tuple[str, str] | None = None
    if rule is not None and rule.start is not None and rule.end is not None:
        start_rule, end_rule = yearly_rule(rule.start), yearly_rule(rule.end)
        if start_rule is not None and end_rule is not None:
            rules = (start_rule, end_rule)
    # The rule governs from the first change from which all later ones are the rule's,
    # and none of the rule's is missing (a year without DST would be one).
    split = len(changes)
    if rule is not None and rules is not None:
        while split > 0 and _ruled(rule, changes[split - 1]):
            split -= 1
        while split < len(changes) and not _complete(rule, changes[split:], high):
            split += 1
        if len(changes) - split < 2:
            split = len(changes)  # fewer than both sides: list them
    lines = ["BEGIN:VTIMEZONE", f"TZID:{key}"]
    if initial is None:
        offset, dst, name = data.first
        lines += _component(Transition(_seconds(_BEGINNING) - offset, offset, offset, dst, name))
    for item in changes[:split]:
        lines += _component(item)
    if rules is not None and split < len(changes):
        daylight = next(item for item in changes[split:] if item.dst)
        standard = next(item for item in changes[split:] if not item.dst)
        lines += _component(daylight, rules[0])
        lines += _component(standard, rules[1])
    lines.append("END:VTIMEZONE")
    return "".join(line + "\r\n" for line in lines)


@lru_cache(maxsize=1024)
def same_clock(first: str, second: str, since: int) -> bool:
    """Whether two zones have had the same UTC offset at every instant from ``since`` on.

    Then a series kept in one can be written in the other at the same wall-clock
    times without moving an instance (Europe/Berlin and Europe/Oslo since 1980).
    Checked at every listed change of either zone after ``since`` and by their
    current rules, which govern every later year.
    """
    a, b = zone_data(first), zone_data(second)
    if _clockwork(a.rule) != _clockwork(b.rule):
        return False
    zone_a, zone_b = zoneinfo.ZoneInfo(first), zoneinfo.ZoneInfo(second)
    last = max((item.at for item in (*a.transitions, *b.transitions)), default=since)
    moments = {since} | {
        item.at + shift
        for item in (*a.transitions, *b.transitions)
        if item.at >= since
        for shift in (-1, 0)
    }
    # the rules' own changes, for the years between the last listed one and a year on
    for year in range(_wall(max(since, last)).year, _wall(max(since, last)).year + 2):
        for rule in (a.rule, b.rule):
            if rule is not None:
                moments |= {item.at + shift for item in rule.transitions(year) for shift in (-1, 0)}
    for moment in moments:
        instant = datetime.fromtimestamp(moment, UTC_ZONE)
        if instant.astimezone(zone_a).utcoffset() != instant.astimezone(zone_b).utcoffset():
            return False
    return True


def _clockwork(rule: Rule | None) -> tuple[object, ...] | None:
    """A rule without its names: what decides offsets."""
    if rule is None:
        return None
    return (rule.std_offset, rule.dst_offset if rule.dst_name else None, rule.start, rule.end)
