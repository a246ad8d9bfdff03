"""The privacy rule on series: a feed that keeps series shows nothing its level hides.

The properties of tests/test_privacy.py, on the series form of feeds (issue 15): every
calendar is made of series (RRULE, an RDATE or an EXDATE now and then) with overrides,
each master and override of its own CLASS, so a private override of a public series
and a public override of a private series both occur; secret text hides in every
place a producer can put it: the text fields of RRULE-bearing masters and of
overrides, X- properties and X- parameters, VALARM descriptions and summaries (the
owner's reminders), ATTACH and URL, and the UID. The calendar is
imported through the CLI and its feed written at every level (``feeds.feed_ics``),
and the raw text of each feed is searched for every token:

* a hidden field's token is absent; a shown field's token is present (not vacuous);
* X- properties, X- parameters, VALARMs and ATTACH never leave, at any level;
* the UID shows only at titles and details, and only where some component is not reduced;
* at free-busy every VEVENT holds only times, busy status and a stand-in summary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import icalendar
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calshare.calendars import get_calendar
from calshare.config import load_settings
from calshare.feeds import feed_ics
from calshare.levels import Level
from calshare.store import Store
from tests.conftest import NOW
from tests.support.feed_cases import Runner
from tests.support.privacy_tokens import (
    CLASSES,
    SHOWN,
    STAND_INS,
    TOKEN_PATTERN,
    ZONES,
    Tokens,
    _is_private,
    _texts,
    around_one_line,
)

# What a VEVENT of a free-busy feed may hold at all.
FREE_BUSY_PROPERTIES = frozenset(
    {
        "UID",
        "DTSTAMP",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "RECURRENCE-ID",
        "TRANSP",
        "X-MICROSOFT-CDO-BUSYSTATUS",
        "SUMMARY",
    }
)


@dataclass
class Part:
    """One master or override as generated, and its tokens by field."""

    uid: str
    uid_token: str
    private: bool
    tokens: dict[str, list[str]] = field(default_factory=dict)
    never: list[str] = field(default_factory=list)  # tokens no feed may show at any level


@dataclass
class Generated:
    ics: bytes
    masters: list[Part]
    overrides: list[Part]


def _extras(draw: st.DrawFn, pool: Tokens, event: icalendar.Event, part: Part) -> None:
    """Text in the places a level filter must never copy through."""
    token = pool.fresh()
    event.add(f"X-SECRET-{draw(st.sampled_from(['NOTE', 'ROOM']))}", f"note {token}")
    part.never.append(token)
    if draw(st.booleans()):
        token = pool.fresh()
        event.add("attach", f"https://files.example.org/{token}.pdf")
        part.never.append(token)
    if draw(st.booleans()):
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("trigger", timedelta(minutes=-15))
        token = pool.fresh()
        alarm.add("description", f"remember {token}")
        part.never.append(token)
        if draw(st.booleans()):
            token = pool.fresh()
            alarm.add("summary", f"alarm {token}")
            part.never.append(token)
        event.add_component(alarm)


@st.composite
def series_calendars(draw: st.DrawFn) -> Generated:
    pool = Tokens(draw)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//calshare tests//privacy series//EN")
    calendar.add("version", "2.0")
    masters: list[Part] = []
    overrides: list[Part] = []
    for _ in range(draw(st.integers(1, 4))):
        uid_text, uid_token = pool.text(around_one_line)
        uid = f"{uid_text}@example.org"
        day = date(2026, 11, 27) + timedelta(days=draw(st.integers(-20, 40)))
        all_day = draw(st.booleans())
        zone = draw(st.sampled_from(ZONES))
        if all_day:
            start: date | datetime = day
            end: date | datetime = day + timedelta(days=1)
        else:
            start = datetime(day.year, day.month, day.day, draw(st.integers(6, 20)), tzinfo=zone)
            end = start + timedelta(minutes=draw(st.sampled_from([30, 60, 90])))
        master, part = _component(draw, pool, uid, uid_token, start, end)
        count = draw(st.integers(3, 12))
        rule: dict[str, object] = {"freq": "weekly"}
        if draw(st.booleans()):
            rule["count"] = count
        master.add("rrule", rule)
        if draw(st.booleans()):
            master.add("exdate", start + timedelta(weeks=1))
        if draw(st.booleans()):
            master.add("rdate", start + timedelta(days=3))
        calendar.add_component(master)
        masters.append(part)
        for which in sorted(set(draw(st.lists(st.integers(2, count - 1), max_size=2)))):
            original = start + timedelta(weeks=which)
            shift = timedelta(days=1) if all_day else timedelta(hours=draw(st.integers(-2, 2)))
            override, moved = _component(
                draw, pool, uid, uid_token, original + shift, end + timedelta(weeks=which) + shift
            )
            override.add("recurrence-id", original)
            calendar.add_component(override)
            overrides.append(moved)
    calendar.add_missing_timezones()
    return Generated(calendar.to_ical(), masters, overrides)


def _component(
    draw: st.DrawFn, pool: Tokens, uid: str, uid_token: str, start: object, end: object
) -> tuple[icalendar.Event, Part]:
    klass = draw(st.sampled_from(CLASSES))
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", datetime(2026, 11, 1, tzinfo=UTC))
    if draw(st.integers(0, 3)) == 0:
        token = pool.fresh()  # an X- parameter on a time: never written
        event.add("dtstart", start, parameters={"X-LABEL": token})
        never = [token]
    else:
        event.add("dtstart", start)
        never = []
    event.add("dtend", end)
    if klass is not None:
        event.add("class", klass)
    part = Part(uid=uid, uid_token=uid_token, private=_is_private(klass), never=never)
    holder = _Holder(uid=uid, uid_token=uid_token, private=part.private)
    _texts(draw, pool, event, holder)  # type: ignore[arg-type]
    part.tokens = holder.tokens
    _extras(draw, pool, event, part)
    return event, part


@dataclass
class _Holder:
    """What tests/test_privacy.py's ``_texts`` records into (its Component's shape)."""

    uid: str
    uid_token: str
    private: bool
    summary: str | None = None
    tokens: dict[str, list[str]] = field(default_factory=dict)
    occurrences: int = 1


def _feeds(generated: Generated, directory: Path) -> dict[Level, str]:
    source = directory / "source.ics"
    source.write_bytes(generated.ics)
    run = Runner(directory / "calshare.db")
    run("calendar", "add", "cal", "--owner", "owner@example.org", "--tz", "Europe/Oslo")
    run("calendar", "import", "cal", str(source))
    with Store.open(directory / "calshare.db") as store:
        calendar = get_calendar(store.db, "cal")
        settings_ = load_settings(None, env={})
        return {
            level: feed_ics(store, settings_, calendar, level, NOW).decode().replace("\r\n ", "")
            for level in Level
        }


_counter = iter(range(1_000_000))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=series_calendars())
def test_series_feeds_show_nothing_their_level_hides(generated: Generated, tmp_path: Path) -> None:
    directory = tmp_path / f"case-{next(_counter)}"
    directory.mkdir()
    feeds = _feeds(generated, directory)
    for level, feed in feeds.items():
        for part in (*generated.masters, *generated.overrides):
            for token in part.never:
                assert token not in feed, f"{level}: a never-written text leaked"
            visible = frozenset() if part.private else SHOWN[level]
            for name, tokens in part.tokens.items():
                for token in tokens:
                    if name not in visible:
                        assert token not in feed, f"{level}: {name} leaked (private={part.private})"
                    elif part in generated.masters:
                        assert token in feed, f"{level}: {name} of a shown master is missing"
        for master in generated.masters:
            if not _uid_may_show(generated, master.uid, level):
                assert master.uid_token not in feed, f"{level}: UID leaked"
        assert "BEGIN:VALARM" not in feed and "ATTACH" not in feed
        assert not re.search(r"^X-(?!MICROSOFT-CDO-BUSYSTATUS|WR-|PUBLISHED-TTL)", feed, re.M)
        if level is Level.FREE_BUSY:
            calendar = icalendar.Calendar.from_ical(feed)
            for vevent in calendar.walk("VEVENT"):
                assert set(vevent) <= FREE_BUSY_PROPERTIES, sorted(vevent)
                assert str(vevent["SUMMARY"]) in STAND_INS
        assert not {token for token in TOKEN_PATTERN.findall(feed)} - _allowed_tokens(
            generated, level
        ), level


def _allowed_tokens(generated: Generated, level: Level) -> set[str]:
    """Every token a feed at ``level`` may hold: shown fields, shown UIDs."""
    allowed: set[str] = set()
    for part in (*generated.masters, *generated.overrides):
        visible = frozenset() if part.private else SHOWN[level]
        for name, tokens in part.tokens.items():
            if name in visible:
                allowed.update(tokens)
    for master in generated.masters:
        if _uid_may_show(generated, master.uid, level):
            allowed.add(master.uid_token)
    return allowed


def _uid_may_show(generated: Generated, uid: str, level: Level) -> bool:
    """As in tests/test_privacy.py: at titles and up, if some component with it is not reduced.

    A series written whole hides its UID wherever its master is reduced; one written
    as instances (its zone's clock is not the calendar's) shows a public override's.
    """
    if level is Level.FREE_BUSY:
        return False
    parts = (*generated.masters, *generated.overrides)
    return any(not part.private for part in parts if part.uid == uid)


def test_a_series_stays_one_vevent_with_its_overrides(tmp_path: Path) -> None:
    """The form itself: a private override of a public series binds by UID and RECURRENCE-ID."""
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
        "BEGIN:VEVENT\r\nUID:weekly-standup@example.org\r\nDTSTAMP:20261101T000000Z\r\n"
        "DTSTART;TZID=Europe/Oslo:20261102T090000\r\nDTEND;TZID=Europe/Oslo:20261102T093000\r\n"
        "RRULE:FREQ=WEEKLY\r\nEXDATE;TZID=Europe/Oslo:20261109T090000\r\n"
        "SUMMARY:Standup\r\nX-SECRET:QzzzzzzzZ\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nDESCRIPTION:QyyyyyyyY\r\n"
        "END:VALARM\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:weekly-standup@example.org\r\nDTSTAMP:20261101T000000Z\r\n"
        "RECURRENCE-ID;TZID=Europe/Oslo:20261116T090000\r\n"
        "DTSTART;TZID=Europe/Oslo:20261116T100000\r\nDTEND;TZID=Europe/Oslo:20261116T103000\r\n"
        "CLASS:PRIVATE\r\nSUMMARY:Doctor QxxxxxxxX\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    generated = Generated(text.encode(), [], [])
    feeds = _feeds(generated, tmp_path)
    details = icalendar.Calendar.from_ical(feeds[Level.DETAILS])
    vevents = details.walk("VEVENT")
    assert len(vevents) == 2
    master, override = vevents
    assert str(master["UID"]) == str(override["UID"]) == "weekly-standup@example.org"
    assert master["RRULE"].to_ical() == b"FREQ=WEEKLY"
    assert str(master["SUMMARY"]) == "Standup"
    assert override["RECURRENCE-ID"].dt == datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    assert str(override["SUMMARY"]) in STAND_INS  # private: reduced on its own
    for feed in feeds.values():
        assert "Qz" not in feed and "Qy" not in feed and "Qx" not in feed
    free_busy = icalendar.Calendar.from_ical(feeds[Level.FREE_BUSY]).walk("VEVENT")
    assert len(free_busy) == 2
    assert free_busy[0]["UID"] == free_busy[1]["UID"] != "weekly-standup@example.org"
    assert "weekly-standup" not in feeds[Level.FREE_BUSY]
