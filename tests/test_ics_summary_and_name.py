"""Issue 10: what clients show for hidden titles, and what they call the calendar.

Defect 10: free-busy and private entries had no SUMMARY (khal showed blank rows);
Outlook writes the busy status ("Busy", "Tentative", "Out of office"), in the
viewer's language. Also seen: the feed's X-WR-CALNAME was the internal name, not
the title of the imported source. Read back by ical.js, vobject and libical.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import icalendar
import pytest

from calshare.busy import Busy
from calshare.calendars import get_calendar
from calshare.config import load_settings
from calshare.feeds import feed_ics
from calshare.ics_writer import write_calendar
from calshare.levels import Level, filter_occurrence
from calshare.occurrence import Occurrence
from calshare.store import Store
from tests.conftest import NOW, ROOT, CliResult
from tests.support import clients, snapshot_mail
from tests.support.ics import calendar

Cli = Callable[..., CliResult]
OSLO = "Europe/Oslo"
WORDS = {
    "en": {
        Busy.BUSY: "Busy",
        Busy.TENTATIVE: "Tentative",
        Busy.OOF: "Out of office",
        Busy.ELSEWHERE: "Working elsewhere",
        Busy.FREE: "Free",
    },
    "nb": {
        Busy.BUSY: "Opptatt",
        Busy.TENTATIVE: "Foreløpig",
        Busy.OOF: "Ikke til stede",
        Busy.ELSEWHERE: "Arbeider et annet sted",
        Busy.FREE: "Ledig",
    },
}


def _occurrences() -> list[Occurrence]:
    """One event per busy status, with a secret title; then one private event."""
    start = datetime(2027, 6, 7, 8, tzinfo=UTC)
    found = [
        Occurrence(
            f"uid-{busy}",
            start + timedelta(days=number),
            start + timedelta(days=number, hours=1),
            False,
            busy,
            summary=f"Secret {busy}",
            location="Room 7",
        )
        for number, busy in enumerate(Busy)
    ]
    found.append(
        Occurrence(
            "uid-private",
            date(2027, 6, 20),
            date(2027, 6, 21),
            True,
            Busy.OOF,
            private=True,
            summary="Doctor",
        )
    )
    return found


def _read_everywhere(path: Path) -> dict[str, list[str | None]]:
    return {
        "ical.js": [row[3] for row in clients.icaljs([path])[path]],
        "vobject": [row[3] for row in clients.vobject_rows(path.read_bytes())],
        "libical": [row[3] for row in clients.libical([path])[path]],
    }


@pytest.mark.parametrize("lang", ["en", "nb"])
def test_issue_10_hidden_titles_read_as_the_busy_status(tmp_path: Path, lang: str) -> None:
    found = _occurrences()
    now = datetime(2027, 6, 1, tzinfo=UTC)
    for level in Level:
        seen = [filter_occurrence(item, level, zone=None) for item in found]
        path = tmp_path / f"{level}-{lang}.ics"
        path.write_bytes(write_calendar(seen, name="c", zone=OSLO, now=now, lang=lang))
        words = WORDS[lang]
        if level is Level.FREE_BUSY:
            expected = [words[item.busy] for item in found]
        else:  # titles shown; the private item is busy time only
            expected = [f"Secret {item.busy}" for item in found[:-1]] + [words[Busy.OOF]]
        for client, summaries in _read_everywhere(path).items():
            assert summaries == expected, (client, level, lang)
        text = path.read_text()
        assert "Doctor" not in text
        if level is Level.FREE_BUSY:
            assert "Secret" not in text and "Room 7" not in text


def test_issue_10_snapshot_in_norwegian_says_opptatt(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "c.ics"
    source.write_bytes(
        calendar(
            "UID:a\nSUMMARY:Budsjettmøte\nDTSTART;TZID=Europe/Oslo:20270607T090000\n"
            "DTEND;TZID=Europe/Oslo:20270607T100000",
            "UID:b\nSUMMARY:Lege\nCLASS:PRIVATE\nDTSTART;TZID=Europe/Oslo:20270608T090000\n"
            "DTEND;TZID=Europe/Oslo:20270608T100000\nSTATUS:TENTATIVE",
        )
    )
    assert cli("calendar", "add", "c", "--owner", "ann@example.org", "--tz", OSLO).code == 0
    assert cli("calendar", "import", "c", str(source)).code == 0
    eml = tmp_path / "snap.eml"
    made = cli(
        "snapshot", "c", "--range", "2027-06-07..2027-06-08", "--detail", "titles",
        "--lang", "nb", "--out", str(eml),
    )  # fmt: skip
    assert made.code == 0, made.err
    path = tmp_path / "snap.ics"
    path.write_bytes(snapshot_mail.read(eml.read_bytes()).ics)
    for client, summaries in _read_everywhere(path).items():
        assert summaries == ["Budsjettmøte", "Foreløpig"], client


def _feed_name(
    cli: Cli, tmp_path: Path, source: Path, level: Level = Level.TITLES
) -> tuple[str, str | None]:
    assert cli("calendar", "add", "intern", "--owner", "ann@example.org").code == 0
    assert cli("calendar", "import", "intern", str(source)).code == 0
    store = Store.open(tmp_path / "var" / "calshare.db")
    try:
        settings = load_settings(None, env={})
        body = feed_ics(store, settings, get_calendar(store.db, "intern"), level, NOW)
    finally:
        store.close()
    parsed = icalendar.Calendar.from_ical(body)
    name = parsed.get("NAME")
    return str(parsed["X-WR-CALNAME"]), None if name is None else str(name)


def test_feed_is_named_as_the_source_names_itself(cli: Cli, tmp_path: Path) -> None:
    """calshare/demo_calendars/project.ics says X-WR-CALNAME:Project Aurora."""
    source = ROOT / "calshare" / "demo_calendars" / "project.ics"
    assert _feed_name(cli, tmp_path, source) == ("Project Aurora", "Project Aurora")


def test_feed_takes_an_rfc_7986_name(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "named.ics"
    source.write_bytes(
        calendar("UID:a\nSUMMARY:x\nDTSTART:20261201T090000Z", header="NAME:Styret 2027")
    )
    assert _feed_name(cli, tmp_path, source) == ("Styret 2027", "Styret 2027")


def test_feed_without_a_source_title_uses_the_calendar_name(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "plain.ics"
    source.write_bytes(calendar("UID:a\nSUMMARY:x\nDTSTART:20261201T090000Z"))
    assert _feed_name(cli, tmp_path, source) == ("intern", "intern")


@pytest.mark.parametrize("level", [Level.FREE_BUSY, Level.TITLES, Level.DETAILS])
def test_the_source_title_is_shown_only_where_titles_are(
    cli: Cli, tmp_path: Path, level: Level
) -> None:
    """Google names a primary calendar by the account's address: a free-busy feed or
    published link must not carry it."""
    source = tmp_path / "google.ics"
    source.write_bytes(
        calendar(
            "UID:a\nSUMMARY:x\nDTSTART:20261201T090000Z",
            header="X-WR-CALNAME:ann.private@gmail.com",
        )
    )
    got = _feed_name(cli, tmp_path, source, level)
    if level is Level.FREE_BUSY:
        assert got == ("intern", "intern")
    else:
        assert got == ("ann.private@gmail.com", "ann.private@gmail.com")
