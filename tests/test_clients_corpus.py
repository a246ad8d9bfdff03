"""Every importable calendar, written by calshare, read by ical.js, vobject and libical.

Issue 10: real clients must see exactly the instants ``calshare events`` gives. For each
calendar of the icalendar corpus, the producer exports (tests/fixtures/exports) and the
demo calendars, imported in a rotating set of zones (southern DST, rules with changes at
26:00 or before midnight, no zone at all):

* a summer snapshot at details and a winter snapshot at free-busy (the .ics attached
  to ``calshare snapshot --out``), each 91 days around the calendar's latest event
  in May..August (November..February; else its latest event), against ``events`` for the same days;

every event with a SUMMARY (at free-busy: the busy status in words), and
compared as multisets of (start, end): UTC instants for timed events, dates for all-day
ones. Every file is read by one node process (ical.js) and one /usr/bin/python3 process
(libical) for the whole corpus; vobject reads in this process. Feeds keep series since
issue 15: tests/test_feed_series.py expands them with the same clients.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calshare.busy import Busy
from calshare.calendars import get_calendar
from calshare.ics_writer import stand_in_summary
from calshare.levels import Level
from calshare.store import Store
from tests.support import clients, snapshot_mail
from tests.support.corpus import ACCEPTED
from tests.support.feed_cases import DEMO, OWNER, ZONES, Runner, label

SOURCES = [*ACCEPTED, *DEMO]

Pair = tuple[str, str]


@dataclass
class Written:
    """One .ics calshare wrote, and what ``calshare events`` says it must hold."""

    what: str
    path: Path
    level: Level
    expected: list[Pair]


@dataclass
class Case:
    source: Path
    zone: str
    files: list[Written] = field(default_factory=list)
    events: int = 0  # in 1950..2049, as the owner sees them


def _instant(text: str, zone: ZoneInfo) -> datetime:
    if "T" in text:
        return datetime.fromisoformat(text).astimezone(UTC)
    return datetime.combine(date.fromisoformat(text), time(), zone).astimezone(UTC)


def _pair(item: dict[str, Any]) -> Pair:
    """An occurrence as the writer must render it: DTEND after DTSTART, or none."""
    if item["all_day"]:
        start, end = date.fromisoformat(item["start"]), date.fromisoformat(item["end"])
        return f"{start}", f"{max(end, start + timedelta(days=1))}"
    start, end = datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])
    end = max(start, end)  # an instant (or an end before the start) has no DTEND
    return (
        start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def _around(items: list[dict[str, Any]], months: tuple[int, ...], fallback: date) -> date:
    """The day of the latest event in ``months``, else of the latest event at all."""
    days = [(int(item["start"][5:7]) in months, item["start"][:10]) for item in items]
    return date.fromisoformat(max(days)[1]) if days else fallback


def _build(source: Path, number: int, directory: Path) -> Case:
    directory.mkdir(parents=True)
    zone = ZONES[number % len(ZONES)]
    run = Runner(directory / "calshare.db")
    run("calendar", "add", "cal", "--owner", OWNER, *(["--tz", zone] if zone else []))
    run("calendar", "import", "cal", str(source))
    store = Store.open(directory / "calshare.db")
    try:
        case = Case(source, get_calendar(store.db, "cal").zone)
    finally:
        store.close()
    everything = run.events(date(1950, 1, 1), date(2049, 12, 1))
    case.events = len(everything)
    summer = _around(everything, (5, 6, 7, 8), date(2027, 7, 1))
    winter = _around(everything, (11, 12, 1, 2), date(2027, 1, 15))
    for season, middle, level in (
        ("summer", summer, Level.DETAILS),
        ("winter", winter, Level.FREE_BUSY),
    ):
        first, last = middle - timedelta(days=45), middle + timedelta(days=45)
        eml = directory / f"{season}.eml"
        run(
            "snapshot", "cal", "--range", f"{first}..{last}", "--detail", str(level),
            "--out", str(eml),
        )  # fmt: skip
        path = directory / f"{season}.ics"
        path.write_bytes(snapshot_mail.read(eml.read_bytes()).ics)
        expected = [_pair(item) for item in run.events(first, last, level)]
        what = f"{season} snapshot {first}..{last} at {level}"
        case.files.append(Written(what, path, level, expected))
    return case


@dataclass
class Corpus:
    cases: dict[str, Case]
    icaljs: dict[Path, list[clients.Row]]
    libical: dict[Path, list[clients.Row]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("clients")
    cases = {
        label(source): _build(source, number, root / f"{number:03d}")
        for number, source in enumerate(SOURCES)
    }
    paths = [written.path for case in cases.values() for written in case.files]
    return Corpus(cases, clients.icaljs(paths), clients.libical(paths))


def test_the_corpus_is_large() -> None:
    assert len(SOURCES) >= 100, len(SOURCES)
    assert len(DEMO) >= 2


BUSY_WORDS = frozenset(stand_in_summary(busy, "en") for busy in Busy)


def _problems(who: str, written: Written, rows: list[clients.Row]) -> list[str]:
    # Every event has a SUMMARY (defect 10); at free-busy it is the busy status in words.
    blank = [row for row in rows if not row[3]]
    if blank:
        return [f"{who}, {written.what}: {len(blank)} events without SUMMARY, e.g. {blank[0]}"]
    if written.level is Level.FREE_BUSY and {row[3] for row in rows} - BUSY_WORDS:
        return [f"{who}, {written.what}: {sorted({row[3] for row in rows} - BUSY_WORDS)[:3]}"]
    got = Counter((start, end) for _, start, end, _ in rows)
    want = Counter(written.expected)
    if got == want:
        return []
    missing = sorted((want - got).elements())
    extra = sorted((got - want).elements())
    return [
        f"{who}, {written.what}: {len(rows)} events, expected {len(written.expected)}; "
        f"missing {missing[:3]}, unexpected {extra[:3]}"
    ]


@pytest.mark.parametrize("label", [label(source) for source in SOURCES])
def test_clients_read_the_instants_calshare_gives(corpus: Corpus, label: str) -> None:
    case = corpus.cases[label]
    problems: list[str] = []
    for written in case.files:
        problems += _problems("ical.js", written, corpus.icaljs[written.path])
        problems += _problems("libical", written, corpus.libical[written.path])
        problems += _problems("vobject", written, clients.vobject_rows(written.path.read_bytes()))
    assert not problems, f"in {case.zone}:\n" + "\n".join(problems)


def test_the_corpus_run_checks_something(corpus: Corpus) -> None:
    """Not vacuous: every calendar with events has them in some file, timed ones too."""
    files = [written for case in corpus.cases.values() for written in case.files]
    for case in corpus.cases.values():
        if case.events:
            assert any(written.expected for written in case.files), case.source
    held = [written for written in files if written.expected]
    timed = [w for w in held if any("T" in start for start, _ in w.expected)]
    assert sum(1 for case in corpus.cases.values() if case.events) >= 80
    assert len(held) >= 150 and len(timed) >= 120, (len(held), len(timed))
    assert sum(len(written.expected) for written in files) > 1000
