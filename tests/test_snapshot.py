"""Email a calendar: ``calshare snapshot`` end to end, and the pieces it is made of.

The mail is read back the way a recipient's client reads it (tests/support/snapshot_mail.py):
the .ics re-parsed with icalendar and vobject must hold exactly the occurrences
``calshare events`` gives for the same days and level, every TZID must have its
VTIMEZONE, and the schedule must put each awkward event (overnight, all-day on the
last day, across a DST change, floating, a moved and a cancelled instance) on the
right days at the right times.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject
from hypothesis import given, settings
from hypothesis import strategies as st

from calshare.busy import Busy
from calshare.errors import UsageError
from calshare.ics_writer import (
    escape_text,
    fold,
    instance_uid,
    stand_in_summary,
    write_calendar,
)
from calshare.levels import Level, filter_occurrence
from calshare.occurrence import Occurrence
from calshare.ranges import DateRange, resolve_range
from calshare.schedule import WorkingWindow, clip_to_working_hours
from tests.conftest import CORPUS, FIXTURES, NOW, CliResult
from tests.support import snapshot_mail
from tests.support.corpus import REFUSED
from tests.support.mail_html import assert_mail_safe_html
from tests.support.snapshot import AWKWARD, HOSTILE, STAND_INS, add, snap
from tests.support.snapshot_mail import tzids

Cli = Callable[..., CliResult]
OSLO = ZoneInfo("Europe/Oslo")
OWNER = "ann@example.org"
LEVELS = ("free-busy", "titles", "details")
HIDDEN_AT_FREE_BUSY = {"LOCATION", "DESCRIPTION", "ATTENDEE", "ORGANIZER", "ATTACH"}


# --- the iCalendar writer, alone


@settings(max_examples=300, deadline=None)
@given(text=st.text(min_size=1, max_size=300))
def test_any_text_survives_escaping_and_folding(text: str) -> None:
    line = "SUMMARY:" + escape_text(text)
    folded = fold(line)
    physical = folded.split("\r\n")[:-1]
    assert all(len(part.encode("utf-8")) <= 75 for part in physical)
    assert all(part.startswith(" ") for part in physical[1:])
    event = icalendar.Event.from_ical(
        "BEGIN:VEVENT\r\nUID:x\r\nDTSTAMP:20260101T000000Z\r\n" + folded + "END:VEVENT\r\n"
    )
    wanted = "".join(
        ch for ch in text.replace("\r\n", "\n").replace("\r", "\n")
        if ch in "\n\t" or (ch >= " " and ch != "\x7f")
    )  # fmt: skip
    assert str(event.get("SUMMARY", "")) == wanted


def test_folding_never_splits_a_character() -> None:
    line = "SUMMARY:" + "æ" * 100 + "🙂" * 40
    for part in fold(line).split("\r\n")[:-1]:
        part.encode("utf-8")  # each physical line is whole UTF-8 by itself
        assert len(part.encode("utf-8")) <= 75


def _occurrence(**fields: Any) -> Occurrence:
    start = datetime(2026, 3, 28, 9, tzinfo=UTC)
    base: dict[str, Any] = {
        "uid": "u1",
        "start": start,
        "end": start + timedelta(hours=1),
        "all_day": False,
        "busy": Busy.BUSY,
    }
    return Occurrence(**{**base, **fields})


def test_each_instance_gets_its_own_stable_uid() -> None:
    series = [
        _occurrence(recurrence_id="20260328T090000Z"),
        _occurrence(recurrence_id="20260329T090000Z"),
    ]
    hidden = [filter_occurrence(o, Level.FREE_BUSY, uid_key=b"k") for o in series]
    uids = [instance_uid(o) for o in series + hidden]
    assert len(set(uids)) == 4
    assert uids == [instance_uid(o) for o in series + hidden]  # stable
    assert all(uid.startswith("busy-") for uid in uids[2:])
    # A stand-in is one per instance already: written as it is, not given a suffix.
    assert uids[2:] == [o.uid for o in hidden]


def test_people_are_written_as_mailto_with_their_names() -> None:
    occurrence = _occurrence(
        organizer="Ann Demo <ann@example.org>", attendees=("bob@example.org", "Kari, N <k@x.no>")
    )
    text = write_calendar([occurrence], name="p", zone="Europe/Oslo", now=NOW).decode()
    event = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    assert str(event["ORGANIZER"]) == "mailto:ann@example.org"
    assert event["ORGANIZER"].params["CN"] == "Ann Demo"
    assert [str(a) for a in event["ATTENDEE"]] == ["mailto:bob@example.org", "mailto:k@x.no"]
    assert event["ATTENDEE"][1].params["CN"] == "Kari, N"


def test_a_calendar_in_utc_needs_no_vtimezone_and_dates_need_none() -> None:
    timed = write_calendar([_occurrence()], name="p", zone="UTC", now=NOW).decode()
    assert "VTIMEZONE" not in timed and "DTSTART:20260328T090000Z" in timed
    all_day = _occurrence(start=date(2026, 3, 28), end=date(2026, 3, 29), all_day=True)
    dates = write_calendar([all_day], name="p", zone="Europe/Oslo", now=NOW).decode()
    assert "VTIMEZONE" not in dates and "DTSTART;VALUE=DATE:20260328" in dates


# --- ranges


def test_ranges_are_whole_days_in_the_calendars_zone() -> None:
    late = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # already Sunday the 29th in Oslo
    today = resolve_range("today", OSLO, late)
    assert today.first == date(2026, 3, 29)
    assert today.end.timestamp() - today.start.timestamp() == 23 * 3600  # the spring DST day
    week = resolve_range("next-7-days", OSLO, late)
    assert (week.first, week.last) == (date(2026, 3, 29), date(2026, 4, 4))
    assert resolve_range("tomorrow", OSLO, late).first == date(2026, 3, 30)
    assert resolve_range("next-30-days", OSLO, late).days == 30
    explicit = resolve_range("2026-12-01..2026-12-24", OSLO, late)
    assert (explicit.first, explicit.last, explicit.days) == (
        date(2026, 12, 1),
        date(2026, 12, 24),
        24,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("next-week", "is not a range: use one of today, tomorrow"),
        ("2026-02-30..2026-03-01", "names a day that does not exist"),
        ("2026-03-02..2026-03-01", "ends before it starts"),
        ("1800-01-01..1800-01-02", "outside the years"),
        ("2026-01-01..2150-01-01", "longer than 100 years"),
    ],
)
def test_bad_ranges_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        resolve_range(text, OSLO, NOW)


# --- the awkward events, on the right days at the right times


def _days(text: str) -> dict[str, list[str]]:
    """The text part's schedule: day heading -> its entry lines."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if re.fullmatch(r"\w+day \d+\.? \w+", line):
            current = line
            found[current] = []
        elif current and line.startswith("  ") and not line.startswith("      "):
            found[current].append(line.strip())
        elif not line.strip() or line.startswith("=="):
            continue
        else:
            current = None if not line.startswith("      ") else current
    return found


def test_awkward_events_land_on_the_right_days(cli: Cli, tmp_path: Path) -> None:
    add(cli, "awkward", AWKWARD, tmp_path)
    mail, made = snap(cli, tmp_path, "awkward", "--range", "2027-03-26..2027-03-29")
    assert made["events"] == 7
    days = _days(mail.text)
    assert days == {
        "Friday 26 March": [
            "09:00 – 09:15  Stand-up (Busy)",
            "23:30 – Sat 00:30  Night shift handover (Busy)",
        ],
        "Saturday 27 March": [
            "until 00:30  Night shift handover (Busy)",
            "10:00 – 11:00  Floating coffee (Free)",
            "11:30 – 12:00  Stand-up (moved) (Tentative)",
        ],
        "Sunday 28 March": [
            "01:30 – 03:30  Across the clock change (Busy)",
            "09:00 – 09:15  Stand-up (Busy)",
        ],
        "Monday 29 March": ["All day  Holiday on the last day (Out of office)"],
    }  # fmt: skip
    calendar = mail.calendar()
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    assert events["overnight"]["DTSTART"].dt == datetime(2027, 3, 26, 23, 30, tzinfo=OSLO)
    assert events["overnight"]["DTEND"].dt == datetime(2027, 3, 27, 0, 30, tzinfo=OSLO)
    assert events["last-day"]["DTSTART"].dt == date(2027, 3, 29)
    assert events["last-day"]["X-MICROSOFT-CDO-BUSYSTATUS"] == "OOF"
    dst = events["across-dst"]
    assert dst["DTEND"].dt - dst["DTSTART"].dt == timedelta(hours=2)  # wall clock
    assert dst["DTEND"].dt.astimezone(UTC) - dst["DTSTART"].dt.astimezone(UTC) == timedelta(hours=1)
    assert events["floating"]["DTSTART"].dt == datetime(2027, 3, 27, 10, tzinfo=OSLO)
    assert events["floating"]["TRANSP"] == "TRANSPARENT"
    standups = sorted(
        (e["DTSTART"].dt, str(e["SUMMARY"])) for uid, e in events.items() if uid.startswith("daily")
    )
    assert standups == [
        (datetime(2027, 3, 26, 9, tzinfo=OSLO), "Stand-up"),
        (datetime(2027, 3, 27, 11, 30, tzinfo=OSLO), "Stand-up (moved)"),
        (datetime(2027, 3, 28, 9, tzinfo=OSLO), "Stand-up"),  # 07:00 UTC after the change
    ]
    assert standups[2][0].astimezone(UTC).hour == 7 and standups[0][0].astimezone(UTC).hour == 8
    # nothing outside the range leaks through a rule: the series is expanded, not copied
    # (the VTIMEZONE's RRULEs are the zone's rule, not the events')
    vevents = mail.ics_unfolded.split("BEGIN:VEVENT")[1:]
    assert vevents and not [e for e in vevents if "RRULE" in e or "EXDATE" in e or "RDATE" in e]
    assert tzids(mail.ics.decode()) == {"Europe/Oslo"}
    assert {str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")} == {"Europe/Oslo"}


def test_the_list_layout_shows_each_occurrence_once(cli: Cli, tmp_path: Path) -> None:
    add(cli, "awkward", AWKWARD, tmp_path)
    mail, _ = snap(
        cli, tmp_path, "awkward", "--range", "2027-03-26..2027-03-29", "--layout", "list"
    )
    assert mail.text.count("Night shift handover") == 1
    assert "No events" not in mail.text
    assert mail.html.count("Night shift handover") == 1


def test_free_days_say_so_and_working_hours_say_available(cli: Cli, tmp_path: Path) -> None:
    add(cli, "awkward", AWKWARD, tmp_path)
    mail, _ = snap(cli, tmp_path, "awkward", "--range", "2027-04-04..2027-04-10")
    days = _days(mail.text)
    assert days["Thursday 8 April"] == ["No events"]
    assert len(days) == 7
    hours, _ = snap(
        cli, tmp_path, "awkward", "--range", "2027-03-26..2027-04-09", "--working-hours-only"
    )
    working = _days(hours.text)
    # weekends go; the night shift and the 01:30 event are outside 08:00-17:00
    assert "Saturday 27 March" not in working and "Sunday 28 March" not in working
    assert working["Friday 26 March"] == ["09:00 – 09:15  Stand-up (Busy)"]
    assert working["Thursday 8 April"] == ["Available"]
    assert working["Monday 29 March"] == ["All day  Holiday on the last day (Out of office)"]
    assert "Only working hours are shown (Mon–Fri 08:00–17:00)." in hours.text


def test_working_hours_cut_events_to_the_working_day() -> None:
    window = WorkingWindow.parse(["mon", "tue", "wed", "thu", "fri"], "08:00", "17:00")
    days = DateRange(date(2027, 3, 26), date(2027, 3, 29), OSLO)
    early = _occurrence(
        start=datetime(2027, 3, 26, 7, tzinfo=OSLO), end=datetime(2027, 3, 26, 9, tzinfo=OSLO)
    )
    conference = _occurrence(
        uid="conf",
        start=datetime(2027, 3, 26, 12, tzinfo=OSLO),
        end=datetime(2027, 3, 29, 12, tzinfo=OSLO),
    )
    clipped = clip_to_working_hours([early, conference], window, days)
    assert [(o.uid, o.start.isoformat(), o.end.isoformat()) for o in clipped] == [
        ("u1", "2027-03-26T08:00:00+01:00", "2027-03-26T09:00:00+01:00"),
        ("conf", "2027-03-26T12:00:00+01:00", "2027-03-26T17:00:00+01:00"),
        ("conf-1", "2027-03-29T08:00:00+02:00", "2027-03-29T12:00:00+02:00"),
    ]


def test_norwegian_snapshot(cli: Cli, tmp_path: Path) -> None:
    add(cli, "awkward", AWKWARD, tmp_path)
    mail, _ = snap(cli, tmp_path, "awkward", "--range", "2027-03-29..2027-04-05", "--lang", "nb")
    assert "Hele dagen" in mail.text and "Ingen avtaler" in mail.text
    assert "mandag 29. mars" in mail.text and "Ikke til stede" in mail.text
    assert "for 29. mars 2027 – 5. april 2027." in mail.text
    assert mail.message["Subject"].startswith("Kalenderen «awkward» fra Ann Owner")


# --- HTML safety


def test_event_text_is_shown_as_text_never_as_markup(cli: Cli, tmp_path: Path) -> None:
    add(cli, "hostile", HOSTILE.encode(), tmp_path)
    for layout in ("daily", "list"):
        mail, _ = snap(cli, tmp_path, "hostile", "--range", "next-7-days", "--layout", layout)
        html = mail.html.lower()
        assert "<script" not in html and "<img" not in html and "<style" not in html
        assert "&lt;script&gt;alert(" in html
        assert "onerror" not in html or "&#34;&gt;&lt;img src=x onerror" in html


# --- the command line


def test_to_queues_one_mail_per_recipient_capped_by_policy(cli: Cli, tmp_path: Path) -> None:
    add(cli, "awkward", AWKWARD, tmp_path)
    result = cli(
        "snapshot", "awkward", "--range", "2027-03-26..2027-03-29",
        "--to", "bob@example.org", "Eve Outside <eve@elsewhere.net>", "bob@example.org", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    made = result.json()
    assert [(m["to"], m["level"], m["capped"]) for m in made] == [
        ("bob@example.org", "details", False),
        ("eve@elsewhere.net", "titles", True),
    ]
    queued = cli("outbox", "--json").json()
    snapshots = [m for m in queued if m["kind"] == "snapshot"]
    assert len(snapshots) == 2 and all(m["status"] == "queued" for m in snapshots)
    text = cli("snapshot", "awkward", "--range", "today", "--to", "eve@elsewhere.net")
    assert "at titles (policy allows eve@elsewhere.net no more)" in text.out


def test_sent_snapshots_arrive_whole_in_the_maildir(cli: Cli, tmp_path: Path) -> None:
    add(cli, "awkward", AWKWARD, tmp_path)
    sent = cli(
        "snapshot", "awkward", "--range", "2027-03-26..2027-03-29", "--detail", "free-busy",
        "--to", "bob@example.org",
    )  # fmt: skip
    assert sent.code == 0, sent.err
    maildir = tmp_path / "maildir"
    flushed = cli("outbox", "flush", env={"CALSHARE_OUTBOX_MAILDIR": str(maildir)})
    assert flushed.code == 0, flushed.err
    (delivered,) = (maildir / "new").iterdir()
    mail = snapshot_mail.read(delivered.read_bytes())
    assert parseaddr(mail.message["To"])[1] == "bob@example.org"
    assert parseaddr(mail.message["Reply-To"])[1] == OWNER  # replies reach the owner
    assert mail.message["Auto-Submitted"] == "auto-generated"
    events = mail.calendar().walk("VEVENT")
    assert len(events) == 7
    for event in events:
        assert not set(event) & HIDDEN_AT_FREE_BUSY
    assert "Night shift" not in mail.everything and "Stand-up" not in mail.everything


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--to", "eve@elsewhere.net"],
            {"CALSHARE_POLICY_EXTERNAL_MAX_LEVEL": "none"},
            "This calendar can't be shared: eve@elsewhere.net is outside example.org and policy "
            "allows no external sharing",
        ),
        (
            ["--to", "bob@example.org", "all@example.org"],
            {"CALSHARE_POLICY_GROUPS": "all@example.org"},
            "all@example.org is a group address",
        ),
        (
            ["--to", "bob@example.org"],
            {"CALSHARE_POLICY_SHARING": "false"},
            "sharing is turned off on this server",
        ),
        (["--to", "not an address"], {}, "This calendar can't be shared:"),
        (["--to", "bob@example.org", "--range", "soon"], {}, "'soon' is not a range"),
        (["--to", "bob@example.org", "--detail", "everything"], {}, "Unknown level"),
        (["--to", "bob@example.org", "--layout", "grid"], {}, "invalid choice: 'grid'"),
        (["--range", "today"], {}, "one of the arguments --to --out is required"),
        (
            ["--to", "bob@example.org", "--out", "x.eml"],
            {},
            "argument --out: not allowed with argument --to",
        ),
    ],
)
def test_refusals_are_one_line_and_queue_nothing(
    cli: Cli, tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    add(cli, "awkward", AWKWARD, tmp_path)
    if "--range" not in args:
        args = [*args, "--range", "today"]
    result = cli("snapshot", "awkward", *args, env=env)
    assert result.code == 2
    assert message in result.err, result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert cli("outbox", "--json").json() == []


def test_unknown_calendar_and_unwritable_out(cli: Cli, tmp_path: Path) -> None:
    missing = cli("snapshot", "nope", "--range", "today", "--out", str(tmp_path / "a.eml"))
    assert missing.code == 2 and "No calendar named 'nope'" in missing.err
    add(cli, "awkward", AWKWARD, tmp_path)
    target = tmp_path / "no-such-dir" / "a.eml"
    unwritable = cli("snapshot", "awkward", "--range", "today", "--out", str(target))
    assert unwritable.code == 2 and f"Cannot write {target}" in unwritable.err
    assert not target.parent.exists()


def test_an_empty_range_says_so(cli: Cli, tmp_path: Path) -> None:
    add(cli, "awkward", AWKWARD, tmp_path)
    mail, made = snap(
        cli, tmp_path, "awkward", "--range", "2030-01-01..2030-01-02", "--layout", "list"
    )
    assert made["events"] == 0
    assert "There are no events in this range." in mail.text
    assert mail.calendar().walk("VEVENT") == []


# --- real calendars: the .ics holds exactly what `calshare events` shows


def _ics_instants(event: Any) -> tuple[str, str]:
    start = event["DTSTART"].dt
    end = event["DTEND"].dt if "DTEND" in event else start  # an instant has no DTEND
    if isinstance(start, datetime):
        assert end > start or "DTEND" not in event, "DTEND must be after DTSTART"
        return start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat()
    assert end > start, "an all-day DTEND must be after DTSTART"
    return start.isoformat(), end.isoformat()


def _json_instants(item: dict[str, Any]) -> tuple[str, str]:
    if item["all_day"]:
        # RFC 5545 wants DTEND after DTSTART: a zero-length all-day event is written as a day
        start, end = date.fromisoformat(item["start"]), date.fromisoformat(item["end"])
        return start.isoformat(), max(end, start + timedelta(days=1)).isoformat()
    start, end = datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])
    return start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat()


def _vobject_count(ics: bytes) -> int:
    parsed = vobject.readOne(ics.decode("utf-8"))
    return len(getattr(parsed, "vevent_list", []))


def check_against_events(cli: Cli, tmp_path: Path, name: str, level: str, layout: str) -> int:
    mail, made = snap(
        cli, tmp_path, name, "--range", "whole", "--detail", level, "--layout", layout
    )
    first, last = made["range"]["from"], made["range"]["to"]
    listed = cli("events", name, "--from", first, "--to", last, "--level", level, "--json")
    assert listed.code == 0, listed.err
    expected = listed.json()
    calendar = mail.calendar()
    events = calendar.walk("VEVENT")
    assert made["events"] == len(events) == len(expected)
    uids = [str(event["UID"]) for event in events]
    assert len(set(uids)) == len(uids), "instances share a UID"
    got = Counter((*_ics_instants(e), str(e.get("SUMMARY", ""))) for e in events)
    want = Counter(
        (*_json_instants(i), i.get("summary") or stand_in_summary(Busy(i["busy"]), "en"))
        for i in expected
    )
    assert got == want
    for event in events:
        assert "RRULE" not in event and "RDATE" not in event and "EXDATE" not in event
        if level == "free-busy":
            assert not set(event) & HIDDEN_AT_FREE_BUSY
            assert str(event["SUMMARY"]) in STAND_INS
    text = mail.ics.decode("utf-8")
    declared = {str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")}
    assert tzids(text) <= declared
    assert all(line.endswith("\r") or not line for line in text.split("\n")[:-1])
    assert all(len(line.encode()) <= 76 for line in text.split("\n"))  # 75 + CR
    if level == "details":
        assert _vobject_count(mail.ics) == len(events)
    return len(events)


def _corpus_files() -> list[Path]:
    files = sorted((CORPUS / "ics" / "icalendar").glob("*.ics"))
    return [path for path in files if path.name not in REFUSED] + sorted(
        (FIXTURES / "exports").glob("*.ics")
    )


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda path: path.name)
def test_corpus_snapshots_hold_exactly_the_events_of_their_range(
    path: Path, cli: Cli, tmp_path: Path
) -> None:
    add(cli, "corpus", path, tmp_path)
    counts = {
        level: check_against_events(cli, tmp_path, "corpus", level, layout)
        for level, layout in zip(LEVELS, ("daily", "list", "daily"), strict=True)
    }
    assert len(set(counts.values())) == 1, counts  # a level hides text, never events


def test_a_whole_snapshot_of_thousands_stays_readable(cli: Cli, tmp_path: Path) -> None:
    from bench.generate import generate

    add(cli, "big", generate(n_events=2000, start=date(2026, 11, 2)), tmp_path)
    mail, made = snap(cli, tmp_path, "big", "--range", "whole")
    assert made["events"] > 2000
    assert len(mail.calendar().walk("VEVENT")) == made["events"]
    assert f"Events in the attached calendar: {made['events']:,}." in mail.text
    assert "Not listed here:" in mail.text and "The attached calendar holds them all." in mail.html
    assert len(mail.html.encode()) < 102_000  # Gmail clips HTML beyond 102 kB
    months = re.findall(r"^== (\w+ \d{4}) ==\r?$", mail.text, re.MULTILINE)
    assert len(months) == len(set(months)) >= 1  # grouped by month
    # and an overview of every month, whose counts add up to everything attached
    overview = mail.text.split("== Events by month ==", 1)[1].split("This is a copy")[0]
    counts = re.findall(r"^  (\w+ \d{4}): (\d+)\r?$", overview, re.MULTILINE)
    assert len(counts) >= 12 and sum(int(n) for _, n in counts) == made["events"]
    assert "Events by month" in mail.html
    assert "No events" not in mail.text  # a long range lists only days with events


@pytest.mark.parametrize("lang", ["en", "nb"])
@pytest.mark.parametrize("layout", ["daily", "list"])
def test_snapshot_html_follows_the_mail_rules(
    cli: Cli, tmp_path: Path, layout: str, lang: str
) -> None:
    """Tables, inline styles only, nothing remote or active, at most 600 px: as every mail."""
    add(cli, "awkward", AWKWARD, tmp_path)
    mail, _ = snap(
        cli, tmp_path, "awkward", "--range", "2027-03-26..2027-04-09",
        "--layout", layout, "--lang", lang, "--working-hours-only",
    )  # fmt: skip
    assert_mail_safe_html(mail.html)
    assert f'lang="{lang}"' in mail.html


# --- edges found in review


def _ics(*events: str, zone: str = "Europe/Oslo") -> bytes:
    body = "".join(
        f"BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n{event.strip()}\r\nEND:VEVENT\r\n"
        for event in events
    )
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//edges//EN\r\n"
        f"X-WR-TIMEZONE:{zone}\r\n{body}END:VCALENDAR\r\n"
    ).encode()


CONFERENCE = """UID:conf
DTSTART;TZID=Europe/Oslo:20260330T090000
DTEND;TZID=Europe/Oslo:20260401T170000
SUMMARY:Conference"""


def test_working_hours_never_reach_outside_the_range(cli: Cli, tmp_path: Path) -> None:
    add(cli, "edges", _ics(CONFERENCE), tmp_path)
    mail, made = snap(
        cli, tmp_path, "edges", "--range", "2026-03-31..2026-03-31", "--working-hours-only"
    )
    assert made["events"] == 1
    (event,) = mail.calendar().walk("VEVENT")
    assert event["DTSTART"].dt == datetime(2026, 3, 31, 8, tzinfo=OSLO)
    assert event["DTEND"].dt == datetime(2026, 3, 31, 17, tzinfo=OSLO)
    assert _days(mail.text) == {"Tuesday 31 March": ["08:00 – 17:00  Conference (Busy)"]}


def test_the_repeated_autumn_hour_keeps_its_instants(cli: Cli, tmp_path: Path) -> None:
    """02:30 happens twice in Oslo on 2026-10-25; the .ics must say which one."""
    first_pass = "UID:a\r\nDTSTART:20261025T003000Z\r\nDTEND:20261025T013000Z\r\nSUMMARY:First"
    second_pass = "UID:b\r\nDTSTART:20261025T013000Z\r\nDTEND:20261025T023000Z\r\nSUMMARY:Second"
    add(cli, "edges", _ics(first_pass, second_pass), tmp_path, "--tz", "Europe/Oslo")
    mail, _ = snap(cli, tmp_path, "edges", "--range", "2026-10-25..2026-10-25")
    events = {str(e["UID"]): e for e in mail.calendar().walk("VEVENT")}
    for uid, start in (("a", 0), ("b", 1)):
        got = events[uid]
        began, ended = got["DTSTART"].dt.astimezone(UTC), got["DTEND"].dt.astimezone(UTC)
        assert began == datetime(2026, 10, 25, start, 30, tzinfo=UTC)
        assert ended - began == timedelta(hours=1)
    assert _days(mail.text)["Sunday 25 October"] == [
        "02:30 – 02:30  First (Busy)",  # 02:30 summer time to 02:30 winter time
        "02:30 – 03:30  Second (Busy)",
    ]


def test_a_cut_off_schedule_never_calls_full_days_free(cli: Cli, tmp_path: Path) -> None:
    busy_days = [
        f"UID:m{n}\r\nDTSTART;TZID=Europe/Oslo:2026040{1 + n // 8}T{8 + n % 8:02d}0000\r\n"
        f"DTEND;TZID=Europe/Oslo:2026040{1 + n // 8}T{8 + n % 8:02d}3000\r\nSUMMARY:Slot {n}"
        for n in range(72)  # 8 a day, 1-9 April
    ]
    long_ones = [
        f"UID:long{n}\r\nDTSTART;VALUE=DATE:20260401\r\nDTEND;VALUE=DATE:20261231\r\n"
        f"SUMMARY:Season {n}"
        for n in range(40)
    ]
    add(cli, "edges", _ics(*busy_days, *long_ones), tmp_path)
    mail, made = snap(cli, tmp_path, "edges", "--range", "2026-04-01..2026-04-30")
    assert made["events"] == 112
    assert "Not listed here:" in mail.text
    assert "No events" not in mail.text  # the days after the cut are not listed at all
    assert len(mail.html.encode()) < 102_000  # rows are counted, not events


def test_unusual_settings_and_dates_give_answers_not_tracebacks(cli: Cli, tmp_path: Path) -> None:
    forever = "UID:f\r\nDTSTART;VALUE=DATE:18000101\r\nDTEND;VALUE=DATE:99991231\r\nSUMMARY:Era"
    timed = "UID:t\r\nDTSTART:20261127T100000Z\r\nDTEND:20261127T110000Z\r\nSUMMARY:Meet"
    add(cli, "edges", _ics(forever, timed), tmp_path)
    mail, made = snap(cli, tmp_path, "edges", "--range", "next-7-days")
    assert made["events"] == 2
    assert "DTSTART;VALUE=DATE:18000101" in mail.ics_unfolded
    late = {"CALSHARE_WORKING_HOURS_END": "24:00"}
    out = tmp_path / "late.eml"
    result = cli("snapshot", "edges", "--range", "next-7-days", "--working-hours-only",
                 "--out", str(out), env=late)  # fmt: skip
    assert result.code == 0, result.err
    nobody = {"CALSHARE_WORKING_HOURS_DAYS": ""}
    refused = cli("snapshot", "edges", "--range", "next-7-days", "--working-hours-only",
                  "--out", str(out), env=nobody)  # fmt: skip
    assert refused.code == 2 and "working_hours.days is empty" in refused.err


def test_whole_of_a_calendar_that_only_starts_later(cli: Cli, tmp_path: Path) -> None:
    weekly = "UID:w\r\nDTSTART:20280103T090000Z\r\nDTEND:20280103T100000Z\r\nRRULE:FREQ=WEEKLY"
    add(cli, "edges", _ics(weekly), tmp_path)
    _, made = snap(cli, tmp_path, "edges", "--range", "WHOLE")
    assert made["range"]["from"] == "2028-01-03"
    assert 52 <= made["events"] <= 53
