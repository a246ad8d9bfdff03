"""Import and the occurrence index: time zones, recurrence, busy status, horizon, atomicity."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calshare.clock import FixedClock
from tests.conftest import CliResult
from tests.support.ics import calendar

Cli = Callable[..., CliResult]


@pytest.fixture
def load(cli: Cli, tmp_path: Path) -> Callable[..., CliResult]:
    """Add calendar NAME (zone TZ) and import DATA into it; returns the import's result."""

    def run(data: bytes, *, name: str = "cal", tz: str | None = "Europe/Oslo") -> CliResult:
        source = tmp_path / f"{name}.ics"
        source.write_bytes(data)
        if cli("calendar", "list", "--json").json() == [] or name not in {
            row["name"] for row in cli("calendar", "list", "--json").json()
        }:
            args = ["calendar", "add", name, "--owner", "owner@example.org"]
            added = cli(*args, *(["--tz", tz] if tz else []))
            assert added.code == 0, added.err
        result = cli("calendar", "import", name, str(source))
        assert result.code == 0, result.err
        return result

    return run


def events(cli: Cli, start: str, end: str, *extra: str, name: str = "cal") -> list[dict]:
    result = cli("events", name, "--from", start, "--to", end, "--json", *extra)
    assert result.code == 0, result.err
    return result.json()


def test_weekly_series_keeps_local_time_across_dst(cli: Cli, load) -> None:
    load(
        calendar(
            "UID:weekly\nSUMMARY:Planning\n"
            "DTSTART;TZID=Europe/Oslo:20260316T090000\nDTEND;TZID=Europe/Oslo:20260316T100000\n"
            "RRULE:FREQ=WEEKLY;COUNT=4"
        )
    )
    starts = [event["start"] for event in events(cli, "2026-03-01", "2026-04-30")]
    assert starts == [
        "2026-03-16T09:00:00+01:00",
        "2026-03-23T09:00:00+01:00",
        "2026-03-30T09:00:00+02:00",  # summer time began on 29 March
        "2026-04-06T09:00:00+02:00",
    ]


def test_event_across_midnight_shows_on_both_days(cli: Cli, load) -> None:
    load(
        calendar(
            "UID:late\nSUMMARY:Release\n"
            "DTSTART;TZID=Europe/Oslo:20261205T233000\nDTEND;TZID=Europe/Oslo:20261206T003000"
        )
    )
    assert [e["uid"] for e in events(cli, "2026-12-05", "2026-12-05")] == ["late"]
    assert [e["uid"] for e in events(cli, "2026-12-06", "2026-12-06")] == ["late"]
    assert events(cli, "2026-12-07", "2026-12-07") == []
    (late,) = events(cli, "2026-12-06", "2026-12-06")
    assert late["end"] == "2026-12-06T00:30:00+01:00"


def test_all_day_events_use_dates_with_exclusive_end(cli: Cli, load) -> None:
    load(
        calendar(
            "UID:trip\nSUMMARY:Trip\nDTSTART;VALUE=DATE:20261210\nDTEND;VALUE=DATE:20261213",
            "UID:holiday\nSUMMARY:Holiday\nDTSTART;VALUE=DATE:20261231",
        )
    )
    found = {e["uid"]: e for e in events(cli, "2026-12-01", "2026-12-31")}
    assert found["trip"] == found["trip"] | {
        "start": "2026-12-10",
        "end": "2026-12-13",
        "all_day": True,
    }
    assert found["holiday"]["start"] == "2026-12-31" and found["holiday"]["end"] == "2027-01-01"
    # The last day of a trip is the 12th: the 13th is free.
    assert [e["uid"] for e in events(cli, "2026-12-12", "2026-12-12")] == ["trip"]
    assert events(cli, "2026-12-13", "2026-12-13") == []


def test_floating_time_is_read_in_the_calendars_zone(cli: Cli, load) -> None:
    load(
        calendar("UID:float\nSUMMARY:Call\nDTSTART:20261201T090000\nDTEND:20261201T093000"),
        tz="America/New_York",
    )
    (call,) = events(cli, "2026-12-01", "2026-12-01")
    assert call["start"] == "2026-12-01T09:00:00-05:00"


def test_moved_and_cancelled_instances(cli: Cli, load) -> None:
    load(
        calendar(
            "UID:standup\nSUMMARY:Stand-up\nRRULE:FREQ=DAILY;COUNT=5\n"
            "DTSTART;TZID=Europe/Oslo:20261207T090000\nDTEND;TZID=Europe/Oslo:20261207T091500\n"
            "EXDATE;TZID=Europe/Oslo:20261209T090000",
            "UID:standup\nRECURRENCE-ID;TZID=Europe/Oslo:20261208T090000\nSUMMARY:Stand-up (late)\n"
            "DTSTART;TZID=Europe/Oslo:20261208T110000\nDTEND;TZID=Europe/Oslo:20261208T111500",
            "UID:standup\nRECURRENCE-ID;TZID=Europe/Oslo:20261210T090000\nSTATUS:CANCELLED\n"
            "SUMMARY:Stand-up\n"
            "DTSTART;TZID=Europe/Oslo:20261210T090000\nDTEND;TZID=Europe/Oslo:20261210T091500",
        )
    )
    found = events(cli, "2026-12-07", "2026-12-11")
    assert [(e["start"], e["summary"], e["busy"]) for e in found] == [
        ("2026-12-07T09:00:00+01:00", "Stand-up", "busy"),
        ("2026-12-08T11:00:00+01:00", "Stand-up (late)", "busy"),
        ("2026-12-10T09:00:00+01:00", "Stand-up", "free"),
        ("2026-12-11T09:00:00+01:00", "Stand-up", "busy"),
    ]
    assert found[1]["recurrence_id"] == "20261208T080000Z"
    assert found[2]["status"] == "cancelled"


@pytest.mark.parametrize(
    ("properties", "busy"),
    [
        ("", "busy"),
        ("TRANSP:TRANSPARENT", "free"),
        ("STATUS:TENTATIVE", "tentative"),
        ("STATUS:CANCELLED\nX-MICROSOFT-CDO-BUSYSTATUS:BUSY", "free"),
        ("X-MICROSOFT-CDO-BUSYSTATUS:OOF", "oof"),
        ("X-MICROSOFT-CDO-BUSYSTATUS:WORKINGELSEWHERE", "elsewhere"),
        ("X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE", "tentative"),
        ("X-MICROSOFT-CDO-BUSYSTATUS:FREE", "free"),
        ("TRANSP:TRANSPARENT\nX-MICROSOFT-CDO-BUSYSTATUS:OOF", "oof"),
    ],
)
def test_busy_status_mapping(cli: Cli, load, properties: str, busy: str) -> None:
    body = "UID:e\nSUMMARY:x\nDTSTART:20261201T090000Z\nDTEND:20261201T100000Z"
    load(calendar(body + ("\n" + properties if properties else "")))
    (event,) = events(cli, "2026-12-01", "2026-12-01")
    assert event["busy"] == busy


def test_google_utc_series_is_repaired_to_local_time(cli: Cli, load) -> None:
    """Google writes UTC times plus X-WR-TIMEZONE; the meeting stays at 09:00 Oslo time."""
    load(
        calendar(
            "UID:g1@google.com\nSUMMARY:Weekly\nDTSTART:20260319T080000Z\n"
            "DTEND:20260319T090000Z\nRRULE:FREQ=WEEKLY;COUNT=3",
            header="X-WR-TIMEZONE:Europe/Oslo",
            timezones="",
        ),
        tz=None,
    )
    starts = [e["start"] for e in events(cli, "2026-03-01", "2026-04-30")]
    assert starts == [
        "2026-03-19T09:00:00+01:00",
        "2026-03-26T09:00:00+01:00",
        "2026-04-02T09:00:00+02:00",
    ]
    (listed,) = cli("calendar", "list", "--json").json()
    assert listed["zone"] == "Europe/Oslo"  # taken from X-WR-TIMEZONE: no --tz was given


def test_owner_zone_wins_over_the_sources(cli: Cli, load) -> None:
    load(
        calendar("UID:a\nDTSTART:20261201T090000Z", header="X-WR-TIMEZONE:Asia/Tokyo"),
        tz="Europe/Oslo",
    )
    assert cli("calendar", "list", "--json").json()[0]["zone"] == "Europe/Oslo"


def test_unbounded_series_is_extended_when_a_query_reaches_past_the_horizon(
    cli: Cli, load, store
) -> None:
    load(
        calendar(
            "UID:forever\nSUMMARY:Forever\nRRULE:FREQ=WEEKLY\n"
            "DTSTART;TZID=Europe/Oslo:20260105T090000\nDTEND;TZID=Europe/Oslo:20260105T100000"
        )
    )

    def indexed() -> int:
        return store.db.execute("SELECT count(*) FROM occurrences").fetchone()[0]

    before = indexed()
    assert 50 < before < 80  # about a year and a month of Mondays around "now"
    far = events(cli, "2031-01-01", "2031-01-31")
    assert [e["start"][:10] for e in far] == [
        "2031-01-06",
        "2031-01-13",
        "2031-01-20",
        "2031-01-27",
    ]
    assert indexed() > before + 150  # every Monday up to 2031, and some slack
    again = indexed()
    assert events(cli, "2031-01-01", "2031-01-31") == far
    assert indexed() == again  # the second query is a pure lookup
    # Going back before the horizon works too, down to the series' first instance.
    first = events(cli, "2026-01-01", "2026-01-11")
    assert [e["start"] for e in first] == ["2026-01-05T09:00:00+01:00"]


def test_single_events_outside_the_horizon_need_no_extension(cli: Cli, load, store) -> None:
    load(calendar("UID:old\nSUMMARY:Old\nDTSTART:19990101T100000Z\nDTEND:19990101T110000Z"))
    horizon = store.db.execute("SELECT indexed_from FROM calendars").fetchone()[0]
    assert [e["uid"] for e in events(cli, "1999-01-01", "1999-01-01")] == ["old"]
    assert store.db.execute("SELECT indexed_from FROM calendars").fetchone()[0] == horizon


def test_reimport_replaces_events_and_bumps_the_version(cli: Cli, load) -> None:
    load(calendar("UID:a\nSUMMARY:First\nDTSTART:20261201T090000Z"))
    load(calendar("UID:b\nSUMMARY:Second\nDTSTART:20261202T090000Z"))
    assert [e["uid"] for e in events(cli, "2026-12-01", "2026-12-31")] == ["b"]
    assert cli("calendar", "list", "--json").json()[0]["version"] == 2


def test_owner_sees_private_items_and_a_level_hides_them(cli: Cli, load) -> None:
    load(
        calendar(
            "UID:p\nSUMMARY:Doctor\nDESCRIPTION:Blood test\nCLASS:PRIVATE\n"
            "DTSTART:20261201T090000Z\nDTEND:20261201T100000Z",
            "UID:c\nSUMMARY:Review\nLOCATION:Room 1\nDESCRIPTION:Agenda\n"
            "ATTENDEE;CN=Bob:mailto:bob@example.org\nDTSTART:20261201T110000Z",
        )
    )
    owner = events(cli, "2026-12-01", "2026-12-01")
    assert owner[0]["summary"] == "Doctor" and owner[0]["private"] is True
    details = events(cli, "2026-12-01", "2026-12-01", "--level", "details")
    assert set(details[0]) == {"uid", "start", "end", "all_day", "busy", "recurrence_id"} - {
        "recurrence_id"
    }
    assert details[1]["attendees"] == ["Bob <bob@example.org>"]
    titles = events(cli, "2026-12-01", "2026-12-01", "--level", "titles")
    assert titles[1]["summary"] == "Review" and titles[1]["location"] == "Room 1"
    assert "description" not in titles[1] and "attendees" not in titles[1]
    with_private = events(cli, "2026-12-01", "2026-12-01", "--level", "titles", "--include-private")
    assert with_private[0]["summary"] == "Doctor" and "description" not in with_private[0]


def test_an_owner_can_hold_several_calendars(cli: Cli, load) -> None:
    load(calendar("UID:w\nSUMMARY:Work\nDTSTART:20261201T090000Z"), name="project")
    load(calendar("UID:f\nSUMMARY:Football\nDTSTART:20261201T170000Z"), name="family")
    listed = cli("calendar", "list", "--json").json()
    assert [(c["name"], c["owner"], c["events"]) for c in listed] == [
        ("family", "owner@example.org", 1),
        ("project", "owner@example.org", 1),
    ]
    assert [e["uid"] for e in events(cli, "2026-12-01", "2026-12-01", name="family")] == ["f"]


def test_relative_dates_follow_the_clock(cli: Cli, load, clock: FixedClock) -> None:
    load(calendar("UID:t\nSUMMARY:Tomorrow\nDTSTART:20261127T120000Z"))
    assert [e["uid"] for e in events(cli, "tomorrow", "tomorrow")] == ["t"]
    assert events(cli, "today", "today") == []
    clock.advance(timedelta(days=1))
    assert [e["uid"] for e in events(cli, "today", "+0")] == ["t"]


def test_an_iso_datetime_window_is_exact(cli: Cli, load) -> None:
    load(calendar("UID:x\nDTSTART:20261201T090000Z\nDTEND:20261201T100000Z"))
    assert events(cli, "2026-12-01T10:00:00+00:00", "2026-12-01T11:00:00+00:00") == []
    assert len(events(cli, "2026-12-01T09:59:00+00:00", "2026-12-01T11:00:00+00:00")) == 1
    assert datetime.fromisoformat("2026-12-01T09:00:00+00:00").tzinfo == UTC


def test_a_long_series_outside_the_horizon_is_found_on_the_first_query(cli: Cli, load) -> None:
    """The scan's reach comes from the events' own length, not from what is indexed."""
    load(
        calendar(
            "UID:semester\nSUMMARY:Semester\nDTSTART;VALUE=DATE:20200815\n"
            "DTEND;VALUE=DATE:20201213\nRRULE:FREQ=YEARLY;COUNT=3",
            "UID:leave\nSUMMARY:Leave\nDTSTART;VALUE=DATE:20261001\nDTEND;VALUE=DATE:20261215\n"
            "RRULE:FREQ=YEARLY;INTERVAL=3",
        )
    )
    first = events(cli, "2021-12-10", "2021-12-10")
    assert [(e["uid"], e["start"], e["end"]) for e in first] == [
        ("semester", "2021-08-15", "2021-12-13")
    ]
    # Started before the import's horizon (31 days back), still going today.
    assert [e["uid"] for e in events(cli, "today", "+1")] == ["leave"]


def test_a_far_query_stores_nothing_beyond_the_limit(cli: Cli, load, store) -> None:
    load(
        calendar(
            "UID:weekly\nSUMMARY:Weekly\nRRULE:FREQ=WEEKLY\n"
            "DTSTART;TZID=Europe/Oslo:20260105T090000\nDTEND;TZID=Europe/Oslo:20260105T100000"
        )
    )
    limit = {"CALSHARE_CALENDARS_INDEX_LIMIT_YEARS": "2"}
    result = cli("events", "cal", "--from", "2045-01-01", "--to", "2045-01-31", "--json", env=limit)
    assert [e["start"][:10] for e in result.json()] == [
        "2045-01-02",
        "2045-01-09",
        "2045-01-16",
        "2045-01-23",
        "2045-01-30",
    ]
    until = store.db.execute("SELECT max(start_ts) FROM occurrences").fetchone()[0]
    assert until < datetime(2029, 1, 1, tzinfo=UTC).timestamp()  # within now + 2 years


def test_floating_series_name_their_instances_alike(cli: Cli, load) -> None:
    """An override's floating RECURRENCE-ID and the series' own instances share one form."""
    load(
        calendar(
            "UID:f\nSUMMARY:F\nDTSTART:20261201T090000\nDTEND:20261201T100000\n"
            "RRULE:FREQ=WEEKLY;COUNT=3",
            "UID:f\nRECURRENCE-ID:20261208T090000\nSUMMARY:F moved\n"
            "DTSTART:20261208T110000\nDTEND:20261208T120000",
        )
    )
    ids = [e["recurrence_id"] for e in events(cli, "2026-12-01", "2026-12-31")]
    assert ids == ["20261201T080000Z", "20261208T080000Z", "20261215T080000Z"]


def test_an_unchanged_source_is_not_imported_again(cli: Cli, load, tmp_path: Path) -> None:
    load(calendar("UID:a\nSUMMARY:A\nDTSTART:20261201T090000Z"))
    again = cli("calendar", "import", "cal", str(tmp_path / "cal.ics"), "--json").json()
    assert again["unchanged"] is True
    assert cli("calendar", "list", "--json").json()[0]["version"] == 1


def test_a_utf16_export_is_read(cli: Cli, load, tmp_path: Path) -> None:
    text = calendar("UID:u\nSUMMARY:Møte på Ålesund\nDTSTART:20261201T090000Z").decode()
    result = load(text.encode("utf-16"))
    assert "UTF-16" in result.err
    (event,) = events(cli, "2026-12-01", "2026-12-01")
    assert event["summary"] == "Møte på Ålesund"
