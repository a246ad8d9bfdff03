"""Feeds keep series, and every calendar app expands them to what ``calshare events`` gives.

Issue 15: a feed holds one VEVENT per series (RRULE, RDATE, EXDATE) and one per
override (RECURRENCE-ID), not an instance per VEVENT. For every importable calendar
of the corpus, the producer exports, the demo calendars and the 5,000-event bench
calendar, imported in a rotating set of zones, the feed at each level
(``feeds.feed_ics``, as subscribers and published links get it) is expanded over
two years from the tests' fixed today, independently, by recurring-ical-events,
by Mozilla's ical.js (in node) and by vobject, and must give exactly the
occurrences of ``calshare events --level L`` over those two years: start, end,
SUMMARY (at free-busy: the busy status in words), LOCATION and DESCRIPTION, moved,
cancelled, private instances and DST changes included, as multisets.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calshare.busy import Busy
from calshare.calendars import get_calendar
from calshare.config import load_settings
from calshare.feeds import feed_ics
from calshare.ics_writer import stand_in_summary
from calshare.levels import Level
from calshare.store import Store
from tests.conftest import NOW, ROOT
from tests.support import series_clients
from tests.support.corpus import ACCEPTED
from tests.support.feed_cases import DEMO, OWNER, ZONES, Runner
from tests.support.feed_cases import label as _label

FIRST = datetime.combine(NOW.date(), time(), UTC)
UNTIL = FIRST + timedelta(days=730)
BENCH = "bench/generate.py"
SOURCES = [*(_label(path) for path in [*ACCEPTED, *DEMO]), BENCH]
_PATHS = {_label(path): path for path in [*ACCEPTED, *DEMO]}
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

Row = series_clients.Row


@dataclass
class Feed:
    level: Level
    path: Path
    expected: list[Row]
    vevents: int
    recurring: int  # VEVENTs with an RRULE or RDATE


@dataclass
class Case:
    label: str
    zone: ZoneInfo
    feeds: list[Feed] = field(default_factory=list)


def _text(value: str | None) -> str | None:
    if not value:
        return None
    return _CONTROLS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def _expected(item: dict[str, Any]) -> Row:
    """An occurrence of ``calshare events --json`` as the feed must render it."""
    if item["all_day"]:
        start_day, end_day = date.fromisoformat(item["start"]), date.fromisoformat(item["end"])
        start, end = f"{start_day}", f"{max(end_day, start_day + timedelta(days=1))}"
    else:
        begin, finish = (datetime.fromisoformat(item[key]) for key in ("start", "end"))
        start = begin.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        end = max(begin, finish).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    summary = _text(item.get("summary")) or stand_in_summary(Busy(item["busy"]), "en")
    return start, end, summary, _text(item.get("location")), _text(item.get("description"))


def _source(label: str, directory: Path) -> Path:
    if label != BENCH:
        return _PATHS[label]
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from generate import generate  # the benchmark's own calendar
    finally:
        sys.path.remove(str(ROOT / "bench"))
    path = directory / "bench.ics"
    path.write_bytes(generate(n_events=5000, start=NOW.date() - timedelta(days=30)))
    return path


def _build(label: str, number: int, directory: Path) -> Case:
    directory.mkdir(parents=True)
    # the bench calendar in its own zone, as bench/feeds.py serves it
    zone = "Europe/Oslo" if label == BENCH else ZONES[number % len(ZONES)]
    run = Runner(directory / "calshare.db")
    run("calendar", "add", "cal", "--owner", OWNER, *(["--tz", zone] if zone else []))
    run("calendar", "import", "cal", str(_source(label, directory)))
    store = Store.open(directory / "calshare.db")
    try:
        calendar = get_calendar(store.db, "cal")
        case = Case(label, calendar.zoneinfo)
        settings = load_settings(None, env={})
        first, last = FIRST.date() - timedelta(days=1), UNTIL.date() + timedelta(days=1)
        for level in Level:
            data = feed_ics(store, settings, calendar, level, NOW)
            path = directory / f"feed-{level}.ics"
            path.write_bytes(data)
            expected = [
                _expected(item)
                for item in run.events(first, last, level)
                if series_clients.overlaps(*_expected(item)[:2], _ts(FIRST), _ts(UNTIL), case.zone)
            ]
            text = data.decode()
            recurring = len(
                re.findall(
                    r"\r\nBEGIN:VEVENT\r\n(?:(?!END:VEVENT).)*?\r\n(?:RRULE|RDATE)[;:]", text, re.S
                )
            )
            case.feeds.append(Feed(level, path, expected, text.count("BEGIN:VEVENT"), recurring))
    finally:
        store.close()
    return case


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass
class Corpus:
    cases: dict[str, Case]
    icaljs: dict[Path, list[Row]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("series")
    cases = {
        label: _build(label, number, root / f"{number:03d}") for number, label in enumerate(SOURCES)
    }
    feeds = [feed for case in cases.values() for feed in case.feeds]
    zones = {feed.path: case.zone for case in cases.values() for feed in case.feeds}
    found = series_clients.icaljs([feed.path for feed in feeds], _ts(FIRST), _ts(UNTIL), zones)
    return Corpus(cases, found)


BUSY_WORDS = frozenset(stand_in_summary(busy, "en") for busy in Busy)


def _problems(who: str, label: str, feed: Feed, rows: list[Row]) -> list[str]:
    if feed.level is Level.FREE_BUSY:
        texts = {row[2] for row in rows} - BUSY_WORDS
        texts |= {text for row in rows for text in row[3:] if text}
        if texts:
            return [f"{who}, {label} at {feed.level}: text shown {sorted(texts)[:3]}"]
    got = Counter(rows)
    want = Counter(feed.expected)
    if got == want:
        return []
    missing = sorted((want - got).elements())
    extra = sorted((got - want).elements())
    return [
        f"{who}, feed at {feed.level}: {len(rows)} occurrences, expected {len(feed.expected)};"
        f" missing {missing[:3]}, unexpected {extra[:3]}"
    ]


@pytest.mark.parametrize("label", SOURCES)
def test_apps_expand_the_feed_to_what_calshare_events_gives(corpus: Corpus, label: str) -> None:
    case = corpus.cases[label]
    first, until = _ts(FIRST), _ts(UNTIL)
    problems: list[str] = []
    for feed in case.feeds:
        data = feed.path.read_bytes()
        problems += _problems("ical.js", label, feed, corpus.icaljs[feed.path])
        problems += _problems(
            "vobject", label, feed, series_clients.vobject_rows(data, first, until, case.zone)
        )
        problems += _problems(
            "recurring-ical-events",
            label,
            feed,
            series_clients.recurring_rows(data, first, until, case.zone),
        )
    assert not problems, f"in {case.zone.key}:\n" + "\n".join(problems)


def test_series_are_written_as_series(corpus: Corpus) -> None:
    """Not vacuous, and the point of the issue: series stay series in feeds."""
    feeds = [feed for case in corpus.cases.values() for feed in case.feeds]
    assert sum(1 for feed in feeds if feed.recurring) >= 30, sum(1 for f in feeds if f.recurring)
    assert sum(len(feed.expected) for feed in feeds) > 20_000
    bench = corpus.cases[BENCH]
    for feed in bench.feeds:
        # 500 weekly series that never end, and the single events from 30 days ago on
        assert feed.recurring == 500, (feed.level, feed.recurring)
        assert feed.vevents < 3500, (feed.level, feed.vevents)
        assert len(feed.expected) > 50_000
