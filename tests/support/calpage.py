"""The published-calendar harness: a week of awkward events in Oslo, published and served.

The week of Monday 22 March 2027 holds three overlapping meetings (Tuesday), an
event across midnight (Wednesday night), a three-day all-day trip (Thursday to
Saturday), a busy Friday, and the spring clock change (Sunday 28 March, 23 hours)
with an event across it. The autumn change (Sunday 31 October 2027, 25 hours) has
one too. Today is Wednesday 24 March.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html

from calshare.clock import FixedClock
from calshare.config import load_settings
from tests.conftest import CliResult
from tests.support.inbox import Inbox, inbox_env
from tests.support.snapshot import add
from tests.support.web import Got, http

Cli = Callable[..., CliResult]
TODAY = datetime(2027, 3, 24, 11, 0, tzinfo=UTC)
EMBEDDERS = "https://intranet.example.org, http://127.0.0.1:1"


def _event(uid: str, start: str, end: str, summary: str, *extra: str) -> str:
    kind = ";VALUE=DATE" if len(start) == 8 else ";TZID=Europe/Oslo"
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20270101T000000Z",
        f"DTSTART{kind}:{start}",
        f"DTEND{kind}:{end}",
        f"SUMMARY:{summary}",
        *extra,
        "END:VEVENT",
    ]
    return "\r\n".join(lines) + "\r\n"


WEEK = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//calpage//EN\r\n"
    "X-WR-TIMEZONE:Europe/Oslo\r\n"
    + _event(
        "overlap-a",
        "20270323T100000",
        "20270323T113000",
        "Overlap A",
        "LOCATION:Room Loc1",
        "DESCRIPTION:Agenda Desc1",
        "ORGANIZER;CN=Org Name1:mailto:org1@example.org",
        "ATTENDEE;CN=Att Name1:mailto:att1@example.org",
        "CATEGORIES:Cat1",
        "URL:https://example.org/url1",
    )
    + _event("overlap-b", "20270323T103000", "20270323T120000", "Overlap B")
    + _event("overlap-c", "20270323T110000", "20270323T111500", "Overlap C")
    + _event("after", "20270323T140000", "20270323T150000", "Afternoon alone")
    + _event("night", "20270324T230000", "20270325T010000", "Night crossing")
    + _event("trip", "20270325", "20270328", "Conference trip", "X-MICROSOFT-CDO-BUSYSTATUS:OOF")
    + "".join(
        _event(
            f"busy-{hour}", f"20270326T{hour:02d}0000", f"20270326T{hour:02d}3000", f"Busy {hour}"
        )
        for hour in range(8, 13)
    )
    + _event("spring", "20270328T013000", "20270328T033000", "Across spring")
    + _event("autumn", "20271031T013000", "20271031T033000", "Across autumn")
    + "END:VCALENDAR\r\n"
)


@dataclass
class Published:
    base: str  # the daemon's /p/<secret> on its own port
    daemon: Inbox

    def get(self, query: str = "", **headers: str) -> Got:
        return http(self.base + query, **headers)

    def page(self, query: str = "") -> Any:
        got = self.get(query)
        assert got.status == 200, got.text
        return lxml_html.fromstring(got.body)


def publish(cli: Cli, level: str) -> str:
    result = cli(
        "publish", "week", "--level", level, "--json",
        env={"CALSHARE_POLICY_PUBLISH_MAX_LEVEL": "details"},
    )  # fmt: skip
    assert result.code == 0, result.err
    link: str = result.json()["html"]
    return link[link.index("/p/") :]


@pytest.fixture
def week_calendar(cli: Cli, tmp_path: Path, clock: FixedClock) -> None:
    clock.at = TODAY
    add(cli, "week", WEEK.encode(), tmp_path, "--tz", "Europe/Oslo")


def start_daemon(db_path: Path, clock: FixedClock, embed_origins: str) -> Inbox:
    """The daemon serving what `publish` made, letting ``embed_origins`` frame it."""
    settings = load_settings(
        None,
        env=inbox_env(
            CALSHARE_POLICY_PUBLISH_MAX_LEVEL="details", CALSHARE_HTTP_EMBED_ORIGINS=embed_origins
        ),
    )
    return Inbox(settings, db_path, clock, http=True).start()


@pytest.fixture
def served(
    cli: Cli, week_calendar: None, db_path: Path, clock: FixedClock
) -> Iterator[Callable[[str], Published]]:
    """Publish at a level and serve it: the daemon lets sites in EMBEDDERS frame it."""
    inbox = start_daemon(db_path, clock, EMBEDDERS)
    try:
        yield lambda level: Published(inbox.web + publish(cli, level), inbox)
    finally:
        inbox.stop()
