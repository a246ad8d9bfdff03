"""A calendar's series as feeds write them: one master and its overrides, not instances.

Feeds and published .ics links keep each recurring series as its master (RRULE,
RDATE, EXDATE) and its overrides (RECURRENCE-ID), as Google, Outlook and
Nextcloud publish them: a weekly meeting is one VEVENT however long it runs.
What a series' components say about time is read here from the text stored at
import (only the time properties, each value checked; nothing else of the text
is ever used: text fields come from the parsed columns, through the level
filter). Where the stored text cannot be read so simply (a TZID that is not a tz
database name, a source X-WR-TIMEZONE that moves floating times, parameters we do
not know), the components are parsed again with icalendar, as the expansion does.

A series that cannot be written as one so that every calendar app expands it to
the instances ``calshare events`` gives (several masters, an override without a
master, a zone without tz database name, a rule we do not write, a secondly or
minutely rule the expansion caps cut) is named in ``Plan.instances``: the feed
writes its instances, as before.
"""

from __future__ import annotations

import json
import logging
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from dateutil.rrule import rrulestr

from calshare.busy import Busy
from calshare.calendars import Calendar
from calshare.ics_reader import PARSE_ERRORS, read_calendar, wrap_calendar
from calshare.levels import zone_key
from calshare.occurrence import Occurrence, RDate, SeriesPart
from calshare.store import Store

log = logging.getLogger(__name__)

_COLUMNS = (
    "id, uid, recurrence_id, source_tz, busy, status, private, summary, location,"
    " description, organizer, attendees, categories, url, ical"
)
_TIME_PROPERTIES = frozenset(
    {"DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"}
)
_LINE = re.compile(r'([A-Za-z0-9-]+)((?:;[A-Za-z0-9-]+=(?:"[^"]*"|[^";:,]*))*):(.*)')
_PARAM = re.compile(r';([A-Za-z0-9-]+)=("[^"]*"|[^";:,]*)')
_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DATE_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)")
_DURATION = re.compile(r"([+-]?)P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")
# The rule parts written, each value checked: nothing else of a RRULE (X- parts, RSCALE)
# reaches a feed.
_RULE_PARTS = {
    "FREQ": re.compile(r"YEARLY|MONTHLY|WEEKLY|DAILY|HOURLY"),
    "INTERVAL": re.compile(r"\d{1,6}"),
    "COUNT": re.compile(r"\d{1,9}"),
    "BYSECOND": re.compile(r"\d{1,2}(,\d{1,2})*"),
    "BYMINUTE": re.compile(r"\d{1,2}(,\d{1,2})*"),
    "BYHOUR": re.compile(r"\d{1,2}(,\d{1,2})*"),
    "BYDAY": re.compile(
        r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)(,([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU))*"
    ),
    "BYMONTHDAY": re.compile(r"[+-]?\d{1,2}(,[+-]?\d{1,2})*"),
    "BYYEARDAY": re.compile(r"[+-]?\d{1,3}(,[+-]?\d{1,3})*"),
    "BYWEEKNO": re.compile(r"[+-]?\d{1,2}(,[+-]?\d{1,2})*"),
    "BYMONTH": re.compile(r"\d{1,2}(,\d{1,2})*"),
    "BYSETPOS": re.compile(r"[+-]?\d{1,3}(,[+-]?\d{1,3})*"),
    "WKST": re.compile(r"MO|TU|WE|TH|FR|SA|SU"),
}
_RULE_ORDER = tuple(_RULE_PARTS)


class _Unwritable(Exception):
    """This series is written as instances; ``why`` says why (for the log)."""


@dataclass
class Plan:
    """A calendar's series for a feed: those written as series, and those as instances."""

    series: list[list[SeriesPart]] = field(default_factory=list)  # master first
    instances: set[str] = field(default_factory=set)  # UIDs whose instances are written


@dataclass
class _Times:
    start: date | datetime
    end: date | datetime | None = None
    duration: timedelta | None = None
    rrules: list[str] = field(default_factory=list)
    rdates: list[RDate] = field(default_factory=list)
    exdates: list[date | datetime] = field(default_factory=list)
    recurrence_id: date | datetime | None = None


def plan_series(store: Store, calendar: Calendar, live: set[str], later_than: int) -> Plan:
    """Every series of ``calendar`` a feed holds, whole, as parts ready for the level filter.

    ``live`` are the UIDs of series the index holds an instance of in the feed's
    window; a series not among them is held only if it may have instances after
    ``later_than`` (UTC seconds, the end of what the index holds).
    """
    rows = store.db.execute(
        f"SELECT {_COLUMNS} FROM events WHERE calendar_id = ? AND recurs = 1 ORDER BY id",
        [calendar.id],
    ).fetchall()
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        groups.setdefault(row[1], []).append(row)
    plan = Plan()
    zone = calendar.zoneinfo
    for uid, group in groups.items():
        try:
            parts = _parts(calendar, group, zone)
            if uid not in live and not _may_recur_after(parts, later_than):
                continue
        except _Unwritable as exc:
            log.debug("calendar %s: a series is written as instances: %s", calendar.name, exc)
            plan.instances.add(uid)
            continue
        plan.series.append(parts)
    return plan


def _parts(calendar: Calendar, group: list[tuple[Any, ...]], zone: ZoneInfo) -> list[SeriesPart]:
    masters = [row for row in group if row[2] is None]
    overrides = [row for row in group if row[2] is not None]
    if len(masters) != 1:
        raise _Unwritable("not exactly one master")
    if len({row[2] for row in overrides}) != len(overrides):
        raise _Unwritable("two overrides of one instance")
    ordered = masters + overrides
    try:
        times = [_fast_times(row, zone) for row in ordered]
    except _Slow:
        times = _parsed_times(calendar, ordered, zone)
    master_times = times[0]
    if any(rule.startswith(("FREQ=SECONDLY", "FREQ=MINUTELY")) for rule in master_times.rrules):
        raise _Unwritable("a secondly or minutely rule")
    all_day = not isinstance(master_times.start, datetime)
    for item in times:
        values = [
            item.start,
            *item.exdates,
            *(v[0] if isinstance(v, tuple) else v for v in item.rdates),
        ]
        if item.end is not None:
            values.append(item.end)
        if item.recurrence_id is not None:
            values.append(item.recurrence_id)
        if any(isinstance(value, datetime) == all_day for value in values):
            raise _Unwritable("dates and date-times mixed")
    return [_part(row, item) for row, item in zip(ordered, times, strict=True)]


def _part(row: tuple[Any, ...], times: _Times) -> SeriesPart:
    (_, uid, rid, _, busy, status, private, summary, location, description, organizer,
     attendees, categories, url, _) = row  # fmt: skip
    start = times.start
    all_day = not isinstance(start, datetime)
    end = times.end
    if end is None:
        end = start + times.duration if times.duration is not None else start
        if all_day and times.duration is None:
            end = start + timedelta(days=1)
    fields = Occurrence(
        uid=uid,
        start=start,
        end=end,
        all_day=all_day,
        busy=Busy(busy),
        recurrence_id=rid,
        private=bool(private),
        status=status,
        summary=summary,
        location=location,
        description=description,
        organizer=organizer,
        attendees=() if attendees == "[]" else tuple(json.loads(attendees)),
        categories=() if categories == "[]" else tuple(json.loads(categories)),
        url=url,
    )
    return SeriesPart(
        fields=fields,
        rrules=tuple(times.rrules),
        rdates=tuple(times.rdates),
        exdates=tuple(times.exdates),
        recurrence_id=times.recurrence_id,
        duration=times.duration if times.end is None else None,
    )


class _Slow(Exception):
    """The stored text needs icalendar's reading (and the source's X-WR-TIMEZONE)."""


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _fast_times(row: tuple[Any, ...], zone: ZoneInfo) -> _Times:
    """The time properties of a stored VEVENT, read from its text; _Slow where unsure."""
    source_tz = row[3]
    found: dict[str, list[tuple[dict[str, str], str]]] = {}
    depth = 0
    for line in re.sub(r"\r?\n[ \t]", "", row[-1]).splitlines():
        upper = line[:6].upper()
        if upper.startswith("BEGIN:"):
            depth += 1
            continue
        if upper.startswith("END:"):
            depth -= 1
            continue
        if depth != 1:
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            continue  # icalendar skipped it too, or it is no time property
        name = match[1].upper()
        if name not in _TIME_PROPERTIES:
            continue
        params = {key.upper(): value.strip('"') for key, value in _PARAM.findall(match[2])}
        if set(params) - {"TZID", "VALUE"}:
            raise _Slow
        found.setdefault(name, []).append((params, match[3].strip()))
    for name in ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID"):
        if len(found.get(name, ())) > 1:
            raise _Slow
    if "DTSTART" not in found or ("DTEND" in found and "DURATION" in found):
        raise _Slow

    def values(params: dict[str, str], text: str) -> list[Any]:
        kind = params.get("VALUE", "").upper()
        tz: tzinfo | None = None
        if "TZID" in params:
            if params["TZID"] not in _zone_names():
                raise _Slow
            tz = ZoneInfo(params["TZID"])
        result: list[Any] = []
        for item in text.split(","):
            if kind == "PERIOD":
                first, _, second = item.partition("/")
                begin = _moment(first, tz, source_tz, zone)
                if not isinstance(begin, datetime):
                    raise _Slow
                result.append((begin, _end_of_period(second, begin, tz, source_tz, zone)))
            elif kind in ("", "DATE", "DATE-TIME"):
                value = _moment(item, tz, source_tz, zone)
                if (kind == "DATE") == isinstance(value, datetime):
                    raise _Slow
                result.append(value)
            else:
                raise _Slow
        return result

    (start,) = values(*found["DTSTART"][0])
    times = _Times(start=start)
    if "DTEND" in found:
        (times.end,) = values(*found["DTEND"][0])
    if "DURATION" in found:
        times.duration = _duration(found["DURATION"][0][1])
    if "RECURRENCE-ID" in found:
        (times.recurrence_id,) = values(*found["RECURRENCE-ID"][0])
    for params, text in found.get("RDATE", ()):
        times.rdates += values(params, text)
    for params, text in found.get("EXDATE", ()):
        times.exdates += values(params, text)
    times.rrules = [_rule(text, start) for _, text in found.get("RRULE", ())]
    return times


def _moment(text: str, tz: tzinfo | None, source_tz: str | None, zone: ZoneInfo) -> date | datetime:
    text = text.strip()
    match = _DATE_TIME.fullmatch(text)
    if match is not None:
        y, mo, d, h, mi, se = (int(group) for group in match.groups()[:6])
        if match[7]:
            if source_tz:
                raise _Slow  # X-WR-TIMEZONE moves UTC times into its zone
            return datetime(y, mo, d, h, mi, se, tzinfo=UTC)
        if tz is None:
            if source_tz:
                raise _Slow
            return datetime(
                y, mo, d, h, mi, se, tzinfo=zone
            )  # floating: the calendar's zone, as indexed
        return datetime(y, mo, d, h, mi, se, tzinfo=tz)
    match = _DATE.fullmatch(text)
    if match is not None:
        return date(*(int(group) for group in match.groups()))
    raise _Slow


def _end_of_period(
    text: str, begin: datetime, tz: tzinfo | None, source_tz: str | None, zone: ZoneInfo
) -> datetime:
    if text.startswith(("P", "+P", "-P")):
        return begin + _duration(text)
    end = _moment(text, tz, source_tz, zone)
    if not isinstance(end, datetime):
        raise _Slow
    return end


def _duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if match is None or text.strip() in ("P", "PT"):
        raise _Slow
    sign, weeks, days, hours, minutes, seconds = match.groups()
    value = timedelta(
        weeks=int(weeks or 0),
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
    )
    return -value if sign == "-" else value


def _rule(text: str, start: date | datetime) -> str:
    """A RRULE as written to feeds: known parts only, in order, UNTIL in DTSTART's kind.

    UNTIL is read as recurring-ical-events reads it: with a DATE start, its date;
    with a start in a zone, a floating or DATE UNTIL is a time in that zone, given in UTC.
    """
    parts: dict[str, str] = {}
    for item in text.strip().upper().split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        if key in parts:
            raise _Unwritable(f"RRULE part {key} given twice")
        parts[key] = value
    until = parts.pop("UNTIL", None)
    if set(parts) - set(_RULE_PARTS) or "FREQ" not in parts:
        if parts.get("FREQ") in ("SECONDLY", "MINUTELY"):
            raise _Unwritable("a secondly or minutely rule")
        raise _Unwritable("RRULE parts that are not written")
    for key, value in parts.items():
        if not _RULE_PARTS[key].fullmatch(value):
            if key == "FREQ" and value in ("SECONDLY", "MINUTELY"):
                raise _Unwritable("a secondly or minutely rule")
            raise _Unwritable(f"RRULE {key}={value!r}")
    if until is not None and "COUNT" in parts:
        raise _Unwritable("RRULE with UNTIL and COUNT")
    written = [f"{key}={parts[key]}" for key in _RULE_ORDER if key in parts]
    if until is not None:
        written.append(f"UNTIL={_until(until, start)}")
    return ";".join(written)


def _until(text: str, start: date | datetime) -> str:
    match = _DATE_TIME.fullmatch(text)
    day = _DATE.fullmatch(text)
    if not isinstance(start, datetime):
        if match is None and day is None:
            raise _Unwritable(f"UNTIL {text!r}")
        return text[:8]
    if match is not None:
        y, mo, d, h, mi, se = (int(group) for group in match.groups()[:6])
        value = datetime(y, mo, d, h, mi, se)
        if match[7]:
            return text
    elif day is not None:
        value = datetime(int(day[1]), int(day[2]), int(day[3]))
    else:
        raise _Unwritable(f"UNTIL {text!r}")
    if start.tzinfo is None:
        raise _Unwritable("a floating start")
    local = value.replace(tzinfo=start.tzinfo)
    return local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _parsed_times(calendar: Calendar, rows: list[tuple[Any, ...]], zone: ZoneInfo) -> list[_Times]:
    """The time properties as icalendar reads them, with the source's zones and X-WR-TIMEZONE."""
    text = wrap_calendar(
        calendar.vtimezones + "".join(row[-1] for row in rows), x_wr_timezone=rows[0][3]
    )
    parsed = read_calendar(text.encode("utf-8", "surrogatepass"), f"calendar {calendar.name}")
    if len(parsed.events) != len(rows):
        raise _Unwritable("stored events no longer parse")
    result = []
    for event in parsed.events:
        try:
            result.append(_component_times(event.component, zone))
        except PARSE_ERRORS as exc:
            raise _Unwritable(f"cannot read its times ({exc})") from None
    return result


def _component_times(component: icalendar.Event, zone: ZoneInfo) -> _Times:
    def one(value: Any) -> Any:
        if isinstance(value, tuple):
            begin = one(value[0])
            other = value[1]
            return (begin, begin + other if isinstance(other, timedelta) else one(other))
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value.replace(tzinfo=zone)
            name = getattr(value.tzinfo, "zone", None) or getattr(value.tzinfo, "key", None)
            if value.tzinfo is UTC or name in ("UTC", "Etc/UTC"):
                return value.replace(tzinfo=UTC)
            if not isinstance(name, str) or name not in _zone_names():
                raise _Unwritable(f"a zone without tz database name ({value.tzinfo!r})")
            return value.replace(tzinfo=ZoneInfo(name))
        if isinstance(value, date):
            return value
        raise _Unwritable(f"a time of unknown kind {value!r}")

    props: dict[str, Any] = {name: component.get(name) for name in _TIME_PROPERTIES}

    def listed(name: str) -> list[Any]:
        found = props[name]
        if found is None:
            return []
        items = found if isinstance(found, list) else [found]
        return [one(item.dt) for group in items for item in group.dts]

    start = one(props["DTSTART"].dt)
    times = _Times(start=start)
    if props["DTEND"] is not None:
        times.end = one(props["DTEND"].dt)
    elif props["DURATION"] is not None:
        times.duration = props["DURATION"].dt
    if props["RECURRENCE-ID"] is not None:
        times.recurrence_id = one(props["RECURRENCE-ID"].dt)
    times.rdates = listed("RDATE")
    times.exdates = listed("EXDATE")
    rules = props["RRULE"]
    for rule in rules if isinstance(rules, list) else ([rules] if rules is not None else []):
        times.rrules.append(_rule(rule.to_ical().decode("ascii", "replace"), start))
    return times


def _may_recur_after(parts: Sequence[SeriesPart], moment: int) -> bool:
    """Whether the series may have an instance starting at or after ``moment`` (UTC s)."""
    master = parts[0]
    limit = datetime.fromtimestamp(moment, UTC)
    for part in parts:
        values = [part.fields.start, *(v[0] if isinstance(v, tuple) else v for v in part.rdates)]
        if any(_instant(value) >= limit for value in values):
            return True
    for rule in master.rrules:
        if "UNTIL=" not in rule and "COUNT=" not in rule:
            return True
        start = master.fields.start
        dtstart = start if isinstance(start, datetime) else datetime.combine(start, time())
        if not isinstance(start, datetime):
            rule = re.sub(r"UNTIL=(\d{8})", r"UNTIL=\g<1>T235959", rule)
        try:
            found = rrulestr(rule, dtstart=dtstart)
            last = None
            for number, last in enumerate(found):
                if number > 100_000 or _instant(last) >= limit:
                    return True
        except (ValueError, TypeError, OverflowError):
            return True
    return False


def _instant(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return datetime.combine(value, time(), UTC) + timedelta(days=1)


__all__ = ["Plan", "plan_series", "zone_key"]
