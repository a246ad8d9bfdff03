"""Expand series the way calendar apps do: ical.js (in node), vobject, recurring-ical-events.

Each expander reads one .ics file and gives, per occurrence that overlaps
[``first``, ``until``) (UTC seconds; an occurrence overlaps when it starts before
``until`` and ends after ``first``, or starts at ``first``), one row:
(start, end, SUMMARY, LOCATION, DESCRIPTION), with date-times as UTC instants
(``2027-03-28T01:30:00Z``) and dates as ``2027-03-28``; an event without an end
ends as it starts. All-day dates are placed in ``zone`` for the overlap test.
Each works on its own: overrides are bound to their master by UID and
RECURRENCE-ID the way that library does it (ical.js: ``relateException``;
vobject: ``getrruleset`` and a RECURRENCE-ID looked up by instant, as vobject's
own users do; recurring-ical-events: its own).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import vobject

from tests.support.clients import JS, ClientError

Row = tuple[str, str, str | None, str | None, str | None]


def _text(value: date | datetime) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ClientError(f"floating or unknown TZID: {value}")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def _seconds(text: str, zone: ZoneInfo) -> int:
    if "T" in text:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    return int(datetime.combine(date.fromisoformat(text), time(), zone).timestamp())


def overlaps(start: str, end: str, first: int, until: int, zone: ZoneInfo) -> bool:
    begin, finish = _seconds(start, zone), _seconds(end, zone)
    return begin < until and (finish > first or begin >= first)


def _kept(
    rows: list[tuple[str, str, Any, Any, Any]], first: int, until: int, zone: ZoneInfo
) -> list[Row]:
    return [
        (start, end, _str(summary), _str(location), _str(description))
        for start, end, summary, location, description in rows
        if overlaps(start, end, first, until, zone)
    ]


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def icaljs(
    paths: Sequence[Path], first: int, until: int, zones: dict[Path, ZoneInfo]
) -> dict[Path, list[Row]]:
    """Every file expanded by Mozilla's ical.js (tests/js/occurrences.mjs), in one node."""
    node = shutil.which("node")
    if node is None:
        raise ClientError("node is not installed: the ical.js tests need node (v20) and npm")
    if not (JS / "node_modules" / "ical.js").is_dir():
        raise ClientError("ical.js is not installed: run `npm ci --prefix tests/js`")
    request = {"paths": [str(path) for path in paths], "from": first, "until": until}
    done = subprocess.run(
        [node, str(JS / "occurrences.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise ClientError(f"node failed: {done.stderr[-2000:]}")
    found = json.loads(done.stdout)
    result: dict[Path, list[Row]] = {}
    for path in paths:
        rows = found[str(path)]
        if isinstance(rows, dict):
            raise ClientError(f"ical.js could not read {path}: {rows['error'][:2000]}")
        result[path] = _kept([tuple(row[1:]) for row in rows], first, until, zones[path])
    return result


def _key(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return _text(value)
    return value.isoformat()


def _vtext(event: Any, name: str) -> str | None:
    return event.contents[name][0].value if name in event.contents else None


def _vfields(event: Any) -> tuple[Any, Any, Any]:
    return _vtext(event, "summary"), _vtext(event, "location"), _vtext(event, "description")


def _vend(event: Any, start: date | datetime) -> date | datetime:
    if "dtend" in event.contents:
        end: date | datetime = event.dtend.value
        return end
    if "duration" in event.contents:
        return start + event.duration.value
    return start


def vobject_rows(data: bytes, first: int, until: int, zone: ZoneInfo) -> list[Row]:
    """What vobject (dateutil's rruleset under it) expands, as a fresh process would.

    vobject keeps the first VTIMEZONE it sees per TZID for the rest of the process,
    so the cache is emptied per file (see clients.vobject_rows).
    """
    registry = vars(vobject.icalendar)["__tzidMap"]
    utc = registry.get("UTC")
    registry.clear()
    registry["UTC"] = utc
    rows: list[tuple[str, str, Any, Any, Any]] = []
    stop = datetime.fromtimestamp(until, UTC) + timedelta(days=400)
    for calendar in vobject.readComponents(data.decode("utf-8")):
        events = calendar.contents.get("vevent", [])
        overrides = {
            (event.uid.value, _key(event.recurrence_id.value)): event
            for event in events
            if "recurrence_id" in event.contents
        }
        for event in events:
            if "recurrence_id" in event.contents:
                continue
            start = event.dtstart.value
            length = _vend(event, start) - start
            if "rrule" not in event.contents and "rdate" not in event.contents:
                rows.append((_text(start), _text(start + length), *_vfields(event)))
                continue
            all_day = not isinstance(start, datetime)
            for instance in event.getrruleset(addRDate=True):
                moment = instance.date() if all_day else instance
                if all_day:
                    if datetime.combine(moment, time(), UTC) > stop:
                        break
                elif moment > stop:
                    break
                override = overrides.pop((event.uid.value, _key(moment)), None)
                if override is None:
                    rows.append((_text(moment), _text(moment + length), *_vfields(event)))
                else:
                    begin = override.dtstart.value
                    rows.append((_text(begin), _text(_vend(override, begin)), *_vfields(override)))
        if overrides:
            raise ClientError(f"vobject: overrides of no instance: {sorted(overrides)[:3]}")
    return _kept(rows, first, until, zone)


def recurring_rows(data: bytes, first: int, until: int, zone: ZoneInfo) -> list[Row]:
    """What recurring-ical-events expands (the library calshare's own index uses)."""
    calendar = icalendar.Calendar.from_ical(data)
    span = (
        datetime.fromtimestamp(first, UTC) - timedelta(days=2),
        datetime.fromtimestamp(until, UTC) + timedelta(days=2),
    )
    rows: list[tuple[str, str, Any, Any, Any]] = []
    for event in recurring_ical_events.of(calendar).between(*span):
        start = event["DTSTART"].dt
        end = event["DTEND"].dt if "DTEND" in event else start
        rows.append(
            (
                _text(start),
                _text(end),
                event.get("SUMMARY"),
                event.get("LOCATION"),
                event.get("DESCRIPTION"),
            )
        )
    return _kept(rows, first, until, zone)
