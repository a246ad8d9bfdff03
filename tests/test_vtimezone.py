"""VTIMEZONEs from the tz database: the offsets they imply are zoneinfo's, in every reader.

Issue 10, defects 1 and 2: calshare wrote each zone as one multi-valued ``RDATE``,
which ical.js and vobject read only the first value of (Europe/Oslo summer events an
hour late from the 2026 autumn change on), and gave DAYLIGHT onsets as the local time
after the change (libical turned 2027-03-28 01:30Z into a non-existent 02:30).

The properties read the VTIMEZONE with dateutil's tzical (what vobject uses) and
icalendar's ``Timezone.to_tz``; the regressions run ical.js, vobject and libical.
"""

from __future__ import annotations

import io
import json
import subprocess
import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
import pytest
from dateutil import tz as dateutil_tz
from hypothesis import given, settings
from hypothesis import strategies as st

from calshare import ics_writer
from calshare.busy import Busy
from calshare.ics_writer import write_calendar
from calshare.occurrence import Occurrence
from calshare.vtimezone import (
    ZoneData,
    parse_posix,
    render,
    transitions_between,
    vtimezone,
    yearly_rule,
    zone_data,
)
from tests.support import clients

# "localtime" is this machine's zone under another name, "Factory" a placeholder
ZONES = sorted(zoneinfo.available_timezones() - {"Factory", "localtime"})
# Zones whose rules are awkward: southern DST, negative DST, 30-minute DST, changes at
# 24:00+ or before midnight, rules changed recently, no DST at all, offsets in seconds.
AWKWARD = [
    "Europe/Oslo",
    "Europe/Dublin",
    "Australia/Lord_Howe",
    "Asia/Jerusalem",
    "America/Nuuk",
    "America/Santiago",
    "Pacific/Auckland",
    "Africa/Casablanca",
    "Asia/Tehran",
    "America/Sao_Paulo",
    "Asia/Tokyo",
    "Europe/Amsterdam",
    "Antarctica/Troll",
    "America/Havana",
]


def _readers(text: str, key: str) -> list[tuple[str, object]]:
    return [
        ("dateutil", dateutil_tz.tzical(io.StringIO(text)).get(key)),
        ("icalendar", icalendar.Timezone.from_ical(text).to_tz(lookup_tzid=False)),
    ]


def _unambiguous_wall(moment: datetime, key: str) -> datetime | None:
    """The wall-clock time of ``moment`` in ``key``, if it happens only once."""
    zone = zoneinfo.ZoneInfo(key)
    local = moment.astimezone(zone)
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        return None  # twice (autumn): the writer gives such instants in UTC
    return local.replace(tzinfo=None)


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(ZONES) | st.sampled_from(AWKWARD),
    first=st.integers(1850, 2100),
    span=st.integers(0, 12),
    where=st.lists(st.floats(0, 1), min_size=1, max_size=25),
)
def test_offsets_match_zoneinfo(key: str, first: int, span: int, where: list[float]) -> None:
    last = first + span
    text = vtimezone(key, first, last)
    low = datetime(first, 1, 1, tzinfo=UTC)
    length = datetime(last, 12, 31, 23, tzinfo=UTC) - low
    for name, reader in _readers(text, key):
        for fraction in where:
            moment = low + length * fraction
            wall = _unambiguous_wall(moment, key)
            if wall is None:
                continue
            want = moment.astimezone(zoneinfo.ZoneInfo(key)).utcoffset()
            got = wall.replace(tzinfo=reader).utcoffset()  # type: ignore[arg-type]
            assert got == want, f"{name}: {key} {wall} ({first}..{last}): {got} != {want}\n{text}"


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(ZONES), first=st.integers(1900, 2060), span=st.integers(0, 40))
def test_no_multi_valued_rdate_and_lines_fit(key: str, first: int, span: int) -> None:
    text = vtimezone(key, first, first + span)
    assert text.endswith("END:VTIMEZONE\r\n")
    for line in text.split("\r\n")[:-1]:
        assert len(line.encode()) <= 75, line
        assert not line.startswith("RDATE"), line  # sub-components, never RDATE lists
    parsed = icalendar.Timezone.from_ical(text)
    assert str(parsed["TZID"]) == key
    kinds = [component.name for component in parsed.subcomponents]
    assert kinds and set(kinds) <= {"STANDARD", "DAYLIGHT"}


def test_oslo_is_the_eu_rule_with_onsets_before_the_change() -> None:
    text = vtimezone("Europe/Oslo", 2026, 2028)
    assert "RDATE" not in text
    daylight = text[text.index("BEGIN:DAYLIGHT") : text.index("END:DAYLIGHT")]
    standard = text[text.index("BEGIN:STANDARD") : text.index("END:STANDARD")]
    # RFC 5545 3.6.5: DTSTART is the local time before the change, in TZOFFSETFROM.
    assert "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n" in daylight
    assert "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200" in daylight
    assert daylight.split("DTSTART:")[1][8:15] == "T020000"
    assert "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n" in standard
    assert "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100" in standard
    assert standard.split("DTSTART:")[1][8:15] == "T030000"


def test_irregular_years_then_the_rule() -> None:
    """1990-1995 followed the old EU rule (September); the current rule from 1996."""
    text = vtimezone("Europe/Oslo", 1991, 1998)
    assert text.count("RRULE") == 2
    assert "DTSTART:19950924T030000" in text  # the last September change, on its own
    assert "DTSTART:19960331T020000\r\nRRULE:" in text


def test_a_year_without_the_rules_changes_is_no_rrule_year() -> None:
    """A zone that kept its rule but skipped DST one year: the RRULE starts after the gap."""
    rule = parse_posix("CET-1CEST,M3.5.0,M10.5.0/3")
    listed = [*rule.transitions(2019), *rule.transitions(2020), *rule.transitions(2022)]
    data = ZoneData((3600, False, "CET"), tuple(listed), rule)
    text = render(data, "Test/Skip", 2019, 2024)
    assert "DTSTART:20220327T020000\r\nRRULE:" in text
    zone = dateutil_tz.tzical(io.StringIO(text)).get("Test/Skip")
    for wall, hours in (
        (datetime(2020, 7, 1, 12), 2),
        (datetime(2021, 7, 1, 12), 1),  # no DST in 2021
        (datetime(2022, 7, 1, 12), 2),
        (datetime(2024, 7, 1, 12), 2),
        (datetime(2024, 12, 1, 12), 1),
    ):
        assert wall.replace(tzinfo=zone).utcoffset() == timedelta(hours=hours), wall


@pytest.mark.parametrize(
    ("posix", "start", "end"),
    [
        ("CET-1CEST,M3.5.0,M10.5.0/3", "BYMONTH=3;BYDAY=-1SU", "BYMONTH=10;BYDAY=-1SU"),
        ("EST5EDT,M3.2.0,M11.1.0", "BYMONTH=3;BYDAY=2SU", "BYMONTH=11;BYDAY=1SU"),
        (
            "IST-2IDT,M3.4.4/26,M10.5.0",  # Asia/Jerusalem: Thursday 26:00 is Friday 02:00
            "BYMONTH=3;BYDAY=FR;BYMONTHDAY=23,24,25,26,27,28,29",
            "BYMONTH=10;BYDAY=-1SU",
        ),
        (
            "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",  # America/Nuuk: Sunday -1:00 is Saturday 23:00
            "BYMONTH=3;BYDAY=SA;BYMONTHDAY=24,25,26,27,28,29,30",
            "BYMONTH=10;BYDAY=-1SU",
        ),
    ],
)
def test_posix_rules_become_rrules(posix: str, start: str, end: str) -> None:
    rule = parse_posix(posix)
    assert rule.start is not None and rule.end is not None
    assert yearly_rule(rule.start) == f"FREQ=YEARLY;{start}"
    assert yearly_rule(rule.end) == f"FREQ=YEARLY;{end}"


def test_every_zone_has_readable_data() -> None:
    for key in ZONES:
        zone_data(key)


# --- the clients the issue names


def _oslo_file(tmp_path: Path) -> tuple[Path, list[tuple[str, str, str]]]:
    """Events across the 2026..2028 changes of Europe/Oslo, as a feed would write them."""
    moments = [
        datetime(2026, 10, 20, 8, tzinfo=UTC),  # before the 2026 autumn change
        datetime(2026, 12, 10, 8, tzinfo=UTC),
        datetime(2027, 3, 28, 0, 30, tzinfo=UTC),  # 01:30 +01:00, just before the change
        datetime(2027, 3, 28, 1, 30, tzinfo=UTC),  # 03:30 +02:00, just after it
        datetime(2027, 7, 1, 7, tzinfo=UTC),  # summer: an hour late in ical.js and vobject
        datetime(2027, 10, 31, 2, 30, tzinfo=UTC),  # 03:30 +01:00
        datetime(2028, 6, 15, 12, tzinfo=UTC),
    ]
    found = [
        Occurrence(f"e{number}", start, start + timedelta(hours=1), False, Busy.BUSY, summary="x")
        for number, start in enumerate(moments)
    ]
    path = tmp_path / "oslo.ics"
    now = datetime(2026, 11, 26, 9, tzinfo=UTC)
    path.write_bytes(write_calendar(found, name="oslo", zone="Europe/Oslo", now=now))
    expected = [
        (item.uid, f"{item.start:%Y-%m-%dT%H:%M:%SZ}", f"{item.end:%Y-%m-%dT%H:%M:%SZ}")
        for item in found
    ]
    return path, expected


def test_issue_10_oslo_summer_instants_in_icaljs_vobject_and_libical(tmp_path: Path) -> None:
    path, expected = _oslo_file(tmp_path)
    for name, rows in (
        ("ical.js", clients.icaljs([path])[path]),
        ("vobject", clients.vobject_rows(path.read_bytes())),
        ("libical", clients.libical([path])[path]),
    ):
        assert [(uid, start, end) for uid, start, end, _ in rows] == expected, name


LIBICAL_TO_LOCAL = """
import json, sys
import gi
gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib as ICal
request = json.load(sys.stdin)
zone = ICal.Timezone.new()
zone.set_component(ICal.Component.new_from_string(request["vtimezone"]))
print(json.dumps([
    ICal.Time.new_from_string(moment).convert_to_zone(zone).as_ical_string()
    for moment in request["instants"]
]))
"""


def test_issue_10_libical_converts_utc_to_oslo_wall_time() -> None:
    """Defect 2: with the onset at 03:00 +01:00 libical said 02:30 for 01:30Z."""
    instants = ["20270328T003000Z", "20270328T013000Z", "20271031T003000Z", "20271031T013000Z"]
    done = subprocess.run(
        [str(clients.SYSTEM_PYTHON), "-c", LIBICAL_TO_LOCAL],
        input=json.dumps(
            {"vtimezone": ics_writer.vtimezone("Europe/Oslo", 2026, 2028), "instants": instants}
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, (
        "libical could not be run (install gir1.2-ical-3.0 and python3-gi): " + done.stderr
    )
    # 00:30Z and 01:30Z on 31 October are 02:30 CEST and 02:30 CET: both read 02:30.
    assert json.loads(done.stdout) == [
        "20270328T013000",
        "20270328T033000",
        "20271031T023000",
        "20271031T023000",
    ]


def test_zone_data_is_zoneinfos_own() -> None:
    """Transitions listed for a zone are where zoneinfo's offset changes."""
    data = zone_data("America/New_York")
    zone = zoneinfo.ZoneInfo("America/New_York")
    for item in data.transitions[-20:]:
        at = datetime.fromtimestamp(item.at, UTC)
        assert at.astimezone(zone).utcoffset() == timedelta(seconds=item.after)
        before = (at - timedelta(seconds=1)).astimezone(zone).utcoffset()
        assert before == timedelta(seconds=item.before)
    assert data.rule is not None and data.rule.std_offset == -5 * 3600


def test_every_zone_reads_right_in_icaljs_vobject_and_libical(tmp_path: Path) -> None:
    """For a quarter of the tz database's zones, events around their changes of 2000..2035.

    Written by the writer in that zone (instants whose wall time happens twice go out
    in UTC), read by the three clients: each must give back the instants written.
    """
    now = datetime(2026, 11, 26, 9, tzinfo=UTC)
    low = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
    high = int(datetime(2035, 12, 31, tzinfo=UTC).timestamp())
    expected: dict[Path, list[tuple[str, str, str]]] = {}
    for number, key in enumerate(sorted({*ZONES[::4], *AWKWARD})):  # 150 zones: ~15 s
        data = zone_data(key)
        changes = [item.at for item in transitions_between(data, low, high)]
        moments = {low + (high - low) * step // 12 for step in range(13)}
        for at in changes[:: max(1, len(changes) // 12)]:
            moments.update({at - 3600, at - 1, at, at + 1800})
        found = [
            Occurrence(
                f"e{at}",
                datetime.fromtimestamp(at, UTC),
                datetime.fromtimestamp(at + 5400, UTC),
                False,
                Busy.BUSY,
            )
            for at in sorted(moments)
        ]
        path = tmp_path / f"{number:03d}.ics"
        path.write_bytes(write_calendar(found, name=key, zone=key, now=now))
        expected[path] = [
            (item.uid, f"{item.start:%Y-%m-%dT%H:%M:%SZ}", f"{item.end:%Y-%m-%dT%H:%M:%SZ}")
            for item in found
        ]
    paths = list(expected)
    read = {
        "ical.js": clients.icaljs(paths),
        "libical": clients.libical(paths),
        "vobject": clients.vobject_files(paths),
    }
    problems = []
    for path, want in expected.items():
        for client, rows in read.items():
            got = [(uid, start, end) for uid, start, end, _ in rows[path]]
            if got != want:
                wrong = [(w, g) for w, g in zip(want, got, strict=False) if w != g]
                problems.append(f"{client} {path.read_text().split('TZID:')[1][:30]}: {wrong[:2]}")
    assert not problems, f"{len(problems)} zone/client pairs wrong:\n" + "\n".join(problems[:20])
