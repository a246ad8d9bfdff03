"""Calendar clients nobody here wrote, reading our .ics files: ical.js, vobject, libical.

Each reader returns, per file, one row per VEVENT: (UID, start, end, SUMMARY), with
date-times as UTC instants (``2027-03-28T01:30:00Z``) and dates as ``2027-03-28``. An
event without DTEND ends as it starts. ical.js (Thunderbird, most web clients) runs in
node, from tests/js (``npm ci --prefix tests/js``); libical (Evolution) through Debian's
gir1.2-ical-3.0 in the system Python; vobject in this process. Files are read in
batches, one node and one /usr/bin/python3 process for many files.

A missing tool fails the test that needs it, saying what to install.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import vobject

HERE = Path(__file__).resolve().parent
JS = HERE.parent / "js"  # tests/js, where the Makefile installs ical.js
SYSTEM_PYTHON = Path("/usr/bin/python3")

Row = tuple[str, str, str, str | None]


class ClientError(AssertionError):
    """A client could not run or could not read a file: the test fails with this."""


def _value(value: date | datetime) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ClientError(f"floating or unknown TZID: {value}")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def _decode(raw: str, paths: Sequence[Path], who: str) -> dict[Path, list[Row]]:
    found = json.loads(raw)
    result: dict[Path, list[Row]] = {}
    for path in paths:
        rows = found[str(path)]
        if isinstance(rows, dict):
            raise ClientError(f"{who} could not read {path}: {rows['error']}")
        result[path] = [(uid, start, end, summary) for uid, start, end, summary in rows]
    return result


def icaljs(paths: Sequence[Path]) -> dict[Path, list[Row]]:
    """What Mozilla's ical.js (npm ``ical.js``, as locked in tests/js) reads."""
    node = shutil.which("node")
    if node is None:
        raise ClientError("node is not installed: the ical.js tests need node (v20) and npm")
    if not (JS / "node_modules" / "ical.js").is_dir():
        raise ClientError("ical.js is not installed: run `npm ci --prefix tests/js`")
    done = subprocess.run(
        [node, str(JS / "instants.mjs")],
        input=json.dumps([str(path) for path in paths]),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise ClientError(f"node failed: {done.stderr[-2000:]}")
    return _decode(done.stdout, paths, "ical.js")


def libical(paths: Sequence[Path]) -> dict[Path, list[Row]]:
    """What libical reads (through ICalGLib, Debian's gir1.2-ical-3.0)."""
    if not SYSTEM_PYTHON.exists():
        raise ClientError("/usr/bin/python3 is missing: libical is read through it")
    done = subprocess.run(
        [str(SYSTEM_PYTHON), str(HERE / "libical_instants.py")],
        input=json.dumps([str(path) for path in paths]),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise ClientError(
            "libical could not be run (install the Debian packages gir1.2-ical-3.0 and "
            f"python3-gi: `make system-packages`): {done.stderr[-2000:]}"
        )
    return _decode(done.stdout, paths, "libical")


def vobject_rows(data: bytes) -> list[Row]:
    """What vobject (and dateutil's tzical under it) reads, as a fresh process would.

    vobject keeps the first VTIMEZONE it sees per TZID for the rest of the process
    (``registerTzinfo``), so each file is read with that cache emptied: otherwise an
    earlier file's Europe/Oslo, written for other years, would stand in for this one's.
    """
    registry = vars(vobject.icalendar)["__tzidMap"]
    utc = registry.get("UTC")
    registry.clear()
    registry["UTC"] = utc
    rows: list[Row] = []
    for calendar in vobject.readComponents(data.decode("utf-8")):
        for event in calendar.contents.get("vevent", []):
            if "rrule" in event.contents or "rdate" in event.contents:
                raise ClientError("a VEVENT recurs: expected expanded instances")
            start = event.dtstart.value
            end = event.dtend.value if "dtend" in event.contents else start
            summary = event.summary.value if "summary" in event.contents else None
            rows.append((event.uid.value, _value(start), _value(end), summary))
    return rows


def vobject_files(paths: Sequence[Path]) -> dict[Path, list[Row]]:
    return {path: vobject_rows(path.read_bytes()) for path in paths}
