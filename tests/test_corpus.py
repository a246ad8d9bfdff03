"""Real calendar files: ``calshare events --json`` agrees with recurring-ical-events.

For every file of the icalendar corpus (shared/corpus/ics/icalendar) and for the
producer exports in tests/fixtures/exports, the occurrences calshare returns for a
window are compared with what recurring-ical-events computes from the file itself
(the oracle): per VCALENDAR, X-WR-TIMEZONE applied with x-wr-timezone, events grouped
by UID, each group expanded on its own, a group that raises left out (calshare skips
such events with a warning). Floating times and all-day dates are placed in the
calendar's zone, as calshare does. Occurrences are matched by (UID, start instant);
then each start's UTC offset and each end must agree too.

Two kinds of query are checked: a wide window (1990 .. 2030) whose series mostly lie
outside the index horizon set at import (calshare extends the index on demand), and
narrow 30-day windows (around now, across the horizon's edges, at the first and last
recurrences, inside the longest occurrence), each on a fresh import and then all in
turn on one store. The wide comparison keeps
only occurrences starting at least two days inside the window (recurring-ical-events
reads floating and all-day times as UTC at the window's edges); the narrow windows lie
far inside the oracle's window, so there the expected set is exact: every occurrence
that overlaps [from, to + 1 day).

Files calshare refuses must be in REFUSED, with the reason they are broken.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import pytest
import recurring_ical_events
import x_wr_timezone
from icalendar.error import GloballyUniqueTZIDGuessed

from tests.conftest import NOW, CliResult
from tests.support.corpus import (
    ACCEPTED,
    CORPUS_DIR,
    EXPORTS_DIR,
    REFUSED,
    corpus_files,
    export_files,
)

Cli = Callable[..., CliResult]

OWNER = "owner@example.org"

WIDE_FROM, WIDE_TO = date(1990, 1, 1), date(2031, 1, 1)  # --to is inclusive
ORACLE_START = datetime(1990, 1, 1, tzinfo=UTC)
ORACLE_END = datetime(2031, 1, 1, tzinfo=UTC)
EDGE = timedelta(days=2)
NARROW_DAYS = 30
# The span calshare indexes at import with the default settings (31 days back, 366
# ahead of the fixed clock's day): narrow windows straddle both of its edges.
HORIZON_START = NOW.date() - timedelta(days=31)
HORIZON_END = NOW.date() + timedelta(days=367)

# Zones a calendar is added with: None lets the source's X-WR-TIMEZONE decide (else UTC).
# Pacific/Auckland (+12/+13, southern DST) moves floating and all-day times far from UTC.
ZONES = ("UTC", "Pacific/Auckland", None)


# The refused import is tried on top of this, so "unchanged" means something.
BASELINE = EXPORTS_DIR / "thunderbird.ics"


# --- the files


def _recurs(path: Path) -> bool:
    data = path.read_bytes().upper()
    return any(word in data for word in (b"RRULE", b"RDATE", b"EXDATE", b"RECURRENCE-ID"))


RECURRING = [path for path in ACCEPTED if _recurs(path)]


def _file_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _zone_id(tz: str | None) -> str:
    return tz or "source-zone"


# --- the oracle


@dataclass(frozen=True)
class Occ:
    """An occurrence, comparable across oracle and calshare.

    ``start``/``end`` are UTC instants for timed occurrences and dates for all-day ones;
    ``offset`` is the UTC offset the start is written with (None for all-day).
    """

    uid: str | None  # None: the event has no UID (calshare names it no-uid-…)
    start: datetime | date
    offset: timedelta | None
    end: datetime | date

    def span(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """Start and end instants, all-day dates at midnight in the calendar's zone."""
        start, end = _instant(self.start, zone), _instant(self.end, zone)
        return start, max(start, end)


def _instant(value: datetime | date, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(), zone).astimezone(UTC)


def _placed(value: date | datetime, zone: ZoneInfo) -> tuple[datetime | date, timedelta | None]:
    if not isinstance(value, datetime):
        return value, None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC), value.utcoffset()


@dataclass
class Oracle:
    zone: str
    occurrences: list[Occ]
    groups: int  # UID groups of VEVENTs in the file
    failed: list[str]  # groups recurring-ical-events could not expand, and why


def _calendars(data: bytes) -> list[icalendar.Calendar]:
    """Every VCALENDAR in the file; VEVENTs and VTIMEZONEs outside one form one more."""
    components = icalendar.Calendar.from_ical(data, multiple=True)
    calendars = [c for c in components if c.name == "VCALENDAR"]
    loose = [c for c in components if c.name in ("VEVENT", "VTIMEZONE")]
    if loose:
        wrapper = icalendar.Calendar()
        for component in loose:
            wrapper.add_component(component)
        calendars.append(wrapper)
    return calendars


def _zone_for(calendars: list[icalendar.Calendar], tz: str | None) -> str:
    """--tz if given, else the first X-WR-TIMEZONE if it is a real zone, else UTC."""
    if tz is not None:
        return tz
    for calendar in calendars:
        name = str(calendar.get("X-WR-TIMEZONE", "")).strip()
        if name:
            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                return "UTC"
            return name
    return "UTC"


def _uid(component: icalendar.Event) -> str | None:
    value = component.get("UID")
    return (str(value).strip() or None) if value is not None else None


def oracle(data: bytes, tz: str | None) -> Oracle:
    with warnings.catch_warnings():
        # icalendar warns when it guesses an IANA zone from a vendor-prefixed TZID
        # (calendars__issue_313_globally_unique_tzid.ics); calshare reports it too.
        warnings.filterwarnings("ignore", category=GloballyUniqueTZIDGuessed)
        calendars = _calendars(data)
        zone_name = _zone_for(calendars, tz)
        zone = ZoneInfo(zone_name)
        result = Oracle(zone_name, [], 0, [])
        for calendar in calendars:
            standard = x_wr_timezone.to_standard(calendar)
            groups: dict[object, list[icalendar.Event]] = {}
            events = [c for c in standard.subcomponents if c.name == "VEVENT"]
            for position, event in enumerate(events):
                groups.setdefault(_uid(event) or ("no-uid", position), []).append(event)
            result.groups += len(groups)
            for key, members in groups.items():
                group = icalendar.Calendar()
                for event in members:
                    group.add_component(event)
                uid = key if isinstance(key, str) else None
                try:
                    found = list(recurring_ical_events.of(group).between(ORACLE_START, ORACLE_END))
                except Exception as exc:  # noqa: BLE001 - whatever the library raises, a bad series is left out
                    result.failed.append(f"{uid}: {type(exc).__name__}: {exc}")
                    continue
                for occurrence in found:
                    start, offset = _placed(occurrence.start, zone)
                    end, _ = _placed(occurrence.end, zone)
                    result.occurrences.append(Occ(uid, start, offset, end))
    return result


# --- calshare


def _calshare_occ(item: dict[str, Any]) -> Occ:
    uid = None if item["uid"].startswith("no-uid-") else item["uid"]
    if item["all_day"]:
        return Occ(uid, date.fromisoformat(item["start"]), None, date.fromisoformat(item["end"]))
    start, end = datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])
    assert start.tzinfo is not None, f"start {item['start']!r} has no UTC offset"
    assert end.tzinfo is not None, f"end {item['end']!r} has no UTC offset"
    return Occ(uid, start.astimezone(UTC), start.utcoffset(), end.astimezone(UTC))


def _import(cli: Cli, path: Path, tz: str | None, env: dict[str, str] | None = None) -> str:
    """Add calendar 'cal' and import PATH; returns the zone calshare chose."""
    added = cli("calendar", "add", "cal", "--owner", OWNER, *(["--tz", tz] if tz else []), env=env)
    assert added.code == 0, added.err
    imported = cli("calendar", "import", "cal", str(path), env=env)
    assert imported.code == 0, f"{path.name} was refused: {imported.err}"
    for line in imported.err.splitlines():
        assert line.startswith("calshare: warning: "), f"unexpected stderr line: {line!r}"
    listed = cli("calendar", "list", "--json", env=env)
    assert listed.code == 0, listed.err
    return str(listed.json()[0]["zone"])


def _events(
    cli: Cli, start: date, end: date, env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    result = cli(
        "events", "cal", "--from", start.isoformat(), "--to", end.isoformat(), "--json", env=env
    )
    assert result.code == 0, result.err
    assert result.err == "", result.err
    found: list[dict[str, Any]] = result.json()
    return found


# --- comparing


def _window(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants ``--from START --to END`` stands for: whole days in the zone."""
    return (
        datetime.combine(start, time(), zone).astimezone(UTC),
        datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC),
    )


def _describe(occ: Occ) -> str:
    if occ.offset is None:
        return f"{occ.uid} all-day {occ.start}..{occ.end}"
    assert isinstance(occ.start, datetime)
    local = occ.start.astimezone(UTC) + occ.offset
    return f"{occ.uid} {local:%Y-%m-%dT%H:%M}{_offset_text(occ.offset)} (until {occ.end:%F %H:%MZ})"


def _offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _differences(label: str, expected: Iterable[Occ], got: Iterable[Occ]) -> list[str]:
    """Compare by (uid, start instant); then each start's offset and each end.

    The oracle can hold one occurrence twice, where one event stands in two
    VCALENDARs of one file (with different X-WR-TIMEZONEs, so different offsets):
    calshare may return it once, with either offset.
    """
    want: dict[tuple[str | None, datetime | date], list[Occ]] = {}
    have: dict[tuple[str | None, datetime | date], list[Occ]] = {}
    for occ in expected:
        want.setdefault((occ.uid, occ.start), []).append(occ)
    for occ in got:
        have.setdefault((occ.uid, occ.start), []).append(occ)
    missing = [want[key][0] for key in sorted(set(want) - set(have), key=_sort_key)]
    extra = [have[key][0] for key in sorted(set(have) - set(want), key=_sort_key)]
    repeated = [
        f"{_describe(have[key][0])} x{len(have[key])}"
        for key in sorted(set(have), key=_sort_key)
        if len(have[key]) > max(len(want.get(key, [])), 1)
    ]
    wrong = [
        f"{_describe(occ)}, expected {' or '.join(map(_describe, want[key]))}"
        for key in sorted(set(have) & set(want), key=_sort_key)
        for occ in have[key]
        if occ not in want[key]
    ]
    problems = []
    for what, found in (
        ("occurrence(s) missing from calshare", list(map(_describe, missing))),
        ("occurrence(s) calshare should not return", list(map(_describe, extra))),
        ("occurrence(s) returned more than once", repeated),
        ("occurrence(s) with the wrong UTC offset or end", wrong),
    ):
        if found:
            problems.append(f"{label}: {len(found)} {what}, e.g. " + "; ".join(found[:4]))
    return problems


def _sort_key(key: tuple[str | None, datetime | date]) -> tuple[str, str]:
    uid, start = key
    return (str(start), uid or "")


def _inside_wide(occ: Occ, zone: ZoneInfo) -> bool:
    start, _ = occ.span(zone)
    return ORACLE_START + EDGE <= start <= ORACLE_END - EDGE


def _overlapping(
    occurrences: Iterable[Occ], zone: ZoneInfo, low: datetime, high: datetime
) -> Iterator[Occ]:
    """What ``events`` promises: every occurrence overlapping [low, high)."""
    for occ in occurrences:
        start, end = occ.span(zone)
        if start < high and (end > low or start >= low):
            yield occ


def _narrow_windows(expected: Oracle, zone: ZoneInfo) -> list[tuple[date, date]]:
    """30-day windows: around now; across each horizon edge, loosely and one day past
    it; at the first and last recurrence of any series; and starting on the last day
    of the longest occurrence (which overlaps the window without starting in it)."""
    length = timedelta(days=NARROW_DAYS - 1)
    day = timedelta(days=1)
    windows = [
        (NOW.date() - 14 * day, NOW.date() + 15 * day),
        (HORIZON_START - 15 * day, HORIZON_START + 14 * day),
        (HORIZON_START - day, HORIZON_START - day + length),
        (HORIZON_END - 15 * day, HORIZON_END + 14 * day),
        (HORIZON_END - length, HORIZON_END),
    ]
    counts = Counter(occ.uid for occ in expected.occurrences)
    starts = sorted(
        occ.span(zone)[0].astimezone(zone).date()
        for occ in expected.occurrences
        if counts[occ.uid] > 1
    )
    if starts:
        first, last = starts[0], starts[-1]
        windows.append((first - 3 * day, first - 3 * day + length))
        windows.append((last + 3 * day - length, last + 3 * day))
    spans = [occ.span(zone) for occ in expected.occurrences]
    long = [(end - start, end) for start, end in spans if end - start > timedelta(hours=36)]
    if long:
        # The window starts on the occurrence's last day: far enough from its start
        # that the index must know how long occurrences can be.
        _, end = max(long, key=lambda item: (item[0], -item[1].timestamp()))
        inside = (end - timedelta(seconds=1)).astimezone(zone).date()
        windows.append((inside, inside + length))
    safe_low, safe_high = WIDE_FROM + 5 * day, WIDE_TO - 5 * day
    unique = []
    for low, high in windows:
        if safe_low <= low and high <= safe_high and (low, high) not in unique:
            unique.append((low, high))
    return unique


# --- the tests


def test_corpus_is_present() -> None:
    assert CORPUS_DIR.is_dir(), f"the corpus is missing: {CORPUS_DIR}"
    names = {path.name for path in corpus_files()}
    assert len(names) >= 100, f"only {len(names)} corpus files in {CORPUS_DIR}"
    assert not set(REFUSED) - names, (
        f"REFUSED names files not in the corpus: {set(REFUSED) - names}"
    )
    assert len(export_files()) >= 5


@pytest.mark.parametrize("tz", ZONES, ids=_zone_id)
@pytest.mark.parametrize("path", ACCEPTED, ids=_file_id)
def test_wide_window_matches_recurring_ical_events(cli: Cli, path: Path, tz: str | None) -> None:
    expected = oracle(path.read_bytes(), tz)
    zone_name = _import(cli, path, tz)
    assert zone_name == expected.zone
    zone = ZoneInfo(zone_name)

    got = [_calshare_occ(item) for item in _events(cli, WIDE_FROM, WIDE_TO)]

    problems = _differences(
        f"{path.name} {WIDE_FROM}..{WIDE_TO} in {zone_name}",
        [occ for occ in expected.occurrences if _inside_wide(occ, zone)],
        [occ for occ in got if _inside_wide(occ, zone)],
    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("tz", ZONES, ids=_zone_id)
@pytest.mark.parametrize("path", RECURRING, ids=_file_id)
def test_narrow_windows_match_recurring_ical_events(
    cli: Cli, path: Path, tz: str | None, tmp_path: Path
) -> None:
    expected = oracle(path.read_bytes(), tz)
    zone = ZoneInfo(expected.zone)
    windows = _narrow_windows(expected, zone)
    problems: list[str] = []

    def check(label: str, low: date, high: date, env: dict[str, str] | None = None) -> None:
        start, end = _window(low, high, zone)
        want = list(_overlapping(expected.occurrences, zone, start, end))
        got = [_calshare_occ(item) for item in _events(cli, low, high, env)]
        problems.extend(_differences(f"{path.name} {label} {low}..{high}", want, got))

    # Each window as the first query after an import.
    for number, (low, high) in enumerate(windows):
        env = {"CALSHARE_DB": str(tmp_path / f"fresh-{number}.db")}
        assert _import(cli, path, tz, env) == expected.zone
        check("first query", low, high, env)

    # All windows in turn on one store, then the wide one: the index grows piecewise.
    _import(cli, path, tz)
    for low, high in windows:
        check("after earlier queries", low, high)
    got = [_calshare_occ(item) for item in _events(cli, WIDE_FROM, WIDE_TO)]
    problems.extend(
        _differences(
            f"{path.name} wide after narrow queries",
            [occ for occ in expected.occurrences if _inside_wide(occ, zone)],
            [occ for occ in got if _inside_wide(occ, zone)],
        )
    )
    assert not problems, "\n".join(problems)


def _dump(db_path: Path) -> list[str]:
    connection = sqlite3.connect(db_path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_file_is_broken_and_changes_nothing(cli: Cli, db_path: Path, name: str) -> None:
    kind, why = REFUSED[name]
    path = CORPUS_DIR / name
    _import(cli, BASELINE, "Europe/Oslo")
    before_events = cli("events", "cal", "--from", "2026-01-01", "--to", "2027-12-31", "--json")
    before_list = cli("calendar", "list", "--json")
    before = _dump(db_path)

    refused = cli("calendar", "import", "cal", str(path))

    assert refused.code == 2, f"{name} ({why}) was not refused: {refused.err}"
    assert refused.out == ""
    assert refused.err.startswith("calshare: error: ")
    assert refused.err.count("\n") == 1 and refused.err.endswith("\n"), refused.err
    assert _dump(db_path) == before
    after_events = cli("events", "cal", "--from", "2026-01-01", "--to", "2027-12-31", "--json")
    assert after_events.out == before_events.out
    assert cli("calendar", "list", "--json").out == before_list.out

    if kind == "unusable":
        # recurring-ical-events cannot expand any of its events either.
        expected = oracle(path.read_bytes(), "UTC")
        assert expected.groups > 0
        assert len(expected.failed) == expected.groups, expected.failed
        assert not expected.occurrences


# --- what the exports mean, independent of the oracle


def _by_summary(items: list[dict[str, Any]], summary: str) -> list[dict[str, Any]]:
    return [item for item in items if item.get("summary", "").startswith(summary)]


def test_google_export_keeps_local_time_across_dst(cli: Cli) -> None:
    """UTC DTSTARTs with X-WR-TIMEZONE:Europe/Oslo recur at 09:00 Oslo time all year."""
    assert _import(cli, EXPORTS_DIR / "google.ics", None) == "Europe/Oslo"
    items = _events(cli, date(2026, 6, 1), date(2027, 6, 30))
    weekly = [
        item["start"]
        for item in _by_summary(items, "Ukemøte")
        if "flyttet" not in item.get("summary", "")
    ]
    assert weekly[:3] == [
        "2026-09-03T09:00:00+02:00",
        "2026-09-10T09:00:00+02:00",
        "2026-09-17T09:00:00+02:00",
    ]
    assert "2026-10-29T09:00:00+01:00" in weekly  # the first Thursday after the DST change
    assert "2027-06-24T09:00:00+02:00" in weekly
    assert all(start[11:19] == "09:00:00" for start in weekly)
    assert not any(start.startswith("2026-10-15") for start in weekly)  # EXDATE
    assert not any(start.startswith(("2026-10-22", "2026-11-05")) for start in weekly)  # moved
    moved = [item["start"] for item in _by_summary(items, "Ukemøte (flyttet)")]
    # One instance moved from before the import horizon into it, one moved within it.
    assert moved == ["2026-10-27T13:00:00+01:00", "2026-11-05T14:00:00+01:00"]
    (party,) = _by_summary(items, "Sommerfest")
    assert (party["start"], party["end"]) == (
        "2026-07-02T09:00:00+02:00",
        "2026-07-02T17:00:00+02:00",
    )
    birthdays = _by_summary(_events(cli, date(1990, 1, 1), date(2030, 12, 31)), "Bursdag")
    assert [item["start"] for item in birthdays] == [f"{year}-03-10" for year in range(1995, 2031)]


def test_outlook_export_busy_status_exceptions_and_private(cli: Cli) -> None:
    assert _import(cli, EXPORTS_DIR / "outlook_exchange.ics", "Europe/Berlin") == "Europe/Berlin"
    items = _events(cli, date(2025, 9, 1), date(2026, 12, 31))
    busy = {item["summary"]: item["busy"] for item in items}
    assert busy["Summer holiday"] == "oof"
    assert busy["Budget review"] == "tentative"
    assert busy["Working from home"] == "elsewhere"
    assert busy["Lunch"] == "free"
    assert busy["Team stand-up"] == "busy"
    (doctor,) = _by_summary(items, "Doctor")
    assert doctor["private"] is True
    assert doctor["start"] == "2026-11-30T08:00:00+01:00"
    standups = [item["start"] for item in _by_summary(items, "Team stand-up")]
    assert standups[:3] == [
        "2025-09-08T09:30:00+02:00",
        "2025-09-15T11:00:00+02:00",  # moved within the day (RECURRENCE-ID)
        "2025-09-22T09:30:00+02:00",
    ]
    assert "2025-12-22T09:30:00+01:00" in standups
    assert not any(start.startswith(("2025-12-29", "2026-01-05")) for start in standups)  # EXDATE
    assert "2026-10-23T10:00:00+02:00" in standups  # Monday 26 October moved to Friday
    assert not any(start.startswith("2026-10-26") for start in standups)
    (holiday,) = _by_summary(items, "Summer holiday")
    assert (holiday["start"], holiday["end"], holiday["all_day"]) == (
        "2026-07-20",
        "2026-08-01",
        True,
    )
    remote = [
        item["start"]
        for item in _by_summary(
            _events(cli, date(2026, 9, 1), date(2027, 12, 31)), "Working from home"
        )
    ]
    assert remote[:3] == ["2026-09-04", "2026-09-07", "2026-09-11"]
    assert remote[-1] == "2027-06-25"  # all-day event, UNTIL written as UTC date-time


def test_apple_export_multi_day_and_new_york_time(cli: Cli) -> None:
    assert _import(cli, EXPORTS_DIR / "apple_icloud.ics", None) == "UTC"
    items = _events(cli, date(2026, 1, 1), date(2027, 12, 31))
    (trip,) = _by_summary(items, "Cape Cod")
    assert (trip["start"], trip["end"], trip["all_day"]) == ("2027-07-02", "2027-07-06", True)
    lessons = [item["start"] for item in _by_summary(items, "Piano lesson")]
    assert lessons[:2] == ["2026-02-24T16:30:00-05:00", "2026-03-10T16:30:00-04:00"]
    assert all(start[11:19] == "16:30:00" for start in lessons)
    (concert,) = _by_summary(items, "Concert")
    assert concert["start"] == "2026-12-11T19:30:00-05:00"


def test_thunderbird_floating_times_follow_the_calendar_zone(cli: Cli) -> None:
    assert _import(cli, EXPORTS_DIR / "thunderbird.ics", "Pacific/Auckland") == "Pacific/Auckland"
    items = _events(cli, date(2026, 1, 1), date(2027, 12, 31))
    choir = [item["start"] for item in _by_summary(items, "Choir practice")]
    assert choir[0] == "2026-01-07T19:00:00+13:00"
    assert "2026-07-01T19:00:00+12:00" in choir
    assert all(start[11:19] == "19:00:00" for start in choir)
    assert not any(start.startswith(("2026-12-23", "2026-12-30")) for start in choir)  # EXDATE
    walks = [item["start"] for item in _by_summary(items, "Evening walk")]
    assert walks[0] == "2026-03-01T20:00:00+13:00" and walks[-1] == "2027-12-31T20:00:00+13:00"
    assert len(walks) == 671 and all(start[11:19] == "20:00:00" for start in walks)
    physio = [item["start"][:10] for item in _by_summary(items, "Physiotherapy")]
    assert physio == [
        "2026-11-20",
        "2026-11-23",
        "2026-11-26",
        "2026-11-29",
        "2026-12-02",
        "2026-12-05",
    ]


def test_nextcloud_rdate_duration_and_until(cli: Cli) -> None:
    assert _import(cli, EXPORTS_DIR / "nextcloud.ics", "Europe/Berlin") == "Europe/Berlin"
    items = _events(cli, date(2026, 1, 1), date(2027, 12, 31))
    steering = [(item["start"], item["end"]) for item in _by_summary(items, "Steering group")]
    assert steering == [
        ("2026-03-10T14:00:00+01:00", "2026-03-10T15:30:00+01:00"),
        ("2026-03-24T14:00:00+01:00", "2026-03-24T15:30:00+01:00"),
        ("2026-04-14T15:00:00+02:00", "2026-04-14T16:30:00+02:00"),
        ("2026-10-27T14:00:00+01:00", "2026-10-27T15:30:00+01:00"),
        ("2027-01-12T14:00:00+01:00", "2027-01-12T15:30:00+01:00"),
    ]
    sync = [item["start"] for item in _by_summary(items, "Daily sync")]
    assert sync[0] == "2026-09-01T08:00:00+02:00"
    assert sync[-1] == "2026-11-06T08:00:00+01:00"  # UNTIL 07:00Z is 08:00 Berlin in November
    retreats = _by_summary(_events(cli, date(2020, 1, 1), date(2026, 12, 31)), "Team retreat")
    assert [(item["start"], item["end"]) for item in retreats] == [
        (f"{year}-09-{day:02d}", f"{year}-09-{day + 4:02d}")
        for year, day in ((2021, 13), (2022, 12), (2023, 11), (2024, 9), (2025, 8))
    ]  # second Monday of September, DURATION:P4D, until 2025
    (conference,) = _by_summary(items, "Conference")
    assert (conference["start"], conference["end"]) == ("2026-12-01", "2026-12-03")


def test_concatenated_exports_keep_a_meeting_both_hold(cli: Cli) -> None:
    """The same invitation (one UID) in both calendars, a year and a half ago."""
    _import(cli, EXPORTS_DIR / "google_two_calendars_concatenated.ics", None)
    found = _by_summary(_events(cli, date(2025, 6, 1), date(2025, 6, 30)), "Joint planning")
    assert [datetime.fromisoformat(item["start"]) for item in found] == [
        datetime(2025, 6, 12, 14, 0, tzinfo=UTC)
    ]


def test_concatenated_exports_keep_each_calendars_x_wr_timezone(cli: Cli) -> None:
    """Dana's calendar says X-WR-TIMEZONE:America/New_York: 09:00 New York time, always."""
    _import(cli, EXPORTS_DIR / "google_two_calendars_concatenated.ics", None)
    for low, high in ((date(2026, 6, 1), date(2026, 6, 30)), (date(2028, 3, 1), date(2028, 3, 31))):
        starts = [item["start"] for item in _by_summary(_events(cli, low, high), "NY team sync")]
        assert starts, (low, high)
        assert all(start[11:] in ("09:00:00-04:00", "09:00:00-05:00") for start in starts), starts


# Python's and the libraries' internals, where a message should speak iCalendar.
JARGON = (
    "object has no attribute",
    "not supported between instances",
    "UNTIL parameter is missing",  # said by recurring-ical-events of any rule it cannot read
)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refusal_message_names_the_problem(cli: Cli, name: str) -> None:
    _import(cli, BASELINE, None)
    refused = cli("calendar", "import", "cal", str(CORPUS_DIR / name))
    assert refused.code == 2
    assert not [word for word in JARGON if word in refused.err], refused.err
