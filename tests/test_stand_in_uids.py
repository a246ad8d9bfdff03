"""Free-busy stand-in UIDs: always re-keyed, one per instance, marked out of band (issue 11, 6).

A source UID shaped like a stand-in (``busy-`` and 32 hex digits) used to pass through
verbatim, so a source could choose what viewers see; and all instances of a series
shared one stem, so viewers could group busy blocks into series. Now every stand-in is
a keyed hash of the calendar's key, the UID and the instance, and ``stand_in`` on the
occurrence (not the UID's shape) says what is one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
from hypothesis import given, settings
from hypothesis import strategies as st

from calshare.busy import Busy
from calshare.ics_writer import instance_uid, write_calendar
from calshare.levels import Level, filter_occurrence, opaque_uid, stand_in_key
from calshare.occurrence import Occurrence
from tests.conftest import CliResult

Cli = Callable[..., CliResult]

START = datetime(2026, 11, 30, 9, tzinfo=UTC)
SHAPED = "busy-" + "0123456789abcdef" * 2


def occurrence(uid: str, recurrence_id: str | None, **fields: object) -> Occurrence:
    return Occurrence(
        uid=uid,
        start=START,
        end=START + timedelta(hours=1),
        all_day=False,
        busy=Busy.BUSY,
        recurrence_id=recurrence_id,
        **fields,  # type: ignore[arg-type]
    )


uids = st.one_of(
    st.text(min_size=8, max_size=80),
    st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda hex_: "busy-" + hex_),
)
instances = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.strftime("%Y%m%dT%H%M%SZ"))


@settings(max_examples=300, deadline=None)
@given(uid=uids, first=instances, second=instances, key=st.binary(min_size=1, max_size=32))
def test_stand_ins_never_show_the_uid_and_differ_between_instances(
    uid: str, first: str, second: str, key: bytes
) -> None:
    """UIDs of 8 characters or more: a shorter one could sit in any hex string by chance."""
    one = filter_occurrence(occurrence(uid, first), Level.FREE_BUSY, uid_key=key)
    other = filter_occurrence(occurrence(uid, second), Level.FREE_BUSY, uid_key=key)
    for seen in (one, other):
        assert seen.stand_in is True and seen.recurrence_id is None
        assert seen.uid != uid and uid not in seen.uid
        assert seen.uid.startswith("busy-") and len(seen.uid) == 37
    assert (one.uid == other.uid) == (first == second)
    # Stable, and filtering again leaves a stand-in as it is.
    assert filter_occurrence(occurrence(uid, first), Level.FREE_BUSY, uid_key=key) == one
    assert filter_occurrence(one, Level.FREE_BUSY, uid_key=key) == one


def test_a_uid_shaped_like_a_stand_in_is_re_keyed() -> None:
    seen = filter_occurrence(occurrence(SHAPED, None), Level.FREE_BUSY, uid_key=b"key")
    assert seen.uid != SHAPED and seen.stand_in
    assert seen.uid == opaque_uid(SHAPED, b"key")


def test_the_mark_is_out_of_band_not_the_shape() -> None:
    """At details a source UID that looks like a stand-in is just a UID, written as it is."""
    shown = filter_occurrence(occurrence(SHAPED, None), Level.DETAILS, uid_key=b"key")
    assert shown.uid == SHAPED and not shown.stand_in
    assert instance_uid(shown) == SHAPED
    hidden = filter_occurrence(occurrence("u@x", "20261130T090000Z"), Level.FREE_BUSY)
    assert instance_uid(hidden) == hidden.uid


def test_each_calendar_has_its_own_key() -> None:
    assert stand_in_key(b"installation", 1) != stand_in_key(b"installation", 2)
    assert opaque_uid("u@x", stand_in_key(b"installation", 1), "i") != opaque_uid(
        "u@x", stand_in_key(b"installation", 2), "i"
    )


SERIES = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//calshare tests//EN\r
BEGIN:VEVENT\r
UID:weekly-secret-project@test\r
DTSTAMP:20261101T000000Z\r
DTSTART:20261127T090000Z\r
DURATION:PT1H\r
RRULE:FREQ=WEEKLY;COUNT=6\r
SUMMARY:Secret project\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:weekly-secret-project@test\r
DTSTAMP:20261101T000000Z\r
RECURRENCE-ID:20261204T090000Z\r
DTSTART:20261204T100000Z\r
DURATION:PT1H\r
SUMMARY:Secret project (moved)\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_instances_of_a_series_cannot_be_grouped_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "series.ics"
    source.write_text(SERIES, newline="")
    for name in ("one", "two"):
        assert cli("calendar", "add", name, "--owner", "owner@example.org").code == 0
        assert cli("calendar", "import", name, str(source)).code == 0
    window = ("--from", "2026-11-20", "--to", "2027-01-31", "--level", "free-busy", "--json")
    seen = {name: [item["uid"] for item in cli("events", name, *window).json()] for name in
            ("one", "two")}  # fmt: skip
    assert len(seen["one"]) == 6 and len(set(seen["one"])) == 6
    assert all("weekly-secret-project" not in uid for uid in seen["one"])
    # The same source in another calendar gives other stand-ins.
    assert not set(seen["one"]) & set(seen["two"])
    # Stable between asks, so a subscribed app keeps its blocks.
    again = cli("events", "one", *window).json()
    assert [item["uid"] for item in again] == seen["one"]


def test_a_free_busy_feed_has_one_unrelated_uid_per_block() -> None:
    series = [occurrence("s@x", f"202612{day:02d}T090000Z") for day in (1, 8, 15)]
    hidden = [filter_occurrence(o, Level.FREE_BUSY, uid_key=b"k") for o in series]
    text = write_calendar(hidden, name="c", zone="UTC", now=START).decode()
    found = [str(event["UID"]) for event in icalendar.Calendar.from_ical(text).walk("VEVENT")]
    assert len(set(found)) == 3
    stems = {uid[:37] for uid in found}
    assert len(stems) == 3  # no shared stem with a per-instance suffix
