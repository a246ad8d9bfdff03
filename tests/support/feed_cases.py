"""Calendars for the feed tests: the corpus's zones, and ``calshare`` run in this process.

Shared by tests/test_clients_corpus.py and test_feed_series.py: each calendar is imported in
one of a rotating set of zones (southern DST, rules changing at 26:00 or before
midnight, no zone at all), through the CLI with the tests' fixed clock.
"""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path
from typing import Any

from calshare.cli import main
from calshare.clock import FixedClock
from calshare.levels import Level
from tests.conftest import NOW, ROOT

DEMO = sorted((ROOT / "calshare" / "demo_calendars").glob("*.ics"))
# None: the source's X-WR-TIMEZONE, else UTC.
ZONES = (
    "Europe/Oslo",
    None,
    "America/New_York",
    "Pacific/Auckland",
    "Asia/Jerusalem",
    "America/Nuuk",
    "Australia/Lord_Howe",
)
OWNER = "owner@example.org"


def label(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


class Runner:
    """``calshare ARGS`` in this process, on one database, with the tests' fixed clock."""

    def __init__(self, db: Path) -> None:
        self.env = {"CALSHARE_DB": str(db)}
        self.clock = FixedClock(NOW)

    def __call__(self, *args: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(args), clock=self.clock, env=self.env, stdout=out, stderr=err)
        assert code == 0, f"calshare {' '.join(args)}: {err.getvalue()}"
        return out.getvalue()

    def events(self, first: date, last: date, level: Level | None = None) -> list[Any]:
        flags = ["--level", str(level)] if level is not None else []
        found: list[Any] = json.loads(
            self("events", "cal", "--from", f"{first}", "--to", f"{last}", "--json", *flags)
        )
        return found
