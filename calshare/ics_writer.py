"""Write filtered occurrences as one RFC 5545 calendar: snapshots, feeds, published links.

Every output calendar is made here from occurrences that have already passed
``levels.filter_occurrence``: the writer only renders what is set, so a field a
level hid cannot reach the file. Series arrive expanded to the window, so no
occurrence outside it can leak through an RRULE, and each instance gets a UID
of its own (calendar apps merge VEVENTs that share a UID and lack a
RECURRENCE-ID).

The text is built by hand rather than through icalendar's ``to_ical``: a month
of a busy calendar is thousands of VEVENTs, and string building is an order of
magnitude faster. Tests re-parse every file with icalendar and vobject.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from calshare import wording
from calshare.busy import MICROSOFT_NAMES, Busy
from calshare.levels import zone_key
from calshare.occurrence import Occurrence, SeriesPart
from calshare.vtimezone import local_text, zone_data
from calshare.vtimezone import vtimezone as vtimezone_text

PRODID = "-//calshare//calshare 0.1//EN"

_STATUSES = frozenset({"TENTATIVE", "CONFIRMED", "CANCELLED"})


_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@lru_cache(maxsize=8192)
def escape_text(value: str) -> str:
    """RFC 5545 TEXT: backslash, semicolon, comma and newlines escaped; other controls dropped.

    Cached: a series repeats its title and description in every instance.
    """
    value = _CONTROLS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """One content line, folded at 75 octets without splitting a UTF-8 character."""
    encoded = line.encode("utf-8")
    if len(encoded) <= 75:
        return line + "\r\n"
    parts: list[str] = []
    start, limit = 0, 75
    while start < len(encoded):
        end = min(start + limit, len(encoded))
        while end < len(encoded) and (encoded[end] & 0xC0) == 0x80:
            end -= 1  # never cut inside a multi-byte character
        parts.append(encoded[start:end].decode("utf-8"))
        start, limit = end, 74  # continuation lines start with a space
    return "\r\n ".join(parts) + "\r\n"


def _date(day: date) -> str:
    # not strftime("%Y"): it does not pad years before 1000 to four digits; and
    # %-formatting is measured faster here than an f-string (thousands per feed)
    return "%04d%02d%02d" % (day.year, day.month, day.day)  # noqa: UP031


@lru_cache(maxsize=256)
def _fall_back_days(zone: ZoneInfo, year: int) -> frozenset[date]:
    """Local days of ``year`` on which clocks go back, so some wall times happen twice.

    Only instants on these days need the (costlier) check in _local.
    """
    days: set[date] = set()
    day = date(year, 1, 1)
    before = datetime.combine(day, time(12), zone).utcoffset()
    while day.year == year:
        after = datetime.combine(day + timedelta(days=1), time(12), zone).utcoffset()
        if before is not None and after is not None and after < before:
            days.update((day, day + timedelta(days=1)))
        before, day = after, day + timedelta(days=1)
    return frozenset(days)


def _utc(moment: datetime) -> str:
    return local_text(moment.astimezone(UTC)) + "Z"


def _local(moment: datetime, zone: tzinfo) -> str | None:
    """Wall-clock time in ``zone``, or None where that time happens twice (autumn DST).

    RFC 5545 reads a repeated local time as its first occurrence, so an instant in
    the second pass is written in UTC instead.
    """
    local = moment.astimezone(zone)
    if not isinstance(zone, ZoneInfo) or local.date() in _fall_back_days(zone, local.year):
        other = local.replace(fold=1 - local.fold)
        if other.utcoffset() != local.utcoffset():
            return None
    return local_text(local)


def instance_uid(occurrence: Occurrence) -> str:
    """A UID per instance, stable between sends, that says no more than the level allows.

    A series instance is its UID plus its RECURRENCE-ID. Where the level hid the
    UID, the stand-in is one per instance already (levels.opaque_uid).
    """
    if occurrence.recurrence_id:
        return f"{occurrence.uid}-{occurrence.recurrence_id}"
    return occurrence.uid


def _times(occurrence: Occurrence, zone: tzinfo | None, tzid: str | None) -> list[str]:
    """DTSTART and DTEND; DTEND is always after DTSTART (RFC 5545), or left out."""
    start, end = occurrence.start, occurrence.end
    if occurrence.all_day:
        assert not isinstance(start, datetime) and not isinstance(end, datetime)
        end = max(end, start + timedelta(days=1))  # a zero-length all-day event is one day
        return [f"DTSTART;VALUE=DATE:{_date(start)}", f"DTEND;VALUE=DATE:{_date(end)}"]
    assert isinstance(start, datetime) and isinstance(end, datetime)
    lines = [_instant("DTSTART", start, zone, tzid)]
    if end.timestamp() > start.timestamp():  # an instant has no DTEND: it ends as it starts
        lines.append(_instant("DTEND", end, zone, tzid))
    return lines


def _instant(name: str, moment: datetime, zone: tzinfo | None, tzid: str | None) -> str:
    local = _local(moment, zone) if zone is not None and tzid is not None else None
    return f"{name};TZID={tzid}:{local}" if local is not None else f"{name}:{_utc(moment)}"


_NAMED = re.compile(r"(.*?)\s*<([^<>\s]+)>")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S*")


def _person(name: str, value: str) -> str | None:
    """ORGANIZER/ATTENDEE from what the importer kept ("Name <address>", an address, a URI).

    A name with no address cannot be a CAL-ADDRESS, so it is left out.
    """
    match = _NAMED.fullmatch(value.strip())
    display, address = (match[1], match[2]) if match else ("", value.strip())
    if "@" in address and ":" not in address:
        address = f"mailto:{address}"
    if not _URI.fullmatch(address):
        return None
    cn = "".join(ch for ch in display if ch >= " " and ch not in '"\x7f')
    return f'{name};CN="{cn}":{address}' if cn else f"{name}:{address}"


def vevent(
    occurrence: Occurrence,
    stamp: str,
    zone: tzinfo | None = None,
    tzid: str | None = None,
    lang: str = "en",
) -> str:
    """One VEVENT, folded, with only the fields the occurrence still carries."""
    lines = ["BEGIN:VEVENT", f"UID:{escape_text(instance_uid(occurrence))}", f"DTSTAMP:{stamp}"]
    lines += _times(occurrence, zone, tzid)
    head = "".join(fold(line) for line in lines)
    return head + _described_of(occurrence, lang)


def stand_in_summary(busy: Busy, lang: str) -> str:
    """The SUMMARY of an event without one: its busy status in the viewer's words.

    Where the level hid the title (free-busy, private items) the event would be a
    blank row in khal, and RFC 5546 wants a SUMMARY in METHOD:PUBLISH; Outlook
    writes "Busy", "Tentative", "Out of office" there. Made from the busy status
    alone, which every level shows, so it cannot carry anything the filter hid.
    """
    return wording.text(f"busy.{busy}", lang)


def _described_of(occurrence: Occurrence, lang: str) -> str:
    """``_described`` of an occurrence's shown fields (the cache keys on them, not on it)."""
    return _described(
        occurrence.busy,
        occurrence.status,
        occurrence.summary,
        occurrence.location,
        occurrence.description,
        occurrence.organizer,
        occurrence.attendees,
        occurrence.categories,
        occurrence.url,
        lang,
    )


@lru_cache(maxsize=4096)
def _described(
    busy: Busy,
    status: str | None,
    summary: str | None,
    location: str | None,
    description: str | None,
    organizer: str | None,
    attendees: tuple[str, ...],
    categories: tuple[str, ...],
    url: str | None,
    lang: str,
) -> str:
    """Everything of a VEVENT after its times, folded: the same for every instance of a series."""
    lines = []
    status = (status or "").upper()
    if status not in _STATUSES:
        status = "TENTATIVE" if busy is Busy.TENTATIVE else ""
    if status:
        lines.append(f"STATUS:{status}")
    lines.append("TRANSP:TRANSPARENT" if busy is Busy.FREE else "TRANSP:OPAQUE")
    lines.append(f"X-MICROSOFT-CDO-BUSYSTATUS:{MICROSOFT_NAMES[busy]}")
    lines.append(f"SUMMARY:{escape_text(summary or stand_in_summary(busy, lang))}")
    if location:
        lines.append(f"LOCATION:{escape_text(location)}")
    if description:
        lines.append(f"DESCRIPTION:{escape_text(description)}")
    people = [("ORGANIZER", organizer)] if organizer else []
    people += [("ATTENDEE", attendee) for attendee in attendees]
    for role, value in people:
        line = _person(role, value)
        if line is not None:
            lines.append(line)
    if categories:
        lines.append("CATEGORIES:" + ",".join(escape_text(name) for name in categories))
    if url:
        lines.append(f"URL:{url.replace(chr(10), '').replace(chr(13), '')}")
    lines.append("END:VEVENT")
    return "".join(fold(line) for line in lines)


@lru_cache(maxsize=64)
def vtimezone(zone: str, first_year: int, last_year: int) -> str:
    """The zone's VTIMEZONE covering the years used, from the tz database.

    Written as clients read it (RRULEs for the zone's rule, a sub-component per
    earlier change; see calshare.vtimezone), cached: a feed asks for it per render.
    """
    return vtimezone_text(zone, first_year, last_year)


def _years(occurrences: Sequence[Occurrence], fallback: date) -> tuple[int, int]:
    """The years the VTIMEZONE must cover: those of timed events, a year's margin around."""
    timed = [o for o in occurrences if not o.all_day]
    first = min((o.start.year for o in timed), default=fallback.year)
    last = max((o.end.year for o in timed), default=fallback.year)
    return max(1, min(first, fallback.year) - 1), min(9998, max(last, fallback.year) + 1)


def write_calendar(
    occurrences: Sequence[Occurrence],
    *,
    name: str,
    zone: str,
    now: datetime,
    method: str | None = "PUBLISH",
    description: str | None = None,
    refresh: timedelta | None = None,
    lang: str = "en",
) -> bytes:
    """A complete VCALENDAR: VERSION, PRODID, X-WR-CALNAME/TIMEZONE, one VTIMEZONE.

    Timed events are written in the calendar's ``zone`` with its VTIMEZONE (UTC
    needs none), which is how Outlook, Google and Apple lay them out; all-day
    events stay dates. ``refresh`` adds REFRESH-INTERVAL and X-PUBLISHED-TTL for
    subscriptions. ``name`` is what calendar apps show for the calendar (X-WR-CALNAME
    and RFC 7986 NAME); ``lang`` the language of stand-in summaries.
    """
    use_utc = zone in ("UTC", "Etc/UTC")
    zone_info = None if use_utc else ZoneInfo(zone)
    tzid = None if use_utc else zone
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    if method:
        head.append(f"METHOD:{method}")
    head += [f"NAME:{escape_text(name)}", f"X-WR-CALNAME:{escape_text(name)}"]
    head.append(f"X-WR-TIMEZONE:{zone}")
    if description:
        head.append(f"X-WR-CALDESC:{escape_text(description)}")
    if refresh is not None:
        minutes = max(1, int(refresh.total_seconds() // 60))
        head += [f"REFRESH-INTERVAL;VALUE=DURATION:PT{minutes}M", f"X-PUBLISHED-TTL:PT{minutes}M"]
    parts = [fold(line) for line in head]
    timed = any(not occurrence.all_day for occurrence in occurrences)
    if tzid is not None and timed:
        first, last = _years(occurrences, now.date())
        parts.append(vtimezone(zone, first, last))
    stamp = _utc(now)
    parts.extend(vevent(occurrence, stamp, zone_info, tzid, lang) for occurrence in occurrences)
    parts.append("END:VCALENDAR\r\n")
    return "".join(parts).encode("utf-8")


# --- series: a master with its rule, and its overrides


def _value_text(name: str, value: date | datetime, extra: str = "") -> str:
    """A property holding one DATE or DATE-TIME, in the value's own zone (TZID) or UTC."""
    if not isinstance(value, datetime):
        return f"{name};VALUE=DATE{extra}:{_date(value)}"
    key = zone_key(value)
    if key == "UTC":
        return f"{name}{extra}:{_utc(value)}"
    return f"{name}{extra};TZID={key}:{local_text(value)}"


def _period_text(value: tuple[datetime, datetime]) -> str:
    begin, end = value
    key = zone_key(begin)
    if key == "UTC":
        return f"RDATE;VALUE=PERIOD:{_utc(begin)}/{_utc(end)}"
    end = end.astimezone(begin.tzinfo)
    return f"RDATE;VALUE=PERIOD;TZID={key}:{local_text(begin)}/{local_text(end)}"


def _duration_text(value: timedelta) -> str:
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    days, seconds = value.days, value.seconds
    clock = ""
    if seconds:
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        clock = "T" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
        clock += f"{secs}S" if secs else ""
    return f"{sign}P{days}D{clock}" if days or not clock else f"{sign}P{clock}"


def _same_kind(value: date | datetime, like: date | datetime) -> date | datetime:
    """A RECURRENCE-ID in its master's form (its zone), as clients bind it."""
    if isinstance(value, datetime) and isinstance(like, datetime):
        return value.astimezone(UTC) if zone_key(like) == "UTC" else value.astimezone(like.tzinfo)
    return value


def series_vevent(part: SeriesPart, master_start: date | datetime, stamp: str, lang: str) -> str:
    """One VEVENT of a series (a master or an override), folded: filtered fields only.

    Times are written in their own zone (TZID) or UTC; the level filter has already
    moved them to the calendar's zone where the level hides the event's place.
    RDATE and EXDATE get a line per value (ical.js and vobject read only the first
    value of a list in places).
    """
    occurrence = part.fields
    lines = ["BEGIN:VEVENT", f"UID:{escape_text(occurrence.uid)}", f"DTSTAMP:{stamp}"]
    if part.recurrence_id is not None:
        lines.append(_value_text("RECURRENCE-ID", _same_kind(part.recurrence_id, master_start)))
    start, end = occurrence.start, occurrence.end
    lines.append(_value_text("DTSTART", start))
    if part.duration is not None:
        if part.duration > timedelta(0):
            lines.append(f"DURATION:{_duration_text(part.duration)}")
    elif not isinstance(start, datetime):
        assert not isinstance(end, datetime)
        lines.append(_value_text("DTEND", max(end, start + timedelta(days=1))))
    else:
        assert isinstance(end, datetime)
        if end.timestamp() > start.timestamp():
            if zone_key(end) != zone_key(start):
                end = end.astimezone(start.tzinfo)
            lines.append(_value_text("DTEND", end))
    lines += [f"RRULE:{rule}" for rule in part.rrules]
    for value in part.rdates:
        lines.append(
            _period_text(value) if isinstance(value, tuple) else _value_text("RDATE", value)
        )
    lines += [_value_text("EXDATE", value) for value in part.exdates]
    head = "".join(fold(line) for line in lines)
    return head + _described_of(occurrence, lang)


def _part_values(part: SeriesPart) -> list[date | datetime]:
    found: list[date | datetime] = [part.fields.start, part.fields.end, *part.exdates]
    if part.recurrence_id is not None:
        found.append(part.recurrence_id)
    for value in part.rdates:
        found.extend(value if isinstance(value, tuple) else (value,))
    return found


_UNTIL_YEAR = re.compile(r"UNTIL=(\d{4})")


def _zone_years(
    singles: Sequence[Occurrence], series: Sequence[Sequence[SeriesPart]], zone: str, today: date
) -> dict[str, tuple[int, int]]:
    """Per zone used, the years its VTIMEZONE must cover.

    A series counts from its first value to its last one (UNTIL, RDATE, overrides);
    one that never ends up to the zone's last listed change, after which the
    VTIMEZONE's yearly RRULE goes on for ever.
    """
    years: dict[str, list[int]] = {}
    if any(not occurrence.all_day for occurrence in singles):
        first, last = _years(singles, today)
        years[zone] = [first, last]
    for parts in series:
        unbounded = any("UNTIL=" not in rule and "COUNT=" not in rule for rule in parts[0].rrules)
        counted = any("COUNT=" in rule for rule in parts[0].rrules)
        until = [int(found) for rule in parts[0].rrules for found in _UNTIL_YEAR.findall(rule)]
        for part in parts:
            for value in _part_values(part):
                key = zone_key(value)
                if key is None or key == "UTC":
                    continue
                span = years.setdefault(key, [])
                span += [value.year - 1, value.year + 1, today.year - 1, today.year + 1]
                span += [year + 1 for year in until]
                if unbounded or counted:
                    span.append(max(today.year + 2, _last_listed_year(key) + 1, value.year + 2))
                    if counted:
                        span.append(value.year + 30)
    return {key: (max(1, min(span)), min(9998, max(span))) for key, span in years.items()}


@lru_cache(maxsize=512)
def _last_listed_year(key: str) -> int:
    data = zone_data(key)
    return datetime.fromtimestamp(data.transitions[-1].at, UTC).year if data.transitions else 1970


def write_feed(
    singles: Sequence[Occurrence],
    series: Sequence[Sequence[SeriesPart]],
    *,
    name: str,
    zone: str,
    now: datetime,
    refresh: timedelta | None = None,
    lang: str = "en",
) -> bytes:
    """A feed: single events (and instances) as ``write_calendar`` writes them, series as series.

    Every zone a series is written in gets its VTIMEZONE, from the tz database,
    valid over the whole series (see ``_zone_years``).
    """
    use_utc = zone in ("UTC", "Etc/UTC")
    zone_info = None if use_utc else ZoneInfo(zone)
    tzid = None if use_utc else zone
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    head.append("METHOD:PUBLISH")
    head += [f"NAME:{escape_text(name)}", f"X-WR-CALNAME:{escape_text(name)}"]
    head.append(f"X-WR-TIMEZONE:{zone}")
    if refresh is not None:
        minutes = max(1, int(refresh.total_seconds() // 60))
        head += [f"REFRESH-INTERVAL;VALUE=DURATION:PT{minutes}M", f"X-PUBLISHED-TTL:PT{minutes}M"]
    parts = [fold(line) for line in head]
    spans = _zone_years(singles if tzid is not None else (), series, zone, now.date())
    for key, (first, last) in sorted(spans.items()):
        parts.append(vtimezone(key, first, last))
    stamp = _utc(now)
    parts.extend(vevent(occurrence, stamp, zone_info, tzid, lang) for occurrence in singles)
    for components in series:
        master_start = components[0].fields.start
        parts.extend(series_vevent(part, master_start, stamp, lang) for part in components)
    parts.append("END:VCALENDAR\r\n")
    return "".join(parts).encode("utf-8")
