"""The import and query benchmark: is an imported calendar much cheaper to ask than the ICS?

Everything is measured in this one process and run, each timing the best (minimum)
of several repetitions with time.perf_counter and the garbage collector left on
(it runs a full collection between repetitions, outside the timed code):

- bare parse: ``icalendar.Calendar.from_ical`` on the generated calendar;
- parse and expand 30 days: the same, then ``recurring_ical_events.of(cal).between``;
- import: ``calshare.importer.import_calendar`` into a fresh SQLite file each time;
- events: what ``calshare events NAME --json`` does short of printing, for 30 days inside
  the indexed horizon, and for 30 days three years ahead (its first call extends the
  index, timed on its own; then the steady state);
- re-import of the same file into the same calendar;
- hostile calendars (issue 11): one import each of a few hundred bytes that used to run
  for minutes (FREQ=SECONDLY with no end or COUNT=10000000, FREQ=MINUTELY, an hourly
  series in a VTIMEZONE of 10,000 transitions), with what the import did; the times
  before the caps are in HOSTILE_BEFORE (measured on the code before them).

Targets (from the issue): import <= 2x the bare parse, parse-and-expand >= 50x the
events query, and the events query under 30 ms. A missed target is printed as
MISSED; the exit status stays 0. See bench/README.md.

    .venv/bin/python bench/run.py [--events N] [--bounded] [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import platform
import pstats
import re
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from generate import DEFAULT_START, ZONE, generate, reference_now
from reindex import measure as measure_refresh
from reindex import report as refresh_report

from calshare.calendars import add_calendar, get_calendar
from calshare.clock import FixedClock
from calshare.config import Settings
from calshare.errors import CalshareError
from calshare.importer import ImportResult, import_calendar
from calshare.index import occurrences_between
from calshare.levels import Level, filter_occurrence
from calshare.occurrence import occurrence_to_json
from calshare.store import Store

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
CALENDAR = "bench"
OWNER = "Bench Owner <bench@example.org>"
WINDOW_DAYS = 30
FAR_AHEAD_DAYS = 3 * 365 + 1  # three years, one of them a leap year

TARGET_IMPORT_RATIO = 2.0  # import / bare parse, at most
TARGET_QUERY_SPEEDUP = 50.0  # parse-and-expand / events query, at least
TARGET_QUERY_SECONDS = 0.030  # events query for 30 days, under

T = TypeVar("T")


@dataclass
class Timing:
    """Repeated timings of one operation, in seconds."""

    times: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def as_json(self) -> dict[str, Any]:
        return {"best_s": self.best, "median_s": self.median, "runs_s": self.times}


def timed(operation: Callable[[], T]) -> tuple[float, T]:
    """One run of ``operation``: (seconds, its result). Collects garbage first, untimed."""
    gc.collect()
    began = time.perf_counter()
    result = operation()
    return time.perf_counter() - began, result


def repeat(operation: Callable[[], T], runs: int) -> tuple[Timing, T]:
    timing = Timing()
    result: T
    for _ in range(runs):
        seconds, result = timed(operation)
        timing.times.append(seconds)
    return timing, result


def peak_memory(operation: Callable[[], object]) -> int:
    """Peak bytes allocated by Python while ``operation`` runs (tracemalloc; untimed)."""
    gc.collect()
    tracemalloc.start()
    try:
        operation()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def max_rss_bytes() -> int:
    """This process's peak resident set size so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS bytes, Linux KiB


# --- the operations measured


def bare_parse(data: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(data)


def parse_and_expand(data: bytes, start: datetime, end: datetime) -> list[Any]:
    calendar = icalendar.Calendar.from_ical(data)
    return list(recurring_ical_events.of(calendar).between(start, end))


def events_json(
    store: Store, start: datetime, end: datetime, now: datetime
) -> list[dict[str, Any]]:
    """``calshare events bench --from … --to … --json`` without the printing.

    With no --level the CLI shows the owner everything: details, private items included,
    which filter_occurrence returns untouched (measured here all the same).
    """
    calendar = get_calendar(store.db, CALENDAR)
    return [
        occurrence_to_json(filter_occurrence(occurrence, Level.DETAILS, include_private=True))
        for occurrence in occurrences_between(store, calendar, start, end, now=now)
    ]


def fresh_store(path: Path, clock: FixedClock, settings: Settings) -> Store:
    store = Store.open(path)
    add_calendar(store, clock, CALENDAR, OWNER, ZONE, settings.calendars.default_tz)
    return store


# --- cross-check: the index must give what recurring-ical-events gives


def _utc(text: str) -> str:
    value = datetime.fromisoformat(text)
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else text


def occurrence_keys_rie(occurrences: list[Any]) -> set[tuple[str, str]]:
    keys = set()
    for event in occurrences:
        start = event.start
        text = start.astimezone(UTC).isoformat() if isinstance(start, datetime) else str(start)
        keys.add((str(event["UID"]), text))
    return keys


def occurrence_keys_calshare(found: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(item["uid"], _utc(item["start"])) for item in found}


# --- reporting


def _seconds(value: float) -> str:
    return f"{value * 1000:8.2f} ms" if value < 1 else f"{value:8.3f} s "


def _megabytes(value: float) -> str:
    return f"{value / 1_000_000:.1f} MB"


@dataclass(frozen=True)
class Target:
    """A goal from the issue: ``value`` compared with ``limit``; ratios unless unit is "s"."""

    label: str
    key: str
    value: float
    comparison: str  # "<=", "<" or ">="
    limit: float
    unit: str = "x"

    @property
    def met(self) -> bool:
        if self.comparison == "<=":
            return self.value <= self.limit
        if self.comparison == "<":
            return self.value < self.limit
        return self.value >= self.limit

    def show(self, number: float) -> str:
        return f"{number * 1000:.2f} ms" if self.unit == "s" else f"{number:.2f}x"

    def rule(self) -> str:
        return f"{self.comparison} {self.show(self.limit)}"

    def as_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "comparison": self.comparison,
            "limit": self.limit,
            "unit": self.unit,
            "met": self.met,
        }


_HOSTILE_EVENT = (
    "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART{tzid}:{start}\r\n"
    "DURATION:PT1S\r\nSUMMARY:Tick\r\nRRULE:{rule}\r\nEND:VEVENT\r\n"
)
# Import time (and outcome) before the caps, on the same kind of machine: issue 11 and
# the commit before them (1c09bb1), `calshare calendar import` of the same bytes.
HOSTILE_BEFORE = {
    "FREQ=SECONDLY, no end": "2-2.5 min, then MemoryError (traceback)",
    "FREQ=SECONDLY;COUNT=10000000": "2-2.5 min, then MemoryError (traceback)",
    "FREQ=MINUTELY, no end": "stored 526,179 rows",
    "VTIMEZONE of 10,000 transitions + HOURLY": "53-70 s (66 s expanding, 4 s parsing)",
}


def hostile_calendars(now: datetime) -> dict[str, bytes]:
    """Tiny calendars that make an unbounded expander run away, by name."""
    start = f"{now:%Y%m%d}T000000Z"
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calshare bench//EN\r\n"

    def one(rule: str, zone: str = "", tzid: str = "", when: str = start) -> bytes:
        event = _HOSTILE_EVENT.format(uid="tick@bench", tzid=tzid, start=when, rule=rule)
        return (head + zone + event + "END:VCALENDAR\r\n").encode()

    lines = ["BEGIN:VTIMEZONE", "TZID:Evil/Zone"]
    moment = datetime(1990, 1, 1, 2)
    for number in range(10_000):
        kind, before, after = ("DAYLIGHT", "+0100", "+0200")
        if number % 2 == 0:
            kind, before, after = ("STANDARD", "+0200", "+0100")
        lines += [f"BEGIN:{kind}", f"DTSTART:{moment:%Y%m%dT%H%M%S}"]
        lines += [f"TZOFFSETFROM:{before}", f"TZOFFSETTO:{after}", f"END:{kind}"]
        moment += timedelta(days=2)
    zone = "\r\n".join([*lines, "END:VTIMEZONE"]) + "\r\n"
    return {
        "FREQ=SECONDLY, no end": one("FREQ=SECONDLY"),
        "FREQ=SECONDLY;COUNT=10000000": one("FREQ=SECONDLY;COUNT=10000000"),
        "FREQ=MINUTELY, no end": one("FREQ=MINUTELY"),
        "VTIMEZONE of 10,000 transitions + HOURLY": one(
            "FREQ=HOURLY", zone, ";TZID=Evil/Zone", start.rstrip("Z")
        ),
    }


def hostile_imports(work: Path, clock: FixedClock, settings: Settings) -> list[dict[str, Any]]:
    """Import each hostile calendar once into a fresh database: time and outcome."""
    found = []
    for number, (name, data) in enumerate(hostile_calendars(clock.now()).items()):
        path = work / f"hostile-{number}.ics"
        path.write_bytes(data)
        with fresh_store(work / f"hostile-{number}.db", clock, settings) as store:
            began = time.perf_counter()
            try:
                result = import_calendar(store, settings, clock, CALENDAR, str(path))
                outcome = f"imported, {result.occurrences:,} rows, {len(result.warnings)} warnings"
            except CalshareError as exc:
                limit = re.search(r"\[calendars\] \w+", str(exc))
                outcome = f"refused by {limit[0] if limit else str(exc)[:60]}"
            seconds = time.perf_counter() - began
            rows = count_indexed(store)
        found.append(
            {
                "name": name,
                "bytes": len(data),
                "seconds": seconds,
                "rows": rows,
                "outcome": outcome,
                "before": HOSTILE_BEFORE[name],
            }
        )
    return found


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for name in ("icalendar", "recurring-ical-events", "x-wr-timezone", "sqlite-utils", "calshare"):
        found[name] = version(name)
    return found


def profile(operation: Callable[[], object], title: str) -> str:
    """The top costs of ``operation`` under cProfile (which slows it down several times)."""
    profiler = cProfile.Profile()
    profiler.runcall(operation)
    out = io.StringIO()
    out.write(f"cProfile of {title}, by cumulative time, then by own time:\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(15)
    return out.getvalue()


def count_indexed(store: Store) -> int:
    return int(store.db.execute("SELECT count(*) FROM occurrences").fetchone()[0])


def differences(ours: set[tuple[str, str]], theirs: set[tuple[str, str]]) -> str:
    if ours == theirs:
        return "agree"
    return (
        f"DIFFER ({len(ours - theirs)} only in calshare, "
        f"{len(theirs - ours)} only in recurring-ical-events)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark calshare import and queries.")
    parser.add_argument("--events", type=int, default=5000, help="events in the calendar")
    parser.add_argument("--bounded", action="store_true", help="series end after 52 weeks")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one import and one query"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--sources",
        action="store_true",
        help="then the live-source benchmark too (bench/sources.py: 10,000 URL sources)",
    )
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be at least 1")

    runs = 2 if args.quick else 5
    import_runs = 1 if args.quick else 3
    query_runs = 5 if args.quick else 20

    start_day: date = DEFAULT_START
    now = reference_now(start_day)
    clock = FixedClock(now)
    settings = Settings()  # built-in defaults; no calshare.toml or CALSHARE_* applies
    zone = ZoneInfo(ZONE)
    near_start = datetime.combine(start_day, datetime.min.time(), zone)
    near_end = near_start + timedelta(days=WINDOW_DAYS)
    far_start = near_start + timedelta(days=FAR_AHEAD_DAYS)
    far_end = far_start + timedelta(days=WINDOW_DAYS)

    data = generate(args.events, seed=1, start=start_day, bounded=args.bounded)
    kind = "COUNT=52" if args.bounded else "no end"
    print(
        f"calshare benchmark: {args.events:,} events, every 10th weekly ({kind}), "
        f"{len(data):,} bytes ({_megabytes(len(data))})",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="calshare-bench-") as tmp:
        work = Path(tmp)
        data_path = work / "bench.ics"
        data_path.write_bytes(data)

        # A changed copy for the re-import: the same bytes again would be skipped.
        changed_path = work / "bench-changed.ics"
        changed_path.write_bytes(data.replace(b"VERSION:2.0", b"VERSION:2.0\r\nX-BENCH:2", 1))

        def importing(store: Store, path: Path = data_path) -> Callable[[], ImportResult]:
            # pause_gc as ``calshare calendar import`` does (see calshare.bulk).
            return partial(
                import_calendar, store, settings, clock, CALENDAR, str(path), pause_gc=True
            )

        parse, calendar = repeat(lambda: bare_parse(data), runs)
        vevents = sum(1 for component in calendar.walk("VEVENT"))
        del calendar
        expand, expanded = repeat(lambda: parse_and_expand(data, near_start, near_end), runs)
        # Keep only what the report needs, so later runs work on the same small heap.
        rie_near = occurrence_keys_rie(expanded)
        del expanded

        # Each import goes into a fresh database; the first query three years ahead is
        # timed after each of them. The last database then serves the other queries.
        imports = Timing()
        far_first = Timing()
        for run in range(import_runs):
            store = fresh_store(work / f"import-{run}.db", clock, settings)
            seconds, result = timed(importing(store))
            imports.times.append(seconds)
            if run < import_runs - 1:
                far_first.times.append(
                    timed(partial(events_json, store, far_start, far_end, clock.now()))[0]
                )
                store.close()
        near, found_near = repeat(
            partial(events_json, store, near_start, near_end, clock.now()), query_runs
        )
        indexed_before = count_indexed(store)
        far_first.times.append(
            timed(partial(events_json, store, far_start, far_end, clock.now()))[0]
        )
        extension = count_indexed(store) - indexed_before
        far, found_far = repeat(
            partial(events_json, store, far_start, far_end, clock.now()), query_runs
        )
        profiles = []
        if args.profile:
            profiles.append(
                profile(
                    partial(events_json, store, near_start, near_end, clock.now()),
                    "the 30-day query",
                )
            )
        paths = iter([changed_path, data_path] * import_runs)
        reimport, _ = repeat(lambda: importing(store, next(paths))(), import_runs)
        store.close()

        with fresh_store(work / "memory.db", clock, settings) as memory_store:
            import_peak = peak_memory(importing(memory_store))
        parse_peak = peak_memory(lambda: bare_parse(data))
        if args.profile:
            with fresh_store(work / "profile.db", clock, settings) as profile_store:
                profiles.insert(0, profile(importing(profile_store), "one import"))

        hostile = hostile_imports(work, clock, settings)
        # Issue 13: a refresh with one event changed, beside a full import (bench/reindex.py).
        refresh = measure_refresh(args.events, import_runs, 4 if args.quick else 10, work)

    # Untimed cross-check: both windows hold what recurring-ical-events says they hold.
    rie_far = parse_and_expand(data, far_start, far_end)
    near_check = differences(occurrence_keys_calshare(found_near), rie_near)
    far_check = differences(occurrence_keys_calshare(found_far), occurrence_keys_rie(rie_far))

    import_ratio = imports.best / parse.best
    speedup = expand.best / near.best
    targets = [
        Target("import / bare parse", "import_over_parse", import_ratio, "<=", TARGET_IMPORT_RATIO),
        Target(
            "parse+expand / events query",
            "parse_expand_over_events",
            speedup,
            ">=",
            TARGET_QUERY_SPEEDUP,
        ),
        Target("events query, 30 days", "events_30d_s", near.best, "<", TARGET_QUERY_SECONDS, "s"),
        Target(
            "refresh 1 event / full import",
            "refresh_over_import",
            refresh["ratio_best"],
            "<=",
            refresh["target"],
        ),
    ]

    lib = versions()
    print(
        f"Python {lib['python']} ({platform.python_implementation()}), icalendar "
        f"{lib['icalendar']}, recurring-ical-events {lib['recurring-ical-events']}, "
        f"sqlite-utils {lib['sqlite-utils']}, SQLite {lib['sqlite']}; {platform.platform()}"
    )
    print(
        f"now = {now:%Y-%m-%d %H:%M} UTC; 30-day window {near_start:%Y-%m-%d}..{near_end:%Y-%m-%d}"
        f" and {far_start:%Y-%m-%d}..{far_end:%Y-%m-%d} ({ZONE}); best of N, median beside it"
    )
    print()
    rows = [
        ("bare parse (icalendar)", parse, f"{vevents:,} VEVENTs"),
        ("parse + expand 30 days", expand, f"{len(rie_near):,} occurrences"),
        (
            "import (fresh database)",
            imports,
            f"{result.events:,} events, {result.series:,} series, "
            f"{result.occurrences:,} occurrences indexed",
        ),
        ("events 30 days, indexed", near, f"{len(found_near):,} occurrences"),
        (
            "events 30 days, 3 y ahead: 1st",
            far_first,
            f"extends the index by {extension:,} occurrences",
        ),
        ("events 30 days, 3 y ahead", far, f"{len(found_far):,} occurrences, steady state"),
        (
            "re-import, changed file",
            reimport,
            "same calendar, a header line changed: no event is re-read",
        ),
    ]
    print(f"{'measurement':<32}{'best':>12}{'median':>12}{'runs':>6}  detail")
    for label, timing, detail in rows:
        print(
            f"{label:<32}{_seconds(timing.best):>12}{_seconds(timing.median):>12}"
            f"{len(timing.times):>6}  {detail}"
        )
    print()
    print(
        f"peak memory: import {_megabytes(import_peak)} (tracemalloc), bare parse "
        f"{_megabytes(parse_peak)}; process peak RSS {_megabytes(max_rss_bytes())}"
    )
    print(
        f"occurrences, calshare vs recurring-ical-events: 30 days indexed {near_check}; "
        f"3 years ahead {far_check}"
    )
    if result.warnings:
        print(f"import warnings: {len(result.warnings)}, first: {result.warnings[0]}")
    print()
    print("hostile calendars (issue 11), one import each with the default caps")
    for item in hostile:
        print(
            f"  {item['name']:<42}{item['bytes']:>9,} B{_seconds(item['seconds']):>12}"
            f"  {item['outcome']}"
        )
        print(f"  {'':<42}{'before the caps:':>23}  {item['before']}")
    print()
    print("\n".join(refresh_report(refresh)))
    print()
    print("targets (best times)")
    for target in targets:
        print(
            f"  {target.label:<30}{target.show(target.value):>10}   target {target.rule():<12}"
            f"{'MET' if target.met else 'MISSED'}"
        )
    print(
        f"  (with medians instead: parse+expand / events query "
        f"{expand.median / near.median:.1f}x, import / bare parse "
        f"{imports.median / parse.median:.2f}x)"
    )

    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "calendar": {
            "events": args.events,
            "recurring_every": 10,
            "bounded": args.bounded,
            "bytes": len(data),
            "vevents": vevents,
            "now": now.isoformat(),
            "near_window": [near_start.isoformat(), near_end.isoformat()],
            "far_window": [far_start.isoformat(), far_end.isoformat()],
        },
        "quick": args.quick,
        "timings": {
            "bare_parse": parse.as_json(),
            "parse_expand_30d": expand.as_json(),
            "import": imports.as_json(),
            "events_30d": near.as_json(),
            "events_30d_far_first": far_first.as_json(),
            "events_30d_far": far.as_json(),
            "reimport": reimport.as_json(),
        },
        "counts": {
            "parse_expand_occurrences": len(rie_near),
            "events_30d_occurrences": len(found_near),
            "events_30d_far_occurrences": len(found_far),
            "imported_events": result.events,
            "imported_series": result.series,
            "indexed_occurrences": result.occurrences,
            "import_warnings": len(result.warnings),
            "index_extension_occurrences": extension,
            "near_window_vs_recurring_ical_events": near_check,
            "far_window_vs_recurring_ical_events": far_check,
        },
        "memory": {
            "import_peak_tracemalloc_bytes": import_peak,
            "bare_parse_peak_tracemalloc_bytes": parse_peak,
            "process_max_rss_bytes": max_rss_bytes(),
        },
        "ratios": {
            "import_over_parse": import_ratio,
            "parse_expand_over_events": speedup,
            "parse_expand_over_events_median": expand.median / near.median,
            "import_over_parse_median": imports.median / parse.median,
        },
        "targets": {target.key: target.as_json() for target in targets},
        "hostile": hostile,
        "refresh": refresh,
        "versions": lib,
        "platform": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    for text in profiles:
        print()
        print(text, end="")
    if args.sources:
        import sources  # bench/sources.py, beside this file

        return sources.main(["--quick"] if args.quick else [])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
