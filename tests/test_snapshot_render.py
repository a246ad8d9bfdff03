"""Snapshot mails as a browser lays them out: they render, and never scroll sideways at 600 px."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from bench.generate import generate
from tests.conftest import CliResult
from tests.support import chromium
from tests.support.snapshot import AWKWARD, HOSTILE, add, snap

Cli = Callable[..., CliResult]

LONG_WORDS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//long//EN
BEGIN:VEVENT
UID:long-1
DTSTAMP:20261101T000000Z
DTSTART:20261127T100000Z
DTEND:20261127T110000Z
SUMMARY:{word}
LOCATION:{word}
DESCRIPTION:{word}
END:VEVENT
END:VCALENDAR
""".format(word="Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherung" * 3)


@pytest.mark.parametrize("layout", ["daily", "list"])
@pytest.mark.parametrize(
    ("name", "source", "range_"),
    [
        ("awkward", AWKWARD, "2027-03-26..2027-04-09"),
        ("hostile", HOSTILE.encode(), "next-7-days"),
        ("long", LONG_WORDS.encode(), "next-7-days"),
    ],
)
def test_snapshots_fit_a_600px_window(
    cli: Cli, tmp_path: Path, name: str, source: bytes, range_: str, layout: str
) -> None:
    add(cli, name, source, tmp_path)
    mail, _ = snap(cli, tmp_path, name, "--range", range_, "--layout", layout)
    for width in (600, 500):  # 500: the narrowest window headless Chromium opens
        scrolled, window = chromium.scroll_width(mail.html, width, tmp_path)
        assert window == width
        assert scrolled <= width, f"{layout} at {width} px scrolls sideways to {scrolled} px"


def test_a_whole_snapshot_renders_and_fits(cli: Cli, tmp_path: Path) -> None:
    add(cli, "big", generate(n_events=1000, start=date(2026, 11, 2)), tmp_path)
    mail, _ = snap(cli, tmp_path, "big", "--range", "whole")
    scrolled, _ = chromium.scroll_width(mail.html, 600, tmp_path)
    assert scrolled <= 600
    png = chromium.screenshot(mail.html, tmp_path / "big.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
