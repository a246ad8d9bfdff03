"""Incremental apply (calshare.reindex): the result is exactly a fresh import of the new bytes.

Every test runs on real SQLite files. The property: for random edits of a base
calendar (add, move, cancel, make private, delete, change RRULE, add an override,
re-order), ``apply_source(new)`` on a store holding the base leaves the same
events and occurrences (compared as rows without their ids) as a full import of
``new`` into an empty store; ``visible`` (and the version) moves iff those rows or
the shown metadata changed. Corpus calendars are bases too. Also: unchanged rows
keep their ids, the caps count the whole resulting calendar, and a DTSTAMP-only
change is no change.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import DEFAULT_START, generate, reference_now
from calshare.calendars import add_calendar, get_calendar
from calshare.clock import FixedClock
from calshare.config import Settings, load_settings
from calshare.errors import ExpansionLimit, ImportFailed
from calshare.reindex import apply_source
from calshare.store import Store
from tests.support.corpus import ACCEPTED
from tests.support.snapshot import AWKWARD
from tests.support.web import Web, http, web

__all__ = ["web"]  # the fixture

NAME = "work"
OWNER = "owner@example.org"
CLOCK = FixedClock(reference_now(DEFAULT_START))


# --- helpers


def open_store(path: Path) -> Store:
    return Store.open(path)


def fresh(tmp: Path, data: bytes, tz: str | None = None, label: str = "new.ics") -> Store:
    """A new store with the calendar imported from ``data`` in full."""
    store = open_store(tmp / f"fresh-{hashlib.sha256(data).hexdigest()[:12]}.db")
    add_calendar(store, CLOCK, NAME, OWNER, tz, "UTC")
    apply_source(store, plain_settings(), NAME, data, label, CLOCK)
    return store


def plain_settings() -> Settings:
    return load_settings(None, env={})


def _key(row: tuple[Any, ...]) -> str:
    return repr(row)


def events_rows(store: Store) -> list[tuple[Any, ...]]:
    calendar = get_calendar(store.db, NAME)
    rows = store.db.execute(
        """SELECT uid, recurrence_id, source_tz, line, recurs, busy, status, private, summary,
                  location, description, organizer, attendees, categories, url, ical
           FROM events WHERE calendar_id = ?""",
        [calendar.id],
    ).fetchall()
    return sorted((tuple(row) for row in rows), key=_key)


def occurrence_rows(store: Store) -> list[tuple[Any, ...]]:
    calendar = get_calendar(store.db, NAME)
    rows = store.db.execute(
        """SELECT e.uid, e.recurrence_id, e.line, o.start_ts, o.end_ts, o.start, o.end, o.all_day
           FROM occurrences o JOIN events e ON e.id = o.event_id WHERE o.calendar_id = ?""",
        [calendar.id],
    ).fetchall()
    return sorted((tuple(row) for row in rows), key=_key)


def meta(store: Store) -> tuple[Any, ...]:
    calendar = get_calendar(store.db, NAME)
    return (
        calendar.zone,
        calendar.source_name,
        calendar.vtimezones,
        calendar.event_count,
        calendar.indexed_from,
        calendar.indexed_until,
        calendar.source_sha256,
    )


def state(store: Store) -> tuple[Any, ...]:
    return (events_rows(store), occurrence_rows(store), meta(store))


def shown(store: Store) -> tuple[Any, ...]:
    """What outputs can show: the rows without line numbers, the title, zone and VTIMEZONEs."""
    events = sorted((row[:3] + row[4:] for row in events_rows(store)), key=_key)
    occurrences = sorted((row[:2] + row[3:] for row in occurrence_rows(store)), key=_key)
    return (events, occurrences, meta(store)[:3])


def assert_same_as_fresh(store: Store, tmp: Path, data: bytes, tz: str | None = None) -> None:
    expected = fresh(tmp, data, tz)
    try:
        assert events_rows(store) == events_rows(expected)
        assert occurrence_rows(store) == occurrence_rows(expected)
        assert meta(store) == meta(expected)
        # max_duration only ever grows incrementally: a bound for scans, never too small
        assert (
            get_calendar(store.db, NAME).max_duration
            >= get_calendar(expected.db, NAME).max_duration
        )
    finally:
        expected.close()


# --- an editable calendar


_BLOCK = re.compile(r"BEGIN:VEVENT\r\n.*?END:VEVENT\r\n", re.DOTALL)


@dataclass
class Editable:
    head: str
    events: list[str]
    tail: str

    @classmethod
    def of(cls, data: bytes) -> Editable:
        text = data.decode("utf-8")
        blocks = _BLOCK.findall(text)
        first = text.index(blocks[0])
        last = text.rindex(blocks[-1]) + len(blocks[-1])
        return cls(text[:first], blocks, text[last:])

    def bytes(self) -> bytes:
        return (self.head + "".join(self.events) + self.tail).encode("utf-8")


def _uid(block: str) -> str:
    match = re.search(r"^UID:(.*)\r$", block, re.MULTILINE)
    assert match
    return match[1]


def _set(block: str, name: str, value: str | None) -> str:
    """Replace (or add, or with None remove) a property of a VEVENT block."""
    lines = [line for line in block.split("\r\n") if not line.startswith(f"{name}:")]
    lines = [line for line in lines if not line.startswith(f"{name};")]
    if value is not None:
        lines.insert(-2, f"{name}{value}")
    return "\r\n".join(lines)


def _start(block: str) -> datetime:
    match = re.search(r"^DTSTART;TZID=Europe/Oslo:(\d{8}T\d{6})\r$", block, re.MULTILINE)
    assert match, block
    return datetime.strptime(match[1], "%Y%m%dT%H%M%S")


def edit(calendar: Editable, kind: str, pick: int) -> None:
    """One edit of the kinds a calendar's owner makes, on the event ``pick`` chooses."""
    masters = [i for i, block in enumerate(calendar.events) if "RECURRENCE-ID" not in block]
    index = masters[pick % len(masters)]
    block = calendar.events[index]
    uid = _uid(block)
    if kind == "add":
        start = datetime(2026, 3, 2, 8) + timedelta(days=pick % 200, minutes=15 * (pick % 30))
        calendar.events.insert(
            pick % (len(calendar.events) + 1),
            "BEGIN:VEVENT\r\n"
            f"UID:added-{pick}-{len(calendar.events)}@test\r\n"
            "DTSTAMP:20260101T000000Z\r\n"
            f"DTSTART;TZID=Europe/Oslo:{start:%Y%m%dT%H%M%S}\r\n"
            f"DTEND;TZID=Europe/Oslo:{start + timedelta(hours=1):%Y%m%dT%H%M%S}\r\n"
            "SUMMARY:Added\r\nEND:VEVENT\r\n",
        )
    elif kind == "move":
        start = _start(block) + timedelta(days=pick % 9 - 4, hours=1)
        block = _set(block, "DTSTART", f";TZID=Europe/Oslo:{start:%Y%m%dT%H%M%S}")
        block = _set(
            block, "DTEND", f";TZID=Europe/Oslo:{start + timedelta(minutes=45):%Y%m%dT%H%M%S}"
        )
        calendar.events[index] = block
    elif kind == "cancel":
        calendar.events[index] = _set(block, "STATUS", ":CANCELLED")
    elif kind == "private":
        calendar.events[index] = _set(block, "CLASS", ":PRIVATE")
    elif kind == "delete":
        calendar.events = [b for b in calendar.events if _uid(b) != uid]
    elif kind == "rrule":
        rule = ":FREQ=DAILY;COUNT=5" if "RRULE" in block else ":FREQ=WEEKLY;COUNT=3"
        calendar.events[index] = _set(block, "RRULE", rule)
    elif kind == "override":
        if "RRULE" not in block:
            block = _set(block, "RRULE", ":FREQ=WEEKLY")
            calendar.events[index] = block
        instance = _start(block) + timedelta(weeks=pick % 5)
        moved = instance + timedelta(hours=2)
        override = _set(block, "RRULE", None)
        override = _set(override, "RECURRENCE-ID", f";TZID=Europe/Oslo:{instance:%Y%m%dT%H%M%S}")
        override = _set(override, "DTSTART", f";TZID=Europe/Oslo:{moved:%Y%m%dT%H%M%S}")
        override = _set(
            override, "DTEND", f";TZID=Europe/Oslo:{moved + timedelta(hours=1):%Y%m%dT%H%M%S}"
        )
        override = _set(override, "SUMMARY", ":Moved this once")
        calendar.events.insert(index + 1, override)
    elif kind == "reorder":
        calendar.events.append(calendar.events.pop(index))
    else:  # pragma: no cover - the strategy names only the kinds above
        raise AssertionError(kind)


KINDS = ("add", "move", "cancel", "private", "delete", "rrule", "override", "reorder")
BASE = generate(n_events=40, recurring_every=4)


@pytest.fixture(scope="module")
def base_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding BASE, imported in full; each example works on a copy."""
    path = tmp_path_factory.mktemp("base") / "base.db"
    with open_store(path) as store:
        add_calendar(store, CLOCK, NAME, OWNER, None, "UTC")
        applied = apply_source(store, plain_settings(), NAME, BASE, "base.ics", CLOCK)
        assert applied.full and applied.added == 40 and applied.visible
        with store.db.ensure_autocommit_on():
            store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def copy_of(base: Path, tmp: Path) -> Store:
    target = tmp / "work.db"
    shutil.copyfile(base, target)
    return open_store(target)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(KINDS), st.integers(min_value=0, max_value=10**6)),
        max_size=5,
    )
)
def test_apply_equals_a_fresh_import_of_the_new_calendar(
    base_db: Path, tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, int]]
) -> None:
    tmp = tmp_path_factory.mktemp("example")
    calendar = Editable.of(BASE)
    for kind, pick in edits:
        edit(calendar, kind, pick)
    new = calendar.bytes()
    with copy_of(base_db, tmp) as store:
        before = shown(store)
        version = get_calendar(store.db, NAME).version
        applied = apply_source(store, plain_settings(), NAME, new, "new.ics", CLOCK)
        assert_same_as_fresh(store, tmp, new)
        after = shown(store)
        assert applied.visible == (before != after), (edits, applied)
        assert get_calendar(store.db, NAME).version == version + int(applied.visible)
        assert applied.version == version + int(applied.visible)
        if new != BASE:
            assert not applied.full  # a few edits of 40 events: the incremental path
        uids = {_uid(block) for block in calendar.events}
        assert applied.added + applied.changed + applied.unchanged == len(uids)


def _corpus_variants(data: bytes) -> Iterator[tuple[str, bytes]]:
    """The calendar with its first VEVENT gone, its last one changed, its last moved first."""
    text = data.decode("utf-8", "surrogateescape")
    lines = re.split(r"(?<=\n)", text)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\r\n").upper() == "BEGIN:VEVENT"]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\r\n").upper() == "END:VEVENT"]
    if not starts or len(starts) != len(ends):
        return
    first = (starts[0], ends[0] + 1)
    yield (
        "first gone",
        "".join(lines[: first[0]] + lines[first[1] :]).encode("utf-8", "surrogateescape"),
    )
    last = ends[-1]
    eol = "\r\n" if lines[last].endswith("\r\n") else "\n"
    changed = [*lines[:last], f"X-CALSHARE-TEST:changed{eol}", *lines[last:]]
    yield "last changed", "".join(changed).encode("utf-8", "surrogateescape")
    if len(starts) > 1:
        block = lines[starts[-1] : ends[-1] + 1]
        rest = lines[: starts[-1]] + lines[ends[-1] + 1 :]
        moved = rest[: starts[0]] + block + rest[starts[0] :]
        yield "last moved first", "".join(moved).encode("utf-8", "surrogateescape")


EDITABLE = [path for path in ACCEPTED if list(_corpus_variants(path.read_bytes()))]


def test_most_corpus_calendars_are_bases() -> None:
    assert len(EDITABLE) >= 80, [path.name for path in EDITABLE]


@pytest.mark.parametrize("path", EDITABLE, ids=lambda path: path.name)
def test_corpus_calendars_apply_like_a_fresh_import(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small files: one changed event is often most of them; take the incremental path anyway.
    monkeypatch.setattr("calshare.reindex.FULL_SHARE", 1.0)
    data = path.read_bytes()
    variants = list(_corpus_variants(data))
    for number, (what, new) in enumerate(variants):
        tmp = tmp_path / str(number)
        tmp.mkdir()
        with fresh(tmp, data, label=path.name) as store:
            before = shown(store)
            try:
                applied = apply_source(store, plain_settings(), NAME, new, path.name, CLOCK)
            except (ExpansionLimit, ImportFailed) as exc:
                # the same bytes must be refused by a full import too
                with pytest.raises(type(exc)):
                    fresh(tmp, new)
                continue
            assert_same_as_fresh(store, tmp, new)
            assert applied.visible == (before != shown(store)), what


# --- what changes and what stays


def _ids(store: Store) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for row_id, uid in store.db.execute("SELECT id, uid FROM events ORDER BY id"):
        found.setdefault(uid, []).append(row_id)
    return found


def test_one_changed_event_rewrites_only_its_rows(tmp_path: Path) -> None:
    with fresh(tmp_path, BASE) as store:
        before = _ids(store)
        calendar = Editable.of(BASE)
        series = next(i for i, block in enumerate(calendar.events) if "RRULE" in block)
        uid = _uid(calendar.events[series])
        edit(calendar, "override", series)
        applied = apply_source(store, plain_settings(), NAME, calendar.bytes(), "new", CLOCK)
        assert (applied.added, applied.changed, applied.removed) == (0, 1, 0)
        assert applied.unchanged == len(before) - 1 and applied.visible and not applied.full
        after = _ids(store)
        assert len(after[uid]) == 2 and set(after[uid]).isdisjoint(before[uid])
        assert {u: ids for u, ids in after.items() if u != uid} == {
            u: ids for u, ids in before.items() if u != uid
        }


def test_a_reordered_or_restamped_calendar_keeps_its_version(tmp_path: Path) -> None:
    """Google writes every DTSTAMP as the time of the request; order is no change either."""
    with fresh(tmp_path, BASE) as store:
        version = get_calendar(store.db, NAME).version
        before = shown(store)
        calendar = Editable.of(BASE)
        calendar.events.reverse()
        calendar.events = [
            block.replace("DTSTAMP:20260101T000000Z", "DTSTAMP:20261204T184500Z")
            for block in calendar.events
        ]
        applied = apply_source(store, plain_settings(), NAME, calendar.bytes(), "new", CLOCK)
        assert not applied.visible and not applied.full
        assert (applied.added, applied.changed, applied.removed) == (0, 0, 0)
        assert get_calendar(store.db, NAME).version == version
        assert shown(store) == before
        # line numbers follow the file
        expected = fresh(tmp_path, calendar.bytes())
        try:
            lines = sorted(row[3] for row in events_rows(store))
            assert lines == sorted(row[3] for row in events_rows(expected))
        finally:
            expected.close()


def test_a_changed_vtimezone_or_zone_reads_everything_again(tmp_path: Path) -> None:
    with fresh(tmp_path, BASE) as store:
        version = get_calendar(store.db, NAME).version
        new = BASE.replace(b"TZNAME:CEST", b"TZNAME:CEST-renamed")
        applied = apply_source(store, plain_settings(), NAME, new, "new", CLOCK)
        assert applied.full and applied.visible and applied.version == version + 1
        assert_same_as_fresh(store, tmp_path, new)
        zoned = new.replace(
            b"X-WR-CALNAME:Benchmark\r\n", b"X-WR-CALNAME:Benchmark\r\nX-WR-TIMEZONE:Asia/Tokyo\r\n"
        )
        applied = apply_source(store, plain_settings(), NAME, zoned, "new", CLOCK)
        assert (
            applied.full and applied.visible and get_calendar(store.db, NAME).zone == "Asia/Tokyo"
        )
        assert_same_as_fresh(store, tmp_path, zoned)


def test_a_new_title_moves_the_version_and_nothing_else(tmp_path: Path) -> None:
    with fresh(tmp_path, BASE) as store:
        ids = _ids(store)
        new = BASE.replace(b"X-WR-CALNAME:Benchmark", b"X-WR-CALNAME:Team")
        applied = apply_source(store, plain_settings(), NAME, new, "new", CLOCK)
        assert applied.visible and not applied.full and applied.changed == 0
        assert get_calendar(store.db, NAME).source_name == "Team"
        assert _ids(store) == ids


def test_the_caps_count_the_unchanged_events_too(tmp_path: Path) -> None:
    """An incremental apply refuses what a full import of the same bytes refuses."""
    big = generate(n_events=400)  # the cap cannot be set below 1,000
    with fresh(tmp_path, big) as store:
        stored = store.db.execute("SELECT COUNT(*) FROM occurrences").fetchone()[0]
        assert stored > 1000
        calendar = Editable.of(big)
        edit(calendar, "add", 7)  # one more single event: one occurrence more
        new = calendar.bytes()
        capped = load_settings(
            None, env={"CALSHARE_CALENDARS_MAX_OCCURRENCES_PER_IMPORT": str(stored)}
        )
        with pytest.raises(ExpansionLimit, match="max_occurrences_per_import"):
            apply_source(store, capped, NAME, new, "new", CLOCK)
        other = open_store(tmp_path / "other.db")
        add_calendar(other, CLOCK, NAME, OWNER, None, "UTC")
        with pytest.raises(ExpansionLimit, match="max_occurrences_per_import"):
            apply_source(other, capped, NAME, new, "new", CLOCK)
        other.close()
        # nothing changed; with room for one more, it goes through incrementally
        assert store.db.execute("SELECT COUNT(*) FROM occurrences").fetchone()[0] == stored
        roomy = load_settings(
            None, env={"CALSHARE_CALENDARS_MAX_OCCURRENCES_PER_IMPORT": str(stored + 1)}
        )
        applied = apply_source(store, roomy, NAME, new, "new", CLOCK)
        assert applied.added == 1 and not applied.full


def test_a_calendar_changed_meanwhile_is_planned_again(tmp_path: Path) -> None:
    """An index extension between reading and writing: the plan is dropped, not half-applied."""
    from calshare.index import occurrences_between
    from calshare.reindex import _plan, _write

    with fresh(tmp_path, BASE) as store:
        calendar = Editable.of(BASE)
        edit(calendar, "rrule", 3)
        new = calendar.bytes()
        before = get_calendar(store.db, NAME)
        plan = _plan(store, plain_settings(), CLOCK, before, new, "new")
        far = CLOCK.now() + timedelta(days=3 * 365)
        occurrences_between(store, before, far, far + timedelta(days=30), now=CLOCK.now())
        assert get_calendar(store.db, NAME).indexed_until != before.indexed_until
        assert _write(store, before, plan, "digest", None, CLOCK) is None
        # apply_source plans again from the extended index and matches a fresh import's rows
        apply_source(store, plain_settings(), NAME, new, "new", CLOCK)
        expected = fresh(tmp_path, new)
        try:
            assert events_rows(store) == events_rows(expected)
            low, high = (
                (get_calendar(expected.db, NAME).indexed_from or 0),
                (get_calendar(expected.db, NAME).indexed_until or 0),
            )

            def inside(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
                return [row for row in rows if low <= row[3] < high]

            assert inside(occurrence_rows(store)) == inside(occurrence_rows(expected))
        finally:
            expected.close()


def test_calendar_import_of_a_changed_file_uses_the_same_path(
    cli: Any, tmp_path: Path, db_path: Path
) -> None:
    """`calendar import` of an edited file: only the changed UID gets new rows."""
    first = tmp_path / "a.ics"
    first.write_bytes(BASE)
    assert cli("calendar", "add", NAME, "--owner", OWNER).code == 0
    assert cli("calendar", "import", NAME, str(first)).code == 0
    with open_store(db_path) as store:
        before = _ids(store)
    calendar = Editable.of(BASE)
    edit(calendar, "cancel", 11)
    cancelled = next(_uid(block) for block in calendar.events if "CANCELLED" in block)
    first.write_bytes(calendar.bytes())
    result = cli("calendar", "import", NAME, str(first), "--json")
    assert result.code == 0, result.err
    assert result.json()["events"] == 40
    listed = cli("calendar", "list", "--json").json()
    assert [item["version"] for item in listed] == [2]
    with open_store(db_path) as store:
        after = _ids(store)
    assert after[cancelled] != before[cancelled]
    del after[cancelled], before[cancelled]
    assert after == before


def test_feeds_stay_304_across_a_refresh_that_changes_nothing_shown(web: Web) -> None:
    """Re-ordered events and new DTSTAMPs: the feed's ETag and Last-Modified stay."""
    url = web.accept_by_mail("bob@example.org")
    first = http(url)
    assert first.status == 200
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    web.clock.advance(timedelta(minutes=5))
    calendar = Editable.of(AWKWARD)
    calendar.events.reverse()
    calendar.events = [
        block.replace("DTSTAMP:20270101T000000Z", "DTSTAMP:20270102T101500Z")
        for block in calendar.events
    ]
    web.reimport(calendar.bytes())
    assert http(url, **{"If-None-Match": etag}).status == 304
    assert http(url, **{"If-Modified-Since": modified}).status == 304
    # a change a viewer sees: a new body, a new ETag
    web.reimport(calendar.bytes().replace(b"Floating coffee", b"Floating tea"))
    changed = http(url, **{"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert b"Floating tea" in changed.body


def test_an_event_without_uid_is_named_by_its_whole_text_dtstamp_included(
    tmp_path: Path,
) -> None:
    """Its stand-in UID is a digest of its text: a new DTSTAMP is a new event there."""
    calendar = Editable.of(BASE)
    calendar.events.append(
        "BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART;TZID=Europe/Oslo:20260320T100000\r\nDTEND;TZID=Europe/Oslo:20260320T110000\r\n"
        "SUMMARY:No UID\r\nEND:VEVENT\r\n"
    )
    base = calendar.bytes()
    with fresh(tmp_path, base) as store:
        new = base.replace(
            b"DTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Oslo:20260320T100000",
            b"DTSTAMP:20261204T120000Z\r\nDTSTART;TZID=Europe/Oslo:20260320T100000",
        )
        assert new != base
        applied = apply_source(store, plain_settings(), NAME, new, "new", CLOCK)
        assert applied.visible and (applied.added, applied.removed) == (1, 1)
        assert_same_as_fresh(store, tmp_path, new)
