"""The privacy rule, as properties: a field a level hides never appears in any output at it.

Levels (docs/design.md, "Permission levels"):

* ``free-busy`` shows start, end and busy status only; even the UID is replaced,
  because producers write names and subjects into UIDs;
* ``titles`` adds summary and location;
* ``details`` shows everything;
* private items (CLASS:PRIVATE, CONFIDENTIAL or any class we do not know, RFC 5545
  section 3.8.1.3) are busy time only, at every level, unless the owner includes them.

Every secret text the strategies make carries its own *token*: ``Q`` followed by
eight letters drawn from an alphabet with no hex digit, no ``T`` and no ``Q``.
Nothing structural in an output (JSON keys, ISO times, busy words, ``busy-<hex>``
stand-in UIDs, the agenda's words) can contain one, the texts around tokens never
contain ``Q``, and tokens are all the same length and distinct: so "the token is in
the output" holds exactly when that field leaked, and the end-to-end test can check
both ways (hidden → absent, shown → present) on the raw text of stdout and stderr.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calshare.addresses import Mailbox
from calshare.busy import Busy
from calshare.ics_writer import stand_in_summary, write_calendar
from calshare.levels import Level, filter_occurrence, lower_of
from calshare.occurrence import Occurrence, occurrence_to_json
from calshare.pages import View, published_html, view_of
from calshare.ranges import DateRange
from mailer.compose import Sender
from mailer.snapshot import SnapshotRequest, snapshot
from tests.support import snapshot_mail
from tests.support.privacy_tokens import (
    CLASSES,
    SHOWN,
    STAND_INS,
    TEXT,
    TOKEN_ALPHABET,
    ZONES,
    Tokens,
    _is_private,
    _texts,
    around_one_line,
)

# --- what each level may show, written out here rather than read from calshare.levels

# Fields of Occurrence that are not the owner's text: times, busy status, identity.
STRUCTURAL = frozenset(
    {"uid", "start", "end", "all_day", "busy", "recurrence_id", "private", "stand_in"}
)
# Everything else is text a level can hide; free-busy hides all of it.
# JSON keys an output at a level may have at all.
ALLOWED_KEYS: dict[Level, frozenset[str]] = {
    Level.FREE_BUSY: frozenset({"uid", "start", "end", "all_day", "busy", "recurrence_id"}),
    Level.TITLES: frozenset(
        {"uid", "start", "end", "all_day", "busy", "recurrence_id", "private", *SHOWN[Level.TITLES]}
    ),
    Level.DETAILS: frozenset(
        {"uid", "start", "end", "all_day", "busy", "recurrence_id", "private", *TEXT}
    ),
}
LEVELS = tuple(Level)
ALL_LEVELS_AND_PRIVATE = [(level, private) for level in LEVELS for private in (False, True)]

# --- tokens and the texts that carry them

# --- a whole calendar


@dataclass
class Component:
    """One VEVENT as generated, and which token sits in which field."""

    uid: str
    uid_token: str
    private: bool
    summary: str | None = None
    tokens: dict[str, list[str]] = field(default_factory=dict)  # field -> tokens in it
    occurrences: int = 1


@dataclass
class GeneratedCalendar:
    ics: bytes
    components: list[Component]

    @property
    def occurrences(self) -> int:
        return sum(component.occurrences for component in self.components)


def _timed(draw: st.DrawFn, day: date) -> tuple[datetime, datetime]:
    zone = draw(st.sampled_from(ZONES))
    hour = draw(st.integers(0, 22))
    minute = draw(st.sampled_from([0, 15, 30, 45]))
    start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    return start, start + timedelta(minutes=draw(st.integers(15, 8 * 60)))


def _busy_properties(draw: st.DrawFn, event: icalendar.Event) -> None:
    status = draw(st.sampled_from([None, "CONFIRMED", "TENTATIVE", "CANCELLED"]))
    if status:
        event.add("status", status)
    if draw(st.booleans()):
        event.add("transp", draw(st.sampled_from(["OPAQUE", "TRANSPARENT"])))
    if draw(st.integers(0, 4)) == 0:
        event.add(
            "X-MICROSOFT-CDO-BUSYSTATUS",
            draw(st.sampled_from(["FREE", "TENTATIVE", "BUSY", "OOF", "WORKINGELSEWHERE"])),
        )


def _event(
    draw: st.DrawFn, pool: Tokens, uid: str, uid_token: str, start: Any, end: Any
) -> tuple[icalendar.Event, Component]:
    klass = draw(st.sampled_from(CLASSES))
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", datetime(2026, 11, 1, tzinfo=UTC))
    event.add("dtstart", start)
    event.add("dtend", end)
    if klass is not None:
        event.add("class", klass)
    component = Component(uid=uid, uid_token=uid_token, private=_is_private(klass))
    _texts(draw, pool, event, component)
    _busy_properties(draw, event)
    return event, component


@st.composite
def calendars(draw: st.DrawFn) -> GeneratedCalendar:
    """Several VEVENTs, some all-day, some weekly series (with an override now and then)."""
    pool = Tokens(draw)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//calshare tests//privacy//EN")
    calendar.add("version", "2.0")
    components: list[Component] = []
    for _ in range(draw(st.integers(1, 6))):
        uid_text, uid_token = pool.text(around_one_line)
        uid = f"{uid_text}@example.org"
        day = date(2026, 11, 27) + timedelta(days=draw(st.integers(0, 60)))
        all_day = draw(st.booleans())
        if all_day:
            start: date | datetime = day
            end: date | datetime = day + timedelta(days=draw(st.integers(1, 3)))
        else:
            start, end = _timed(draw, day)
        event, component = _event(draw, pool, uid, uid_token, start, end)
        calendar.add_component(event)
        components.append(component)
        if not draw(st.booleans()):
            continue
        count = draw(st.integers(2, 6))
        event.add("rrule", {"freq": "weekly", "count": count})
        component.occurrences = count
        if draw(st.booleans()):
            # An override of one instance (never the only one), moved by a few hours or days,
            # with its own texts and its own class, as Outlook and Google write them.
            which = draw(st.integers(1, count - 1))
            original = start + timedelta(weeks=which)
            shift = timedelta(days=1) if all_day else timedelta(hours=draw(st.integers(-3, 3)))
            override, moved = _event(
                draw, pool, uid, uid_token, original + shift, end + timedelta(weeks=which) + shift
            )
            override.add("recurrence-id", original)
            calendar.add_component(override)
            component.occurrences -= 1
            components.append(moved)
    calendar.add_missing_timezones()
    return GeneratedCalendar(calendar.to_ical(), components)


# --- end to end: import through the CLI, read back at every level


WINDOW = ("--from", "2026-11-20", "--to", "2027-04-30")
SNAPSHOT_RANGE = "2026-11-20..2027-04-30"
NOW_UTC = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # the same days as WINDOW
HIDDEN_AT_FREE_BUSY = {"LOCATION", "DESCRIPTION", "ATTENDEE", "ORGANIZER", "ATTACH"}
# A hidden title is written as the busy status in words (issue 10), nothing else.
_names = (f"privacy-{uuid.uuid4().hex[:12]}-{n}" for n in range(1_000_000))


def _visible(component: Component, level: Level, include_private: bool) -> frozenset[str]:
    if component.private and not include_private:
        return frozenset()
    return SHOWN[level]


def _uid_visible(
    components: list[Component], uid: str, level: Level, include_private: bool
) -> bool:
    """A UID may show at titles and up, if some component with it is not reduced."""
    if level is Level.FREE_BUSY:
        return False
    return any(
        not (component.private and not include_private)
        for component in components
        if component.uid == uid
    )


def _where(token: str, text: str) -> str:
    at = text.find(token)
    return text[max(0, at - 200) : at + 200] if at >= 0 else ""


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=calendars())
def test_no_output_shows_what_its_level_hides(
    generated: GeneratedCalendar, cli: Callable[..., Any], tmp_path: Path
) -> None:
    name = next(_names)
    source = tmp_path / f"{name}.ics"
    source.write_bytes(generated.ics)
    added = cli("calendar", "add", name, "--owner", "owner@example.org")
    assert added.code == 0, added.err
    imported = cli("calendar", "import", name, str(source))
    assert imported.code == 0, imported.err

    owner = cli("events", name, *WINDOW, "--json")
    assert owner.code == 0, owner.err
    shapes = None
    for level, include_private in ALL_LEVELS_AND_PRIVATE:
        flags = ["--level", str(level), *(["--include-private"] if include_private else [])]
        result = cli("events", name, *WINDOW, *flags, "--json")
        assert result.code == 0, result.err
        agenda = cli("events", name, *WINDOW, *flags)
        assert agenda.code == 0, agenda.err
        everything = result.out + result.err + agenda.out + agenda.err
        found = result.json()
        label = f"--level {level}{' --include-private' if include_private else ''}"

        # The rule: a hidden field's text is nowhere in any output at this level.
        for component in generated.components:
            visible = _visible(component, level, include_private)
            for name_of_field, field_tokens in component.tokens.items():
                for token in field_tokens:
                    if name_of_field not in visible:
                        assert token not in everything, (
                            f"{label}: {name_of_field} of {component.uid!r} "
                            f"(private={component.private}) leaked: {_where(token, everything)!r}"
                        )
                    else:
                        # Shown fields do show: the hidden checks are not vacuous.
                        assert token in result.out, (
                            f"{label}: {name_of_field} of {component.uid!r} is missing"
                        )
            token = component.uid_token
            if _uid_visible(generated.components, component.uid, level, include_private):
                assert token in result.out, f"{label}: UID {component.uid!r} is missing"
            else:
                assert token not in everything, (
                    f"{label}: UID {component.uid!r} (private={component.private}) "
                    f"leaked: {_where(token, everything)!r}"
                )

        # Only keys the level allows; a level hides text, never time.
        for item in found:
            assert set(item) <= ALLOWED_KEYS[level], f"{label}: {sorted(item)}"
            if level is Level.FREE_BUSY:
                assert "private" not in item
        # The same instants at every level (hidden levels give them in the calendar's
        # zone rather than the event's own, which could say where it takes place).
        shape = [
            (_instant(item["start"]), _instant(item["end"]), item["all_day"], item["busy"])
            for item in found
        ]
        if shapes is None:
            shapes = shape
        assert shape == shapes, f"{label}: levels disagree on times or busy status"
        assert len(found) == generated.occurrences, f"{label}: occurrences lost or added"

        # The snapshot at this level, in both layouts: HTML, text, .ics and headers.
        for layout in ("daily", "list"):
            eml = tmp_path / f"{name}-{level}-{include_private}-{layout}.eml"
            snap = cli(
                "snapshot", name, "--range", SNAPSHOT_RANGE, "--detail", str(level),
                "--layout", layout, *flags[2:], "--out", str(eml),
            )  # fmt: skip
            assert snap.code == 0, snap.err
            mail = snapshot_mail.read(eml.read_bytes())
            shown = mail.everything + snap.out + snap.err
            for component in generated.components:
                visible = _visible(component, level, include_private)
                for name_of_field, field_tokens in component.tokens.items():
                    for token in field_tokens:
                        if name_of_field not in visible:
                            assert token not in shown, (
                                f"snapshot {layout} {label}: {name_of_field} of "
                                f"{component.uid!r} leaked: {_where(token, shown)!r}"
                            )
                if not _uid_visible(generated.components, component.uid, level, include_private):
                    assert component.uid_token not in shown, (
                        f"snapshot {layout} {label}: UID {component.uid!r} leaked"
                    )
            vevents = mail.calendar().walk("VEVENT")
            assert len(vevents) == generated.occurrences, f"snapshot {label}: events lost"
            if level is Level.FREE_BUSY:
                for vevent in vevents:
                    assert not set(vevent) & HIDDEN_AT_FREE_BUSY, f"{label}: {sorted(vevent)}"
                    assert str(vevent["SUMMARY"]) in STAND_INS, f"{label}: {vevent['SUMMARY']}"

        if level is Level.DETAILS and include_private:
            # The owner's view (no --level) is details with private items included.
            assert owner.json() == found
            summaries = {item.get("summary") for item in found}
            for component in generated.components:
                assert component.summary in summaries, f"summary of {component.uid!r} lost"


# --- the filter itself, field by field


instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2040, 1, 1),
    timezones=st.sampled_from([UTC, ZoneInfo("Europe/Oslo"), ZoneInfo("Asia/Kolkata")]),
)


@st.composite
def occurrences(draw: st.DrawFn) -> Occurrence:
    """An occurrence as the index returns it, every text with its own token."""
    return _occurrence(draw, Tokens(draw))


@st.composite
def occurrence_lists(draw: st.DrawFn) -> list[Occurrence]:
    """A few occurrences whose tokens are all distinct (one pool for all of them)."""
    pool = Tokens(draw)
    return [_occurrence(draw, pool) for _ in range(draw(st.integers(1, 4)))]


def _occurrence(draw: st.DrawFn, pool: Tokens) -> Occurrence:

    def secret() -> str:
        return pool.text()[0]

    def maybe() -> str | None:
        return secret() if draw(st.booleans()) else None

    def some() -> tuple[str, ...]:
        return tuple(secret() for _ in range(draw(st.integers(0, 3))))

    all_day = draw(st.booleans())
    if all_day:
        day = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 1, 1)))
        start: date | datetime = day
        end: date | datetime = day + timedelta(days=draw(st.integers(1, 5)))
    else:
        start = draw(instants)
        end = start + timedelta(minutes=draw(st.integers(0, 3000)))
    return Occurrence(
        uid=secret(),
        start=start,
        end=end,
        all_day=all_day,
        busy=draw(st.sampled_from(list(Busy))),
        recurrence_id=draw(st.none() | st.just("20261201T090000Z")),
        private=draw(st.booleans()),
        status=draw(st.none() | st.sampled_from(["confirmed", "tentative", "cancelled"])),
        summary=maybe(),
        location=maybe(),
        description=maybe(),
        organizer=maybe(),
        attendees=some(),
        categories=some(),
        url=maybe(),
    )


def _secrets(occurrence: Occurrence) -> dict[str, list[str]]:
    """The secret text of each field, as a list (empty where the field is empty).

    ``status`` is left out: its words (confirmed, tentative, cancelled) are no secret
    and ``busy`` legitimately says "tentative"; the field-by-field check covers it.
    """
    result: dict[str, list[str]] = {}
    for name in (*TEXT, "uid"):
        if name == "status":
            continue
        value = getattr(occurrence, name)
        if isinstance(value, tuple):
            result[name] = list(value)
        else:
            result[name] = [value] if value else []
    return result


def _instant(text: str) -> date | datetime:
    """An ISO date stays a date; an ISO datetime becomes the instant it names."""
    return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)


def test_every_occurrence_field_is_classified() -> None:
    """A new field on Occurrence must be placed here before it can reach any output."""
    names = set(Occurrence._fields)
    assert names == STRUCTURAL | set(TEXT)


@settings(max_examples=300, deadline=None)
@given(occurrence=occurrences())
def test_filter_hides_what_each_level_hides(occurrence: Occurrence) -> None:
    texts = _secrets(occurrence)
    for level, include_private in ALL_LEVELS_AND_PRIVATE:
        seen = filter_occurrence(occurrence, level, include_private=include_private)
        reduced = occurrence.private and not include_private
        shown = frozenset() if reduced else SHOWN[level]
        label = f"{level} include_private={include_private} private={occurrence.private}"

        # Time and busy status always pass through (as the same instants).
        for name in ("start", "end", "all_day", "busy"):
            assert getattr(seen, name) == getattr(occurrence, name), f"{label}: {name}"
        # Where the UID is hidden, so is the RECURRENCE-ID that ties the block to its series.
        hidden_identity = reduced or level is Level.FREE_BUSY
        expected_rid = None if hidden_identity else occurrence.recurrence_id
        assert seen.recurrence_id == expected_rid, f"{label}: recurrence_id"

        for name in TEXT:
            value = getattr(seen, name)
            if name in shown:
                assert value == getattr(occurrence, name), f"{label}: {name} changed"
            else:
                assert not value, f"{label}: {name} not hidden: {value!r}"

        if reduced or level is Level.FREE_BUSY:
            assert seen.uid != occurrence.uid
            assert occurrence.uid not in seen.uid and seen.uid.isascii()
            # Stable, so a calendar app can still tell one busy block from another.
            again = filter_occurrence(occurrence, level, include_private=include_private)
            assert again.uid == seen.uid
            assert seen.private is False
        else:
            assert seen.uid == occurrence.uid
            assert seen.private == occurrence.private

        # Whatever renders the filtered occurrence cannot find hidden text in it.
        rendered = occurrence_to_json(seen)
        assert set(rendered) <= ALLOWED_KEYS[level], f"{label}: {sorted(rendered)}"
        dumped = json.dumps(rendered, ensure_ascii=False) + repr(seen)
        for name, values in texts.items():
            visible = name in shown or (name == "uid" and seen.uid == occurrence.uid)
            if visible:
                continue
            for text in values:
                assert text not in dumped, f"{label}: {name} leaked"

    # Private items not included are busy time exactly as at free-busy, at every level.
    if occurrence.private:
        busy_only = filter_occurrence(occurrence, Level.FREE_BUSY)
        for level in LEVELS:
            assert filter_occurrence(occurrence, level) == busy_only


@settings(max_examples=300, deadline=None)
@given(occurrence=occurrences(), include_private=st.booleans())
def test_filter_is_idempotent(occurrence: Occurrence, include_private: bool) -> None:
    for level in LEVELS:
        once = filter_occurrence(occurrence, level, include_private=include_private)
        twice = filter_occurrence(once, level, include_private=include_private)
        assert twice == once, f"{level}: filtering twice changed {_diff(once, twice)}"


@settings(max_examples=300, deadline=None)
@given(occurrence=occurrences(), include_private=st.booleans())
def test_filter_never_raises_the_level(occurrence: Occurrence, include_private: bool) -> None:
    """Filtering at A then at B is filtering at the lower of the two: a level is a ceiling."""
    for first in LEVELS:
        for second in LEVELS:
            chained = filter_occurrence(
                filter_occurrence(occurrence, first, include_private=include_private),
                second,
                include_private=include_private,
            )
            direct = filter_occurrence(
                occurrence, lower_of(first, second), include_private=include_private
            )
            assert chained == direct, f"{first} then {second}: {_diff(direct, chained)}"


def _diff(expected: Occurrence, actual: Occurrence) -> dict[str, tuple[object, object]]:
    return {
        name: (getattr(expected, name), getattr(actual, name))
        for name in Occurrence._fields
        if getattr(expected, name) != getattr(actual, name)
    }


# --- feeds, published pages and snapshot mails, rendered from filtered occurrences

TOKEN_PATTERN = re.compile("Q[" + TOKEN_ALPHABET + "]{8}")


def _tokens_of(values: list[str]) -> set[str]:
    return {token for value in values for token in TOKEN_PATTERN.findall(value)}


def _local_day(occurrence: Occurrence, zone: ZoneInfo) -> date:
    start = occurrence.start
    return start.astimezone(zone).date() if isinstance(start, datetime) else start


@settings(max_examples=60, deadline=None)
@given(found=occurrence_lists())
def test_feeds_pages_and_snapshots_hide_what_each_level_hides(found: list[Occurrence]) -> None:
    """The three web/mail renderers, fed the one filter's output, show nothing it hid."""
    oslo = ZoneInfo("Europe/Oslo")
    found.sort(key=lambda o: _instant(o.start.isoformat()).isoformat())
    first = min(o.start if not isinstance(o.start, datetime) else o.start.date() for o in found)
    last = max(o.end if not isinstance(o.end, datetime) else o.end.date() for o in found)
    days = DateRange(first, max(first, last), oslo)
    sender = Sender("share.example.org", Mailbox("calendar@share.example.org", "Calendar"),
                    Mailbox("owner@example.org", "Owner"))  # fmt: skip
    for level, include_private in ALL_LEVELS_AND_PRIVATE:
        seen = [
            filter_occurrence(o, level, include_private=include_private, zone=oslo) for o in found
        ]
        feed = write_calendar(seen, name="c", zone="Europe/Oslo", now=datetime.now(UTC)).decode()
        # the published page in each of its views, over the days of every occurrence
        views = [View("agenda", days)] + [
            view_of(kind, _local_day(o, oslo), oslo) for o in seen for kind in ("month", "week")
        ]
        page = "".join(
            published_html(
                calendar="c",
                zone="Europe/Oslo",
                owner="Owner",
                level=level,
                view=view,
                occurrences=seen,
                lang="en",
                ics_url="c.ics",
                webcal_url="c.ics",
                nav=None,
                domain="share.example.org",
                today=view.days.first,
            )
            for view in views
        )
        request = SnapshotRequest("c", "Europe/Oslo", days, level, "daily", "en",
                                  include_private, None)  # fmt: skip
        mail = snapshot_mail.read(
            snapshot(sender, Mailbox("r@example.org"), seen, request, now=NOW_UTC).raw
        )
        outputs = {
            "feed": feed.replace("\r\n ", ""),
            "page": page,
            "mail": mail.everything,
        }
        # Every VEVENT has a SUMMARY; where the title is hidden it is the busy status in
        # words, the same for every event of that status: it cannot carry hidden text.
        summaries = [
            str(vevent["SUMMARY"]) for vevent in icalendar.Calendar.from_ical(feed).walk("VEVENT")
        ]
        assert len(summaries) == len(seen)
        for original, shown_one, summary in zip(found, seen, summaries, strict=True):
            if shown_one.summary:
                assert summary == shown_one.summary.replace("\r\n", "\n").replace("\r", "\n")
            else:
                assert summary == stand_in_summary(original.busy, "en"), (level, summary)
                assert not TOKEN_PATTERN.search(summary)
        for original, shown_one in zip(found, seen, strict=True):
            reduced = original.private and not include_private
            shown = frozenset() if reduced else SHOWN[level]
            for name, values in _secrets(original).items():
                visible = name in shown or (name == "uid" and shown_one.uid == original.uid)
                if visible:
                    continue
                for token in _tokens_of(values):
                    for where, text in outputs.items():
                        assert token not in text, (
                            f"{where} at {level} (include_private={include_private}): "
                            f"{name} leaked: {_where(token, text)!r}"
                        )
