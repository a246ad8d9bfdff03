"""Calendars for snapshot, feed and publish tests, and the CLI steps that add and mail them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from calshare.busy import Busy
from calshare.ics_writer import (
    stand_in_summary,
)
from tests.conftest import CliResult
from tests.support import snapshot_mail

Cli = Callable[..., CliResult]
OWNER = "ann@example.org"

# Where a level hides the title, the .ics says the busy status instead, as Outlook does.
STAND_INS = frozenset(stand_in_summary(busy, lang) for busy in Busy for lang in ("en", "nb"))


def add(cli: Cli, name: str, source: Path | bytes, tmp_path: Path, *zone: str) -> None:
    if isinstance(source, bytes):
        path = tmp_path / f"{name}.ics"
        path.write_bytes(source)
        source = path
    added = cli("calendar", "add", name, "--owner", f"Ann Owner <{OWNER}>", *zone)
    assert added.code == 0, added.err
    imported = cli("calendar", "import", name, str(source))
    assert imported.code == 0, imported.err


def snap(cli: Cli, tmp_path: Path, name: str, *args: str) -> tuple[snapshot_mail.SnapshotMail, Any]:
    out = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.eml"
    result = cli("snapshot", name, *args, "--out", str(out), "--json")
    assert result.code == 0, result.err
    return snapshot_mail.read(out.read_bytes()), result.json()


AWKWARD = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//awkward//EN\r
X-WR-TIMEZONE:Europe/Oslo\r
BEGIN:VEVENT\r
UID:overnight\r
DTSTAMP:20270101T000000Z\r
DTSTART;TZID=Europe/Oslo:20270326T233000\r
DTEND;TZID=Europe/Oslo:20270327T003000\r
SUMMARY:Night shift handover\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:last-day\r
DTSTAMP:20270101T000000Z\r
DTSTART;VALUE=DATE:20270329\r
DTEND;VALUE=DATE:20270330\r
SUMMARY:Holiday on the last day\r
X-MICROSOFT-CDO-BUSYSTATUS:OOF\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:across-dst\r
DTSTAMP:20270101T000000Z\r
DTSTART;TZID=Europe/Oslo:20270328T013000\r
DTEND;TZID=Europe/Oslo:20270328T033000\r
SUMMARY:Across the clock change\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:floating\r
DTSTAMP:20270101T000000Z\r
DTSTART:20270327T100000\r
DTEND:20270327T110000\r
SUMMARY:Floating coffee\r
TRANSP:TRANSPARENT\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:daily\r
DTSTAMP:20270101T000000Z\r
DTSTART;TZID=Europe/Oslo:20270325T090000\r
DTEND;TZID=Europe/Oslo:20270325T091500\r
RRULE:FREQ=DAILY;COUNT=10\r
EXDATE;TZID=Europe/Oslo:20270329T090000\r
SUMMARY:Stand-up\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:daily\r
DTSTAMP:20270101T000000Z\r
RECURRENCE-ID;TZID=Europe/Oslo:20270327T090000\r
DTSTART;TZID=Europe/Oslo:20270327T113000\r
DTEND;TZID=Europe/Oslo:20270327T120000\r
SUMMARY:Stand-up (moved)\r
STATUS:TENTATIVE\r
END:VEVENT\r
END:VCALENDAR\r
"""


HOSTILE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//hostile//EN
BEGIN:VEVENT
UID:x1
DTSTAMP:20261101T000000Z
DTSTART:20261127T100000Z
DTEND:20261127T110000Z
SUMMARY:<script>alert('title')</script>
LOCATION:"><img src=x onerror=alert(1)>
DESCRIPTION:https://example.org/{long}\\n<style>body{{display:none}}</style>
END:VEVENT
END:VCALENDAR
""".format(long="a" * 400)
