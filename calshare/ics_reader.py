"""Read an iCalendar file into events we can store, or say clearly why not.

icalendar is the authority on content; this module adds what it lacks for an
import: line numbers, a structural check that catches truncated and garbled
files before anything is stored, and recovery so that one broken VEVENT is
skipped with a warning instead of failing the whole file.
"""

from __future__ import annotations

import functools
import hashlib
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import icalendar
import x_wr_timezone

from calshare.busy import Busy, busy_status
from calshare.errors import ImportFailed

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# A content line as RFC 5545 writes it: NAME *(;PARAM=VALUE) : VALUE. Only used to
# point at the line icalendar rejected; icalendar itself decides what is valid.
_CONTENT_LINE = re.compile(
    r"[A-Za-z0-9-]+(?:;[A-Za-z0-9-]+=(?:\"[^\"]*\"|[^\";:,]*)(?:,(?:\"[^\"]*\"|[^\";:,]*))*)*:"
)
NO_UID = "no-uid-"
# What icalendar and recurring-ical-events raise on bad data (all ValueError subclasses
# of theirs included); anything else is a bug in calshare and propagates.
PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


@dataclass(frozen=True)
class Span:
    """A component in the file: its name and its first and last physical line (0-based)."""

    name: str
    first: int
    last: int
    children: tuple[Span, ...] = ()


@dataclass
class SourceEvent:
    """One VEVENT as imported: the parsed component and its text as written."""

    line: int  # 1-based line of BEGIN:VEVENT
    ical: str
    component: icalendar.Event
    uid: str = ""
    source_tz: str | None = None  # the X-WR-TIMEZONE of the VCALENDAR it came from
    recurrence_id: str | None = None
    recurs: bool = False
    busy: Busy = Busy.BUSY
    status: str | None = None
    private: bool = False
    summary: str | None = None
    location: str | None = None
    description: str | None = None
    organizer: str | None = None
    attendees: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    url: str | None = None


@dataclass
class ParsedCalendar:
    events: list[SourceEvent] = field(default_factory=list)
    vtimezones: str = ""
    name: str | None = None  # X-WR-CALNAME
    tz: str | None = None  # X-WR-TIMEZONE
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per VEVENT left out
    vevent_count: int = 0  # VEVENTs in the file, usable or not
    # UIDs whose series was left out because its RRULE never occurs (see reindex: a
    # partial read must know every UID it touched, kept or not)
    dropped_uids: set[str] = field(default_factory=set)


def decode(data: bytes, label: str) -> tuple[str, list[str]]:
    """Bytes to text, refusing what is not a text calendar at all."""
    notes: list[str] = []
    if not data.strip():
        raise ImportFailed(f"{label} is empty: there is no calendar in it")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # some Windows tools export UTF-16
        try:
            return data.decode("utf-16"), [f"{label} is UTF-16; read it as such"]
        except UnicodeDecodeError:
            raise ImportFailed(f"{label} starts like UTF-16 but is not valid UTF-16") from None
    if b"\x00" in data:
        raise ImportFailed(f"{label} is not an iCalendar file (it holds binary data)")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), notes
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), [f"{label} is not UTF-8; read it as Windows-1252"]
    except UnicodeDecodeError:
        return data.decode("latin-1"), [f"{label} is not UTF-8; read it as ISO-8859-1"]


def scan(lines: list[str], label: str) -> tuple[list[Span], list[int]]:
    """Check BEGIN/END nesting; return the top-level components and stray lines between them.

    Unfolding is not needed: a continuation line starts with a space or tab, so it
    can never look like a BEGIN or END line.
    """
    stack: list[tuple[str, int, list[Span]]] = []
    top: list[Span] = []
    stray: list[int] = []
    for number, line in enumerate(lines):
        if not line or line[0] in " \t":
            continue
        if stack and line[0] not in "BbEe":
            continue  # a property line: the bulk of a file, and nothing to check here
        head = line[:6].upper()
        if head == "BEGIN:":
            stack.append((line[6:].strip().upper(), number, []))
        elif line[:4].upper() == "END:":
            name = line[4:].strip().upper()
            if not stack:
                raise ImportFailed(f"{label}, line {number + 1}: END:{name} without a BEGIN")
            opened, first, children = stack.pop()
            if name != opened:
                raise ImportFailed(
                    f"{label}, line {number + 1}: END:{name} does not close "
                    f"BEGIN:{opened} from line {first + 1}"
                )
            span = Span(opened, first, number, tuple(children))
            (stack[-1][2] if stack else top).append(span)
        elif not stack and line.strip():
            if not top:
                raise ImportFailed(
                    f"{label} is not an iCalendar file: line {number + 1} is "
                    f"{_preview(line)}, not BEGIN:VCALENDAR"
                )
            stray.append(number)
    if stack:
        name, first, _ = stack[0]
        raise ImportFailed(
            f"{label} is truncated: BEGIN:{name} at line {first + 1} is never closed "
            f"(the file ends at line {len(lines)})"
        )
    if not top:
        raise ImportFailed(f"{label} is not an iCalendar file: it has no BEGIN:VCALENDAR")
    return top, stray


def _preview(line: str) -> str:
    text = line if len(line) <= 40 else line[:40] + "…"
    return repr(text)


def _text_of(lines: list[str], span: Span) -> str:
    return "\r\n".join(lines[span.first : span.last + 1]) + "\r\n"


def _first_bad_line(lines: list[str], numbers: Iterable[int]) -> int | None:
    """The first of these lines that is not a content line: to point at what icalendar rejected."""
    for number in numbers:
        line = lines[number]
        if not line.strip() or line[0] in " \t":
            continue
        if not _CONTENT_LINE.match(line):
            return number
    return None


def _line_quoted_in(lines: list[str], numbers: Iterable[int], message: str) -> int | None:
    """The first line holding a value the error message quotes ('…' or "was …")."""
    quoted = re.findall(r"'([^']{2,})'|was (\S{2,})", message)
    needles = [first or second for first, second in quoted]
    for number in numbers:
        if any(needle in lines[number] for needle in needles):
            return number
    return None


def _parse(text: str) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(text)


@dataclass(frozen=True)
class _Part:
    """One VCALENDAR to parse, its children numbered as lines of the file."""

    text: str  # the whole VCALENDAR
    shell_lines: tuple[int, ...]  # the file's lines outside its VEVENTs
    children: tuple[Span, ...]


_WRAPPER_START, _WRAPPER_END = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", "END:VCALENDAR\r\n"


def wrap_calendar(components: str, *, x_wr_timezone: str | None = None) -> str:
    """Components (as text) inside a minimal VCALENDAR."""
    header = f"X-WR-TIMEZONE:{x_wr_timezone}\r\n" if x_wr_timezone else ""
    return _WRAPPER_START + header + components + _WRAPPER_END


def read_calendar(
    data: bytes, label: str, *, max_timezone_transitions: int | None = None
) -> ParsedCalendar:
    """Parse a whole calendar file; raises ImportFailed with the line at fault.

    What icalendar warns about (a guessed time zone, say) comes back as warnings
    of the result, not as Python warnings on stderr. A VTIMEZONE with more than
    ``max_timezone_transitions`` is refused before parsing (see check_timezones).
    """
    text, notes = decode(data, label)
    return read_lines(
        _LINE_BREAK.split(text),
        label,
        notes=notes,
        max_timezone_transitions=max_timezone_transitions,
    )


def split_lines(data: bytes, label: str) -> tuple[list[str], list[str]]:
    """The physical lines of a calendar file, and notes on its encoding (see decode)."""
    text, notes = decode(data, label)
    return _LINE_BREAK.split(text), notes


def read_lines(
    lines: list[str],
    label: str,
    *,
    notes: list[str] | None = None,
    max_timezone_transitions: int | None = None,
    structure: tuple[list[Span], list[int]] | None = None,
) -> ParsedCalendar:
    """read_calendar on a file already decoded and split into its physical lines.

    calshare.reindex reads a changed calendar with its unchanged VEVENTs blanked
    out (empty lines), so that what it reads keeps the line numbers of the file;
    it knows the structure (``scan``'s answer) already and hands it in.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _read_lines(lines, label, list(notes or []), max_timezone_transitions, structure)
    result.warnings.extend(f"{label}: {warning.message}" for warning in caught)
    return result


_TRANSITION_LINE = re.compile(r"^(?:BEGIN:(?:STANDARD|DAYLIGHT)\s*$|RDATE[;:])", re.IGNORECASE)
_UNFOLD = re.compile(r"\r\n[ \t]")


def timezone_transitions(vtimezone_text: str) -> int:
    """STANDARD/DAYLIGHT parts and RDATE values of one VTIMEZONE.

    What an offset lookup costs grows with this number (dateutil walks every part
    for every lookup, the RDATEs of each too): 10,000 made one hourly series take
    most of a minute to expand.
    """
    count = 0
    for line in _UNFOLD.sub("", vtimezone_text).split("\r\n"):
        if _TRANSITION_LINE.match(line):
            count += line.partition(":")[2].count(",") + 1 if line[:5].upper() == "RDATE" else 1
    return count


def check_timezones(lines: list[str], spans: Iterable[Span], label: str, limit: int) -> None:
    """Refuse a VTIMEZONE with more than ``limit`` transitions, naming it and its line."""
    for span in spans:
        if span.name == "VCALENDAR":
            check_timezones(lines, span.children, label, limit)
        elif span.name == "VTIMEZONE":
            text = _text_of(lines, span)
            count = timezone_transitions(text)
            if count > limit:
                raise ImportFailed(
                    f"{label}, line {span.first + 1}: VTIMEZONE {_shorten(_tzid_of(text))!r} "
                    f"has {count:,} transitions, more than {limit:,} "
                    "([calendars] max_timezone_transitions); nothing was imported"
                )


def _shorten(text: str) -> str:
    return text if len(text) <= 60 else text[:60] + "…"


def _read_lines(
    lines: list[str],
    label: str,
    notes: list[str],
    max_timezone_transitions: int | None,
    structure: tuple[list[Span], list[int]] | None,
) -> ParsedCalendar:
    top, stray = structure if structure is not None else scan(lines, label)
    if max_timezone_transitions is not None:
        check_timezones(lines, top, label, max_timezone_transitions)
    result = ParsedCalendar(warnings=notes)
    for number in stray:
        result.warnings.append(
            f"{label}, line {number + 1}: ignored {_preview(lines[number])} outside any component"
        )
    parts = []
    for span in top:
        if span.name == "VCALENDAR":
            inside = set(_physical([c for c in span.children if c.name == "VEVENT"]))
            outside = tuple(n for n in range(span.first, span.last + 1) if n not in inside)
            parts.append(_Part(_text_of(lines, span), outside, span.children))
    loose = tuple(span for span in top if span.name in ("VEVENT", "VTIMEZONE"))
    if loose:
        # Bare events (some tools export them so): read them as one calendar.
        result.warnings.append(
            f"{label}: {len(loose)} component(s) stand outside a VCALENDAR; imported them as one"
        )
        body = "".join(_text_of(lines, span) for span in loose)
        zones = tuple(_physical([span for span in loose if span.name == "VTIMEZONE"]))
        parts.append(_Part(_WRAPPER_START + body + _WRAPPER_END, zones, loose))
    if not parts:
        names = ", ".join(sorted({span.name for span in top}))
        raise ImportFailed(f"{label} is not an iCalendar calendar: it holds {names}, no VCALENDAR")

    seen_tzids: set[str] = set()
    for part in parts:
        _read_part(label, part, lines, result)
        for child in part.children:
            if child.name == "VTIMEZONE":
                tz_text = _text_of(lines, child)
                if _tzid_of(tz_text) not in seen_tzids:
                    seen_tzids.add(_tzid_of(tz_text))
                    result.vtimezones += tz_text
    _skip_rules_that_never_occur(label, result)
    return result


def _skip_rules_that_never_occur(label: str, result: ParsedCalendar) -> None:
    """Leave out every series whose RRULE can match no date, with its overrides.

    dateutil would scan such a rule to the year 9999 (seconds of work, with no
    instance at which the expansion's clock could stop it) and find nothing.
    """
    never: dict[str, str] = {}
    for event in result.events:
        if event.uid not in never and "RRULE" in event.component:
            why = never_occurs(event.component.get("RRULE"))
            if why is not None:
                name = f"event {event.uid!r}" if not event.uid.startswith(NO_UID) else "an event"
                if event.summary and event.summary.strip():
                    name += f" ({_shorten(' '.join(event.summary.split()))!r})"
                never[event.uid] = why
                result.dropped_uids.add(event.uid)
                result.skipped.append(f"{label}, line {event.line}: skipped {name}: {why}")
    if never:
        result.events = [event for event in result.events if event.uid not in never]


_MONTH_LENGTHS = {
    False: (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31),
    True: (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31),
}


def never_occurs(rrule: Any) -> str | None:
    """Why an RRULE (one vRecur or several) can match no date at all, or None.

    Only BYMONTH, BYMONTHDAY and BYYEARDAY are compared (BYMONTH=2;BYMONTHDAY=30,
    BYMONTH=4;BYMONTHDAY=31, BYYEARDAY=1;BYMONTH=2); a rule that matches some
    date in a leap or a common year, however rarely, is kept. BYWEEKNO, BYDAY
    and BYSETPOS are not looked at: such rules are left to the expansion's caps.
    """
    for rule in rrule if isinstance(rrule, list) else [rrule]:
        try:
            parts = tuple(
                frozenset(int(value) for value in rule.get(name, ()))
                for name in ("BYMONTH", "BYMONTHDAY", "BYYEARDAY")
            )
        except (TypeError, ValueError, AttributeError):
            continue  # RSCALE leap months ("5L") and the like: not ours to judge
        if any(parts) and not _some_day_matches(*parts):
            text = rule.to_ical().decode("utf-8", "replace")
            return (
                f"its RRULE {text!r} never occurs (no date has such a BYMONTH, BYMONTHDAY"
                " and BYYEARDAY)"
            )
    return None


@functools.lru_cache(maxsize=512)
def _some_day_matches(
    months: frozenset[int], month_days: frozenset[int], year_days: frozenset[int]
) -> bool:
    """Does a day of a common or a leap year match all three (empty: any)?"""
    for leap, lengths in _MONTH_LENGTHS.items():
        year_length = 366 if leap else 365
        before = 0
        for month, length in enumerate(lengths, 1):
            if not months or month in months:
                for day in range(1, length + 1):
                    if month_days and not {day, day - length - 1} & month_days:
                        continue
                    year_day = before + day
                    if year_days and not {year_day, year_day - year_length - 1} & year_days:
                        continue
                    return True
            before += length
    return False


def _physical(spans: list[Span]) -> list[int]:
    return [number for span in spans for number in range(span.first, span.last + 1)]


def _tzid_of(vtimezone_text: str) -> str:
    match = re.search(r"^TZID[^:]*:(.*)$", vtimezone_text, re.MULTILINE | re.IGNORECASE)
    return match[1].strip() if match else vtimezone_text


def _read_part(label: str, part: _Part, lines: list[str], result: ParsedCalendar) -> None:
    """Parse one VCALENDAR; on failure, retry event by event to find the bad ones."""
    event_spans = [child for child in part.children if child.name == "VEVENT"]
    result.vevent_count += len(event_spans)
    calendar: icalendar.Calendar | None
    try:
        calendar = _parse(part.text)
        if len([c for c in calendar.subcomponents if c.name == "VEVENT"]) != len(event_spans):
            calendar = None
    except PARSE_ERRORS:
        calendar = None
    if calendar is None:
        calendar, event_spans = _read_event_by_event(label, part, lines, result)
    try:
        standard = x_wr_timezone.to_standard(calendar)
    except PARSE_ERRORS as exc:
        result.warnings.append(f"{label}: could not apply X-WR-TIMEZONE ({reason(exc)})")
        standard = calendar
    # Google and Outlook write X-WR-CALNAME; RFC 7986 calls it NAME
    result.name = result.name or _string(calendar, "X-WR-CALNAME") or _string(calendar, "NAME")
    result.tz = result.tz or _string(calendar, "X-WR-TIMEZONE")
    components = [c for c in standard.subcomponents if c.name == "VEVENT"]
    if len(components) != len(event_spans):
        result.warnings.append(f"{label}: could not apply X-WR-TIMEZONE; times kept as written")
        components = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    part_tz = _string(calendar, "X-WR-TIMEZONE")
    for event_span, component in zip(event_spans, components, strict=True):
        event = SourceEvent(
            line=event_span.first + 1,
            ical=_text_of(lines, event_span),
            component=component,
            source_tz=part_tz,
        )
        try:
            describe(event)
        except PARSE_ERRORS as exc:
            result.skipped.append(f"{label}, line {event.line}: skipped an event: {reason(exc)}")
            continue
        if getattr(component, "errors", None):
            # icalendar drops a line it cannot read and only notes it on the component.
            bad = _first_bad_line(lines, range(event_span.first, event_span.last + 1))
            line = (bad if bad is not None else event_span.first) + 1
            shown = f" {_preview(lines[bad])}" if bad is not None else ""
            result.warnings.append(
                f"{label}, line {line}: ignored a line that is not an iCalendar property{shown}"
            )
        result.events.append(event)


def _read_event_by_event(
    label: str, part: _Part, lines: list[str], result: ParsedCalendar
) -> tuple[icalendar.Calendar, list[Span]]:
    """The slow path: the calendar without its events, then each event on its own."""
    shell_text = "\r\n".join(lines[number] for number in part.shell_lines) + "\r\n"
    if not part.shell_lines or not shell_text.upper().startswith("BEGIN:VCALENDAR"):
        shell_text = _WRAPPER_START + shell_text.strip() + "\r\n" + _WRAPPER_END
    try:
        shell = _parse(shell_text)
    except PARSE_ERRORS as exc:
        bad = _first_bad_line(lines, part.shell_lines)
        if bad is None:
            bad = _line_quoted_in(lines, part.shell_lines, str(exc))
        where = f", line {bad + 1}: {_preview(lines[bad])}" if bad is not None else ""
        raise ImportFailed(f"{label}{where} cannot be read: {reason(exc)}") from None
    timezones = "".join(
        _text_of(lines, child) for child in part.children if child.name == "VTIMEZONE"
    )
    kept: list[Span] = []
    for span in (child for child in part.children if child.name == "VEVENT"):
        text = _WRAPPER_START + timezones + _text_of(lines, span) + _WRAPPER_END
        try:
            events = [c for c in _parse(text).subcomponents if c.name == "VEVENT"]
        except PARSE_ERRORS as exc:
            bad = _first_bad_line(lines, range(span.first, span.last + 1))
            line = (bad if bad is not None else span.first) + 1
            result.skipped.append(f"{label}, line {line}: skipped an event: {reason(exc)}")
            continue
        if len(events) != 1:
            result.skipped.append(
                f"{label}, line {span.first + 1}: skipped an event that could not be read"
            )
            continue
        shell.add_component(events[0])
        kept.append(span)
    return shell, kept


def reason(exc: BaseException) -> str:
    """An exception as a short, printable, single-line reason."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"it has no {text.strip(chr(39))}"
    text = "".join(char if char.isprintable() else "?" for char in text)
    return text if len(text) <= 160 else text[:160] + "…"


# --- fields of one event


def time_key(value: date | datetime) -> str:
    """A time in iCalendar's basic form, UTC when it has a zone: for RECURRENCE-IDs."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        return value.strftime("%Y%m%dT%H%M%S")
    return value.strftime("%Y%m%d")


def _first(component: icalendar.cal.Component, name: str) -> Any:
    value = component.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _string(component: icalendar.cal.Component, name: str) -> str | None:
    value = _first(component, name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _person(value: Any) -> str:
    address = str(value).strip()
    if address.lower().startswith("mailto:"):
        address = address[len("mailto:") :]
    params = getattr(value, "params", {}) or {}
    name = str(params.get("CN", "")).strip().strip('"')
    if name and address:
        return f"{name} <{address}>"
    return name or address


def _categories(component: icalendar.Event) -> tuple[str, ...]:
    raw = component.get("CATEGORIES")
    if raw is None:
        return ()
    values = raw if isinstance(raw, list) else [raw]
    result: list[str] = []
    for value in values:
        cats = getattr(value, "cats", None)
        if cats is None:
            cats = [str(value)]
        result.extend(str(cat).strip() for cat in cats if str(cat).strip())
    return tuple(result)


def describe(event: SourceEvent) -> None:
    """Fill in the fields every output needs, from the parsed component."""
    component = event.component
    for name in ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID"):
        if isinstance(component.get(name), list):
            raise ValueError(f"it has {name} more than once")
    uid = _string(component, "UID")
    if uid is None:
        # Stable across re-imports of the same text, so feeds keep their UIDs.
        digest = hashlib.sha256(event.ical.encode("utf-8", "surrogatepass")).hexdigest()
        uid = f"{NO_UID}{digest[:24]}"
    event.uid = uid
    if "RECURRENCE-ID" in component:
        prop: Any = component["RECURRENCE-ID"]
        value = prop.dt
        if not isinstance(value, date):
            raise ValueError("its RECURRENCE-ID is not a date or time")
        event.recurrence_id = time_key(value)
    event.recurs = any(name in component for name in ("RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"))
    status = _string(component, "STATUS")
    event.status = status.lower() if status else None
    event.busy = busy_status(
        status=status,
        transp=_string(component, "TRANSP"),
        microsoft_busy=_string(component, "X-MICROSOFT-CDO-BUSYSTATUS"),
        microsoft_intended=_string(component, "X-MICROSOFT-CDO-INTENDEDSTATUS"),
    )
    # RFC 5545: unknown classes are to be treated like PRIVATE; a (broken) event with
    # several CLASS lines is private if any of them says anything but PUBLIC.
    classes = component.get("CLASS")
    values = classes if isinstance(classes, list) else [classes or "PUBLIC"]
    event.private = any(str(value).strip().upper() != "PUBLIC" for value in values)
    event.summary = _string(component, "SUMMARY")
    event.location = _string(component, "LOCATION")
    event.description = _string(component, "DESCRIPTION")
    organizer = _first(component, "ORGANIZER")
    event.organizer = _person(organizer) if organizer is not None else None
    attendees = component.get("ATTENDEE")
    if attendees is not None:
        items = attendees if isinstance(attendees, list) else [attendees]
        event.attendees = tuple(_person(item) for item in items if str(item).strip())
    event.categories = _categories(component)
    event.url = _string(component, "URL")
