"""A deterministic calendar for the benchmark: many meetings, a tenth of them weekly series.

``generate()`` returns the bytes of one VCALENDAR with a Europe/Oslo VTIMEZONE and
``n_events`` VEVENTs spread over the year around ``start`` (half before, half after),
on weekdays in working hours, 30 to 90 minutes long. Every ``recurring_every``-th
event is a weekly series; by default the series never end (the worst case for an
index that has to stop somewhere), with ``bounded=True`` they end after 52
occurrences. The same arguments always give the same bytes.

    python bench/generate.py OUT.ics [--events N] [--bounded] [--seed S] [--start DATE]
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

DEFAULT_START = date(2026, 3, 16)  # a Monday; the 30 days after it cross the spring DST change
ZONE = "Europe/Oslo"

_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Oslo
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
END:DAYLIGHT
END:VTIMEZONE"""

_TOPICS = (
    "Aurora",
    "Budget",
    "Hiring",
    "Platform",
    "Søknad",
    "Roadmap",
    "Security",
    "Kundemøte",
    "Release 4.2",
    "Onboarding",
)
_KINDS = (
    "review",
    "planning",
    "sync",
    "workshop",
    "1:1",
    "retro",
    "demo",
    "status",
    "kick-off",
    "interview",
)
_LOCATIONS = (
    "Room Nordlys",
    "Video call",
    "Møterom 3, Oslo",
    "Kantina",
    "Bergen office; room 2",
    "Teams",
)
_SENTENCES = (
    "Agenda: status, risks, next steps.",
    "Please read the attached notes first.",
    "Join: https://meet.example.org/r/aurora",
    "Bring laptops; we will pair on the open issues.",
    "Vi tar en runde på hva som står igjen.",
    "Dial-in: +47 22 00 00 00, PIN 1234#",
)
_DURATIONS = (30, 45, 60, 60, 90)


def reference_now(start: date = DEFAULT_START) -> datetime:
    """The moment the benchmark treats as now (its FixedClock): ``start`` at noon UTC."""
    return datetime.combine(start, time(12), UTC)


def _escape(text: str) -> str:
    """An RFC 5545 TEXT value."""
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Fold a content line at 75 octets without splitting a UTF-8 character."""
    if len(line.encode("utf-8")) <= 75:
        return line + "\r\n"
    parts: list[str] = []
    current, size, limit = "", 0, 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size, limit = " ", 1, 75
        current += char
        size += width
    parts.append(current)
    return "\r\n".join(parts) + "\r\n"


def _weekday_near(rng: random.Random, start: date, days_before: int, days_after: int) -> date:
    day = start + timedelta(days=rng.randint(-days_before, days_after))
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _event(rng: random.Random, number: int, start: date, recurs: bool, bounded: bool) -> str:
    day = _weekday_near(rng, start, 182, 182)
    minutes = rng.randrange(8 * 60, 16 * 60, 15)
    begin = datetime.combine(day, time(minutes // 60, minutes % 60))
    end = begin + timedelta(minutes=rng.choice(_DURATIONS))
    lines = [
        "BEGIN:VEVENT",
        f"UID:{number:05d}@bench.calshare",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART;TZID={ZONE}:{begin:%Y%m%dT%H%M%S}",
        f"DTEND;TZID={ZONE}:{end:%Y%m%dT%H%M%S}",
    ]
    if recurs:
        lines.append("RRULE:FREQ=WEEKLY;COUNT=52" if bounded else "RRULE:FREQ=WEEKLY")
    lines.append(f"SUMMARY:{_escape(f'{rng.choice(_TOPICS)} {rng.choice(_KINDS)}')}")
    if rng.random() < 0.4:
        lines.append(f"LOCATION:{_escape(rng.choice(_LOCATIONS))}")
    if rng.random() < 0.15:
        text = " ".join(rng.sample(_SENTENCES, rng.randint(1, 3)))
        lines.append(f"DESCRIPTION:{_escape(text)}")
    if rng.random() < 0.05:
        lines.append("CLASS:PRIVATE")
    if rng.random() < 0.05:
        lines.append("STATUS:TENTATIVE")
    lines.append("END:VEVENT")
    return "".join(_fold(line) for line in lines)


def generate(
    n_events: int = 5000,
    recurring_every: int = 10,
    seed: int = 1,
    start: date = DEFAULT_START,
    *,
    bounded: bool = False,
) -> bytes:
    """The calendar as ICS bytes (CRLF line ends, folded at 75 octets)."""
    if n_events < 0 or recurring_every < 1:
        raise ValueError("n_events must be >= 0 and recurring_every >= 1")
    rng = random.Random(seed)
    head = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//calshare//benchmark generator//EN",
        "CALSCALE:GREGORIAN",
        "X-WR-CALNAME:Benchmark",
    ]
    parts = [_fold(line) for line in head]
    parts.append(_VTIMEZONE.replace("\n", "\r\n") + "\r\n")
    for number in range(1, n_events + 1):
        recurs = number % recurring_every == 0
        parts.append(_event(rng, number, start, recurs, bounded))
    parts.append("END:VCALENDAR\r\n")
    return "".join(parts).encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the benchmark calendar to a file.")
    parser.add_argument("out", type=Path, help="where to write the .ics")
    parser.add_argument("--events", type=int, default=5000, help="number of VEVENTs")
    parser.add_argument("--recurring-every", type=int, default=10, help="every Nth is a series")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START)
    parser.add_argument("--bounded", action="store_true", help="series end after 52 (COUNT=52)")
    args = parser.parse_args(argv)
    data = generate(args.events, args.recurring_every, args.seed, args.start, bounded=args.bounded)
    args.out.write_bytes(data)
    print(f"wrote {args.out}: {len(data):,} bytes, {args.events:,} events", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
