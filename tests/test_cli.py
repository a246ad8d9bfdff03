"""The command line as a contract: its commands, their JSON, and one-line errors with exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, CliResult
from tests.support.ics import calendar

Cli = Callable[..., CliResult]


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("calshare: error: ")
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0]


def test_add_list_import_and_events(cli: Cli, tmp_path: Path) -> None:
    added = cli(
        "calendar", "add", "project", "--owner", "Ann <Ann@Example.org>", "--tz", "Europe/Oslo"
    )
    assert added.code == 0 and "project" in added.out
    path = tmp_path / "p.ics"
    path.write_bytes(calendar("UID:a\nSUMMARY:Kick-off\nDTSTART:20261201T090000Z"))
    imported = cli("calendar", "import", "project", str(path), "--json").json()
    assert imported | {"warnings": []} == {
        "calendar": "project",
        "source": str(path),
        "unchanged": False,
        "events": 1,
        "series": 0,
        "occurrences": 1,
        "warnings": [],
    }
    (listed,) = cli("calendar", "list", "--json").json()
    assert listed["owner"] == "ann@example.org" and listed["zone"] == "Europe/Oslo"
    table = cli("calendar", "list")
    assert "project" in table.out and "ann@example.org" in table.out
    agenda = cli("events", "project", "--from", "2026-12-01", "--to", "2026-12-01")
    assert "Kick-off" in agenda.out and "10:00" in agenda.out  # shown in Oslo time


def test_global_options_work_before_and_after_the_command(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    assert cli("--db", str(other), "calendar", "add", "a", "--owner", "a@example.org").code == 0
    assert cli("calendar", "list", "--db", str(other), "--json").json()[0]["name"] == "a"
    assert cli("calendar", "list", "--json").json() == []  # the default test database


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ["calendar", "import", "nope", "x.ics"],
            ["No calendar named 'nope'", "calendar add nope"],
        ),
        (["calendar", "add", "a", "--owner", "not-an-address"], ["not an email address"]),
        (
            ["calendar", "add", "a", "--owner", "a@example.org", "--tz", "Mars/Olympus"],
            ["time zone"],
        ),
        (["calendar", "add", "a/b", "--owner", "a@example.org"], ["cannot be a calendar name"]),
        (["calendar", "add", "a"], ["--owner"]),
        (["events", "nope", "--from", "2026-01-01", "--to", "2026-01-02"], ["No calendar named"]),
        (["frobnicate"], ["invalid choice"]),
        ([], ["required"]),
    ],
)
def test_errors_are_one_line_with_exit_2(cli: Cli, args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(cli(*args), *fragments)


@pytest.mark.parametrize(
    ("window", "fragment"),
    [
        (["--from", "yesterdayish", "--to", "2026-01-02"], "is not a date"),
        (["--from", "2026-02-01", "--to", "2026-01-01"], "is not after"),
        (["--from", "1900-01-01", "--to", "2100-01-01"], "longer than 100 years"),
        (["--from", "2026-01-01", "--to", "2026-01-02", "--level", "everything"], "Unknown level"),
    ],
)
def test_bad_windows_and_levels(cli: Cli, window: list[str], fragment: str) -> None:
    assert cli("calendar", "add", "a", "--owner", "a@example.org").code == 0
    assert_one_line_error(cli("events", "a", *window), fragment)


def test_duplicate_calendar_is_refused_and_nothing_changes(cli: Cli) -> None:
    """Names are unique per owner: the same owner twice is refused, another owner is not."""
    assert cli("calendar", "add", "a", "--owner", "a@example.org").code == 0
    assert_one_line_error(
        cli("calendar", "add", "a", "--owner", "A@example.org"), "exists already for a@example.org"
    )
    (only,) = cli("calendar", "list", "--json").json()
    assert only["owner"] == "a@example.org"
    assert cli("calendar", "add", "a", "--owner", "b@example.org").code == 0
    owners = [row["owner"] for row in cli("calendar", "list", "--json").json()]
    assert sorted(owners) == ["a@example.org", "b@example.org"]


def test_demo_seeds_two_calendars_once(cli: Cli) -> None:
    first = cli("demo")
    assert first.code == 0, first.err
    assert "project" in first.out and "family" in first.out
    assert "Stand-up" in first.out  # the clock says Thursday 26 November 2026
    second = cli("demo")
    assert "Imported" not in second.out
    assert [c["name"] for c in cli("calendar", "list", "--json").json()] == ["family", "project"]


def test_console_script_exits_2_with_one_line(tmp_path: Path) -> None:
    """The installed entry point, as scripts outside the project call it."""
    script = Path(sys.executable).with_name("calshare")
    env = {**os.environ, "CALSHARE_DB": str(tmp_path / "x.db")}
    done = subprocess.run(
        [str(script), "events", "missing", "--from", "2026-01-01", "--to", "2026-01-02"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("calshare: error: No calendar named 'missing'")
    assert len(done.stderr.splitlines()) == 1
    version = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert version.stdout.startswith("calshare ")


@pytest.mark.parametrize(
    "start", ["9999-12-31", "+99999999", "0001-01-01", "1850-01-01", "2250-06-01"]
)
def test_dates_out_of_range_are_one_line_errors(cli: Cli, start: str) -> None:
    assert cli("calendar", "add", "a", "--owner", "a@example.org").code == 0
    assert_one_line_error(cli("events", "a", "--from", start, "--to", start))


def test_terminal_control_characters_never_reach_the_terminal(cli: Cli, tmp_path: Path) -> None:
    assert cli("calendar", "add", "a", "--owner", "a@example.org").code == 0
    result = cli("calendar", "import", "a", str(tmp_path / "x\x1b[2Jy.ics"))
    assert_one_line_error(result, "No such file")
    assert "\x1b" not in result.err


def test_hidden_levels_give_times_in_the_calendars_zone(cli: Cli, tmp_path: Path) -> None:
    """An event kept in Asia/Tokyo would say where it happens; free-busy shows Oslo time."""
    assert cli("calendar", "add", "a", "--owner", "a@example.org", "--tz", "Europe/Oslo").code == 0
    path = tmp_path / "t.ics"
    path.write_bytes(
        calendar(
            "UID:tokyo-trip\nSUMMARY:Sales\nDTSTART;TZID=Asia/Tokyo:20261203T100000\n"
            "DTEND;TZID=Asia/Tokyo:20261203T110000",
            timezones="",
        )
    )
    assert cli("calendar", "import", "a", str(path)).code == 0
    window = ("--from", "2026-12-03", "--to", "2026-12-03", "--json")
    (owner,) = cli("events", "a", *window).json()
    assert owner["start"] == "2026-12-03T10:00:00+09:00"
    (hidden,) = cli("events", "a", *window, "--level", "free-busy").json()
    assert hidden["start"] == "2026-12-03T02:00:00+01:00"
    assert "tokyo" not in hidden["uid"]
    (titles,) = cli("events", "a", *window, "--level", "titles").json()
    assert titles["start"] == owner["start"] and titles["uid"] == "tokyo-trip"
