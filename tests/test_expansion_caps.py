"""Hostile calendars cannot make an import or a query run away (issue 11, finding 5).

A 166-byte calendar with ``RRULE:FREQ=SECONDLY`` used to run an import for minutes and
die with a MemoryError; ``FREQ=MINUTELY`` stored half a million rows; a VTIMEZONE with
10,000 transitions made one hourly series take most of a minute. Each limit here is
met by a tiny file written by the test, through the CLI (``calshare: warning: …`` or
``calshare: error: …`` and exit 2, never a traceback, the store unchanged after a
refused import) and through the importer API. The time bounds are deliberately
generous: they catch a runaway (minutes), not a slow machine.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from calshare.calendars import add_calendar, get_calendar
from calshare.clock import FixedClock
from calshare.config import CalendarSettings, Settings
from calshare.errors import ExpansionLimit, ImportFailed
from calshare.expansion import Caps, Meter, expand_series, group_by_uid
from calshare.feeds import feed_ics
from calshare.ics_reader import read_calendar, timezone_transitions
from calshare.importer import import_calendar
from calshare.index import occurrences_between
from calshare.levels import Level
from calshare.store import Store
from tests.conftest import NOW, ROOT, CliResult

Cli = Callable[..., CliResult]

CALENDAR = "work"
GENEROUS_SECONDS = 60.0  # the old code took 2-2.5 minutes (or never ended) on these files
HEAD = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calshare tests//EN\r\n"  # lines 1-3
TAIL = "END:VCALENDAR\r\n"


def vevent(uid: str, start: str, summary: str, rule: str | None = None) -> str:
    """One VEVENT (6 lines, 7 with a rule), its BEGIN on the first."""
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T000000Z", f"DTSTART:{start}"]
    lines += ["DURATION:PT1S" if rule else "DURATION:PT1H", f"SUMMARY:{summary}"]
    if rule:
        lines.append(f"RRULE:{rule}")
    return "\r\n".join([*lines, "END:VEVENT"]) + "\r\n"


GOOD = vevent("first@test", "20261127T090000Z", "First") + vevent(
    "second@test", "20261128T090000Z", "Second"
)
GOOD_UIDS = {"first@test", "second@test"}


def tick(rule: str = "FREQ=SECONDLY", start: str = "20261126T000000Z") -> str:
    return vevent("tick@test", start, "Tick", rule)


def line_of(text: str, uid: str) -> int:
    """The line of the BEGIN:VEVENT of the event with this UID."""
    lines = text.split("\r\n")
    return lines.index(f"UID:{uid}")  # the UID is the line after BEGIN, counted from 1


def write(tmp_path: Path, text: str, name: str = "cal.ics") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return str(path)


def snapshot(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return "\n".join(connection.iterdump())


def rows(db: Path, uid: str | None = None) -> int:
    query = "SELECT count(*) FROM occurrences o JOIN events e ON e.id = o.event_id"
    with contextlib.closing(sqlite3.connect(db)) as connection:
        if uid is None:
            return int(connection.execute(query).fetchone()[0])
        return int(connection.execute(query + " WHERE e.uid = ?", [uid]).fetchone()[0])


def timed(cli: Cli, *args: str, env: dict[str, str] | None = None) -> tuple[CliResult, float]:
    """Run the CLI; a traceback (any exception out of main) fails the test."""
    began = time.monotonic()
    try:
        result = cli(*args, env=env)
    except Exception as exc:  # noqa: BLE001 - any escape is the failure we test for
        pytest.fail(f"calshare let {type(exc).__name__} escape (a traceback): {exc!r}")
    return result, time.monotonic() - began


def one_line(err: str, kind: str) -> str:
    """The single ``calshare: KIND: …`` line on stderr (and no traceback)."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"calshare: {kind}: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def work(cli: Cli) -> Cli:
    assert cli("calendar", "add", CALENDAR, "--owner", "owner@example.org").code == 0
    return cli


# --- the CLI, default limits


def test_an_endless_secondly_series_is_skipped_with_a_warning_naming_it(
    work: Cli, tmp_path: Path, db_path: Path
) -> None:
    source = write(tmp_path, HEAD + tick() + GOOD + TAIL)
    result, seconds = timed(work, "calendar", "import", CALENDAR, source)
    assert result.code == 0, result.err
    warning = one_line(result.err, "warning")
    assert "line 4" in warning and "'tick@test'" in warning and "'Tick'" in warning
    assert "max_occurrences_per_series" in warning
    assert seconds < GENEROUS_SECONDS
    assert rows(db_path, "tick@test") == 0 and rows(db_path) == 2
    found = work("events", CALENDAR, "--from", "2026-11-20", "--to", "2026-12-10", "--json")
    assert {item["uid"] for item in found.json()} == GOOD_UIDS


def test_a_minutely_series_does_not_store_half_a_million_rows(
    work: Cli, tmp_path: Path, db_path: Path
) -> None:
    text = HEAD + GOOD + tick("FREQ=MINUTELY") + TAIL
    result, seconds = timed(work, "calendar", "import", CALENDAR, write(tmp_path, text))
    assert result.code == 0, result.err
    warning = one_line(result.err, "warning")
    assert f"line {line_of(text, 'tick@test')}: skipped event 'tick@test'" in warning
    assert seconds < GENEROUS_SECONDS
    assert rows(db_path) == 2


def test_a_calendar_of_one_huge_count_is_refused_and_changes_nothing(
    work: Cli, tmp_path: Path, db_path: Path
) -> None:
    assert work("calendar", "import", CALENDAR, write(tmp_path, HEAD + GOOD + TAIL)).code == 0
    before = snapshot(db_path)
    source = write(tmp_path, HEAD + tick("FREQ=SECONDLY;COUNT=10000000") + TAIL, "bad.ics")
    result, seconds = timed(work, "calendar", "import", CALENDAR, source)
    assert result.code == 2
    error = one_line(result.err, "error")
    assert "line 4" in error and "'tick@test'" in error and "nothing was imported" in error
    assert seconds < GENEROUS_SECONDS
    assert snapshot(db_path) == before


def test_a_query_to_2100_on_a_secondly_series_is_cut_short(
    work: Cli, tmp_path: Path, db_path: Path
) -> None:
    """A series that starts after the imported span passes the import; queries cap it."""
    source = write(tmp_path, HEAD + GOOD + tick(start="20500101T000000Z") + TAIL)
    assert work("calendar", "import", CALENDAR, source).code == 0
    result, seconds = timed(
        work, "events", CALENDAR, "--from", "2026-01-01", "--to", "2100-01-01", "--json"
    )
    assert result.code == 0, result.err
    warning = one_line(result.err, "warning")
    assert "'tick@test'" in warning and "max_occurrences_per_series" in warning
    found = result.json()
    assert {item["uid"] for item in found} >= GOOD_UIDS
    assert len(found) <= 50_000 + len(GOOD_UIDS)
    assert seconds < GENEROUS_SECONDS
    assert rows(db_path, "tick@test") == 0  # a cut expansion is not stored


# --- the CLI, limits set by the operator


def test_the_limits_are_settings(work: Cli, tmp_path: Path) -> None:
    env = {"CALSHARE_CALENDARS_MAX_OCCURRENCES_PER_SERIES": "100"}
    source = write(tmp_path, HEAD + GOOD + tick("FREQ=DAILY;COUNT=101") + TAIL)
    result = work("calendar", "import", CALENDAR, source, env=env)
    assert result.code == 0
    assert "more than 100 times" in one_line(result.err, "warning")
    # Under the limit, a series imports whole.
    source = write(tmp_path, HEAD + GOOD + tick("FREQ=DAILY;COUNT=90") + TAIL)
    result = work("calendar", "import", CALENDAR, source, env=env)
    assert result.code == 0 and "warning" not in result.err
    other = write(tmp_path, HEAD + GOOD + TAIL, "other.ics")
    bad = work("calendar", "import", CALENDAR, other,
               env={"CALSHARE_CALENDARS_MAX_IMPORT_SECONDS": "0.000001"})  # fmt: skip
    assert bad.code == 2 and "max_import_seconds" in one_line(bad.err, "error")


def test_an_import_over_the_total_limit_fails_naming_the_event(
    work: Cli, tmp_path: Path, db_path: Path
) -> None:
    assert work("calendar", "import", CALENDAR, write(tmp_path, HEAD + GOOD + TAIL)).code == 0
    before = snapshot(db_path)
    # 12 series of 100 each, every one under the per-series limit, 1,200 in all.
    many = "".join(
        vevent(f"s{n}@test", "20261126T000000Z", f"Series {n}", "FREQ=HOURLY;COUNT=100")
        for n in range(12)
    )
    source = write(tmp_path, HEAD + GOOD + many + TAIL, "many.ics")
    env = {
        "CALSHARE_CALENDARS_MAX_OCCURRENCES_PER_SERIES": "500",
        "CALSHARE_CALENDARS_MAX_OCCURRENCES_PER_IMPORT": "1000",
    }
    result, _ = timed(work, "calendar", "import", CALENDAR, source, env=env)
    assert result.code == 2
    error = one_line(result.err, "error")
    assert re.search(r"line \d+: event 's\d+@test' \('Series \d+'\)", error), error
    assert "max_occurrences_per_import" in error and "nothing was imported" in error
    assert snapshot(db_path) == before


def test_an_import_past_its_time_limit_fails_and_changes_nothing(
    work: Cli, tmp_path: Path, db_path: Path
) -> None:
    assert work("calendar", "import", CALENDAR, write(tmp_path, HEAD + GOOD + TAIL)).code == 0
    before = snapshot(db_path)
    # Counts set as high as they go: only the clock stops this one.
    env = {
        "CALSHARE_CALENDARS_MAX_OCCURRENCES_PER_SERIES": "10000000",
        "CALSHARE_CALENDARS_MAX_OCCURRENCES_PER_IMPORT": "100000000",
        "CALSHARE_CALENDARS_MAX_IMPORT_SECONDS": "0.5",
    }
    source = write(tmp_path, HEAD + GOOD + tick() + TAIL, "slow.ics")
    result, seconds = timed(work, "calendar", "import", CALENDAR, source, env=env)
    assert result.code == 2
    error = one_line(result.err, "error")
    assert "max_import_seconds" in error and "nothing was imported" in error
    assert "'tick@test'" in error or "reading it took" in error
    assert seconds < GENEROUS_SECONDS
    assert snapshot(db_path) == before


def vtimezone(parts: int, rdates: int = 0) -> str:
    """A custom zone with ``parts`` STANDARD/DAYLIGHT parts, the first with ``rdates`` RDATEs."""
    lines = ["BEGIN:VTIMEZONE", "TZID:Evil/Zone"]
    moment = datetime(1990, 1, 1, 2)
    for number in range(parts):
        kind, offsets = ("STANDARD", ("+0200", "+0100"))
        if number % 2:
            kind, offsets = ("DAYLIGHT", ("+0100", "+0200"))
        lines += [f"BEGIN:{kind}", f"DTSTART:{moment:%Y%m%dT%H%M%S}"]
        if number == 0 and rdates:
            days = (moment + timedelta(days=3 + 2 * n) for n in range(rdates))
            lines.append("RDATE:" + ",".join(f"{day:%Y%m%dT%H%M%S}" for day in days))
        lines += [f"TZOFFSETFROM:{offsets[0]}", f"TZOFFSETTO:{offsets[1]}", f"END:{kind}"]
        moment += timedelta(days=2)
    return "\r\n".join([*lines, "END:VTIMEZONE"]) + "\r\n"


HOURLY_IN_EVIL_ZONE = vevent(
    "hourly@test", "20261126T000000", "Hourly", "FREQ=HOURLY;COUNT=2000"
).replace("DTSTART:", "DTSTART;TZID=Evil/Zone:")


@pytest.mark.parametrize(("parts", "rdates"), [(501, 0), (2, 600)])
def test_a_vtimezone_with_too_many_transitions_is_refused(
    work: Cli, tmp_path: Path, db_path: Path, parts: int, rdates: int
) -> None:
    assert work("calendar", "import", CALENDAR, write(tmp_path, HEAD + GOOD + TAIL)).code == 0
    before = snapshot(db_path)
    text = HEAD + vtimezone(parts, rdates) + GOOD + HOURLY_IN_EVIL_ZONE + TAIL
    result, seconds = timed(work, "calendar", "import", CALENDAR, write(tmp_path, text, "tz.ics"))
    assert result.code == 2
    error = one_line(result.err, "error")
    assert "line 4: VTIMEZONE 'Evil/Zone'" in error, error
    assert f"has {parts + rdates:,} transitions" in error
    assert "max_timezone_transitions" in error
    assert seconds < GENEROUS_SECONDS
    assert snapshot(db_path) == before


def test_a_vtimezone_under_the_limit_imports(work: Cli, tmp_path: Path, db_path: Path) -> None:
    text = HEAD + vtimezone(40, 100) + GOOD + HOURLY_IN_EVIL_ZONE + TAIL
    result = work("calendar", "import", CALENDAR, write(tmp_path, text))
    assert result.code == 0, result.err
    assert rows(db_path, "hourly@test") == 2000


def test_transitions_are_counted_from_the_text_folded_or_not() -> None:
    text = vtimezone(3, 5)
    assert timezone_transitions(text) == 8
    folded = text.replace("RDATE:", "RDATE;VALUE=DATE-TIME:\r\n ")
    assert timezone_transitions(folded) == 8


# --- the importer API


def small_caps(**changes: Any) -> Settings:
    calendars = replace(
        CalendarSettings(),
        **{"max_occurrences_per_series": 500, "max_occurrences_per_import": 1000, **changes},
    )
    return replace(Settings(), calendars=calendars)


@pytest.fixture
def api(store: Store, clock: FixedClock) -> Iterator[tuple[Store, FixedClock]]:
    add_calendar(store, clock, CALENDAR, "owner@example.org", "UTC", "UTC")
    yield store, clock


def test_the_importer_skips_a_series_over_its_limit(
    api: tuple[Store, FixedClock], tmp_path: Path
) -> None:
    store, clock = api
    text = HEAD + GOOD + tick() + TAIL
    result = import_calendar(store, small_caps(), clock, CALENDAR, write(tmp_path, text))
    assert result.events == 2 and result.occurrences == 2
    assert len(result.warnings) == 1
    line = line_of(text, "tick@test")
    assert f"line {line}: skipped event 'tick@test' ('Tick')" in result.warnings[0]


def test_the_importer_raises_past_the_total_limit_and_writes_nothing(
    api: tuple[Store, FixedClock], tmp_path: Path
) -> None:
    store, clock = api
    import_calendar(store, small_caps(), clock, CALENDAR, write(tmp_path, HEAD + GOOD + TAIL))
    version = get_calendar(store.db, CALENDAR).version
    many = "".join(
        vevent(f"s{n}@test", "20261126T000000Z", f"S{n}", "FREQ=DAILY;COUNT=400") for n in range(3)
    )
    text = HEAD + many + TAIL
    with pytest.raises(ExpansionLimit) as caught:
        import_calendar(store, small_caps(), clock, CALENDAR, write(tmp_path, text, "many.ics"))
    assert isinstance(caught.value, ImportFailed)
    assert f"line {line_of(text, 's2@test')}: event 's2@test' ('S2')" in str(caught.value)
    assert get_calendar(store.db, CALENDAR).version == version
    assert rows(store.path) == 2


def test_the_deadline_names_the_event_it_stopped_in() -> None:
    """A clock that moves a second per look: the run stops after its fifth second."""
    text = HEAD + GOOD + tick("FREQ=DAILY") + TAIL
    parsed = read_calendar(text.encode(), "cal.ics")
    _, series = group_by_uid(parsed.events)
    ticks = iter(range(10**6))
    meter = Meter(Caps(seconds=5), now=lambda: float(next(ticks)))
    span = (int(NOW.timestamp()), int((NOW + timedelta(days=400)).timestamp()))
    line = line_of(text, "tick@test")
    with pytest.raises(ExpansionLimit, match=rf"line {line}: event 'tick@test' \('Tick'\): .*5 s"):
        expand_series(parsed.events, series, ZoneInfo("UTC"), *span, meter)
    ticks = iter(range(10**6))
    meter = Meter(Caps(seconds=5), now=lambda: float(next(ticks)))
    cut = expand_series(parsed.events, series, ZoneInfo("UTC"), *span, meter, cut=True)
    assert cut.capped and len(cut.slots) < 5
    assert "this and later series are left out" in cut.warnings[0]


# --- queries: extension of the index, feeds


def test_a_feed_past_the_indexed_span_expands_within_the_limits(
    store: Store, clock: FixedClock, tmp_path: Path
) -> None:
    """Imported with a one-day horizon, the series passes; the year-long feed is capped."""
    add_calendar(store, clock, CALENDAR, "owner@example.org", "UTC", "UTC")
    settings = small_caps(index_future_days=1, index_past_days=0)
    source = write(tmp_path, HEAD + GOOD + tick(start="20261210T000000Z") + TAIL)
    result = import_calendar(store, settings, clock, CALENDAR, source)
    assert result.warnings == [] and rows(store.path, "tick@test") == 0
    calendar = get_calendar(store.db, CALENDAR)
    began = time.monotonic()
    feed = feed_ics(store, settings, calendar, Level.FREE_BUSY, NOW)
    assert time.monotonic() - began < GENEROUS_SECONDS
    events = icalendar.Calendar.from_ical(feed).walk("VEVENT")
    assert len(GOOD_UIDS) < len(events) <= 500 + len(GOOD_UIDS)
    assert rows(store.path, "tick@test") == 0  # the cut extension was not stored

    warnings: list[str] = []
    found = occurrences_between(
        store,
        calendar,
        NOW,
        NOW + timedelta(days=3650),
        now=NOW,
        caps=Caps.of(settings.calendars),
        warnings=warnings,
    )
    assert len(found) <= 500 + len(GOOD_UIDS)
    assert warnings and all("'tick@test' ('Tick')" in warning for warning in warnings)


# --- the defaults leave real calendars alone


def test_the_bench_calendar_imports_the_same_under_the_default_limits(
    store: Store, tmp_path: Path
) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from generate import generate, reference_now  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "bench"))
    clock = FixedClock(reference_now())
    source = tmp_path / "bench.ics"
    source.write_bytes(generate(n_events=5000))
    unlimited = replace(
        CalendarSettings(),
        max_occurrences_per_series=10_000_000,
        max_occurrences_per_import=100_000_000,
        max_import_seconds=3600.0,
    )
    add_calendar(store, clock, "a", "owner@example.org", "Europe/Oslo", "UTC")
    add_calendar(store, clock, "b", "owner@example.org", "Europe/Oslo", "UTC")
    default = import_calendar(store, Settings(), clock, "a", str(source))
    free = import_calendar(store, replace(Settings(), calendars=unlimited), clock, "b", str(source))
    assert default.warnings == [] and default.events == 5000
    assert (default.occurrences, default.series) == (free.occurrences, free.series)
    window = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
    now = clock.now()
    a = occurrences_between(store, get_calendar(store.db, "a"), *window, now=now)
    b = occurrences_between(store, get_calendar(store.db, "b"), *window, now=now)
    assert a == b


# --- review of the caps (issue 11, finding 5): regressions


def singles(count: int) -> str:
    return "".join(
        vevent(f"single{n}@test", f"202611{1 + n % 28:02d}T{n % 24:02d}0000Z", f"Single {n}")
        for n in range(count)
    )


def test_more_single_events_than_the_series_cap_import(
    api: tuple[Store, FixedClock], tmp_path: Path
) -> None:
    """Single events count toward the import's total only, never toward a series' cap."""
    store, clock = api
    text = HEAD + singles(600) + vevent("s@test", "20261126T000000Z", "S", "FREQ=DAILY;COUNT=300")
    settings = small_caps(max_occurrences_per_import=100_000)
    result = import_calendar(store, settings, clock, CALENDAR, write(tmp_path, text + TAIL))
    assert result.warnings == []
    assert (result.events, result.occurrences) == (601, 900)


def test_more_single_events_than_the_series_cap_import_from_the_cli(
    work: Cli, tmp_path: Path, db_path: Path
) -> None:
    env = {"CALSHARE_CALENDARS_MAX_OCCURRENCES_PER_SERIES": "100"}
    result, _ = timed(
        work, "calendar", "import", CALENDAR, write(tmp_path, HEAD + singles(150) + TAIL), env=env
    )
    assert result.code == 0, result.err
    assert "Traceback" not in result.err and "warning" not in result.err
    assert rows(db_path) == 150


def test_singles_over_the_total_fail_as_documented(
    api: tuple[Store, FixedClock], tmp_path: Path
) -> None:
    store, clock = api
    text = HEAD + singles(1001) + TAIL
    with pytest.raises(ExpansionLimit, match=r"max_occurrences_per_import.*nothing was imported"):
        import_calendar(store, small_caps(), clock, CALENDAR, write(tmp_path, text))
    assert rows(store.path) == 0


def test_history_before_the_span_does_not_count_toward_the_total(
    api: tuple[Store, FixedClock], tmp_path: Path
) -> None:
    """30 plain daily series since 2000: 290,000 days walked, 12,000 stored."""
    store, clock = api
    many = "".join(
        vevent(f"d{n}@test", f"20000101T{n % 24:02d}0000Z", f"Daily {n}", "FREQ=DAILY")
        for n in range(30)
    )
    source = write(tmp_path, HEAD + many + TAIL)
    result = import_calendar(store, Settings(), clock, CALENDAR, source)
    assert result.warnings == []
    assert result.occurrences == rows(store.path) and 30 * 390 < result.occurrences < 30 * 400


def test_a_dense_long_running_series_is_not_refused(
    api: tuple[Store, FixedClock], tmp_path: Path
) -> None:
    """Hourly since 2020: 60,000 instances walked, about 9,500 in the span."""
    store, clock = api
    text = HEAD + vevent("hourly@test", "20200101T000000Z", "Hourly", "FREQ=HOURLY") + TAIL
    result = import_calendar(store, Settings(), clock, CALENDAR, write(tmp_path, text))
    assert result.warnings == []
    assert 24 * 390 < rows(store.path, "hourly@test") < 24 * 400


def test_the_walk_before_the_span_stays_bounded(
    api: tuple[Store, FixedClock], tmp_path: Path
) -> None:
    """A series walks at most 10 × the per-series cap: with 500, 5,000 days (13.7 years).

    Daily since 1990 walks 13,800 to the span's end and is skipped; since 2016, 4,380.
    """
    store, clock = api
    old = vevent("old@test", "19900101T000000Z", "Old", "FREQ=DAILY")
    recent = vevent("recent@test", "20160101T000000Z", "Recent", "FREQ=DAILY")
    text = HEAD + GOOD + old + recent + TAIL
    settings = small_caps(max_occurrences_per_import=100_000)
    result = import_calendar(store, settings, clock, CALENDAR, write(tmp_path, text))
    assert len(result.warnings) == 1, result.warnings
    warning = result.warnings[0]
    assert f"line {line_of(text, 'old@test')}: skipped event 'old@test' ('Old')" in warning
    assert "5,000" in warning and "max_occurrences_per_series" in warning
    assert rows(store.path, "old@test") == 0 and rows(store.path, "recent@test") > 390


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=DAILY;BYMONTH=4,6;BYMONTHDAY=31",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-30",
        "FREQ=DAILY;BYYEARDAY=1;BYMONTH=2",
        "FREQ=HOURLY;BYYEARDAY=-1;BYMONTHDAY=30",
    ],
)
def test_a_rule_that_can_never_occur_is_skipped_while_reading(
    work: Cli, tmp_path: Path, db_path: Path, rule: str
) -> None:
    """dateutil scans such a rule to the year 9999 (5-12 s) without a single instance."""
    text = HEAD + GOOD + vevent("never@test", "20261126T000000Z", "Never", rule) + TAIL
    result, seconds = timed(work, "calendar", "import", CALENDAR, write(tmp_path, text))
    assert result.code == 0, result.err
    warning = one_line(result.err, "warning")
    assert f"line {line_of(text, 'never@test')}: skipped event 'never@test' ('Never')" in warning
    assert "never occurs" in warning
    assert rows(db_path) == 2 and rows(db_path, "never@test") == 0
    assert seconds < GENEROUS_SECONDS


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=-29",
        "FREQ=YEARLY;BYYEARDAY=366",
        "FREQ=YEARLY;BYYEARDAY=60;BYMONTH=2;BYMONTHDAY=29",
        "FREQ=MONTHLY;BYMONTHDAY=31",
        "FREQ=DAILY;BYMONTH=4,5;BYMONTHDAY=31",
    ],
)
def test_a_rule_that_occurs_rarely_is_kept(rule: str) -> None:
    text = HEAD + vevent("rare@test", "20240101T000000Z", "Rare", rule) + TAIL
    parsed = read_calendar(text.encode(), "cal.ics")
    assert [event.uid for event in parsed.events] == ["rare@test"], parsed.skipped
    assert parsed.skipped == []
