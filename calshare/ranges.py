"""Date ranges as owners name them (``today``, ``next-7-days``, ``2026-12-01..2026-12-24``).

A range is whole days in the calendar's time zone: it starts at local midnight
of its first day and ends at local midnight after its last, so a day with a
DST change is 23 or 25 hours long and still one day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from calshare.errors import Field, UsageError

NAMED = ("today", "tomorrow", "next-7-days", "next-30-days", "whole")
MAX_DAYS = 100 * 366
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)  # the years calshare handles
_EXPLICIT = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class DateRange:
    """Inclusive days ``first``..``last``; ``start``/``end`` are the instants they span."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), self.zone)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), self.zone)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def each_day(self) -> list[date]:
        return [self.first + timedelta(days=offset) for offset in range(self.days)]


def _bad(message: str) -> UsageError:
    """A range the owner asked for is wrong: the edge shows it at its range field."""
    return UsageError(message, field=Field.RANGE)


def _checked(first: date, last: date, zone: ZoneInfo, text: str) -> DateRange:
    if last < first:
        raise _bad(f"The range {text!r} ends before it starts")
    if (last - first).days >= MAX_DAYS:
        raise _bad(f"The range {text!r} is longer than 100 years; ask for a shorter one")
    if first < FIRST_DAY or last > LAST_DAY:
        raise _bad(f"The range {text!r} is outside the years calshare handles (1900–2199)")
    return DateRange(first, last, zone)


def resolve_range(
    text: str, zone: ZoneInfo, now: datetime, whole: tuple[date, date] | None = None
) -> DateRange:
    """The days a range names, counted from today in ``zone``.

    ``whole`` is the calendar's own first and last day, which only the store
    knows (see snapshots.whole_days); without it ``whole`` is refused.
    """
    value = text.strip().lower()
    today = now.astimezone(zone).date()
    if value == "today":
        return DateRange(today, today, zone)
    if value == "tomorrow":
        tomorrow = today + timedelta(days=1)
        return DateRange(tomorrow, tomorrow, zone)
    if value in ("next-7-days", "next-30-days"):
        days = 7 if value == "next-7-days" else 30
        return DateRange(today, today + timedelta(days=days - 1), zone)
    if value == "whole":
        if whole is None:
            raise _bad("The whole calendar as a range needs the calendar's events")
        return _checked(whole[0], whole[1], zone, text)
    match = _EXPLICIT.fullmatch(value)
    if match is None:
        names = ", ".join(NAMED)
        raise _bad(f"{text!r} is not a range: use one of {names}, or YYYY-MM-DD..YYYY-MM-DD")
    try:
        first, last = date.fromisoformat(match[1]), date.fromisoformat(match[2])
    except ValueError:
        raise _bad(f"The range {text!r} names a day that does not exist") from None
    return _checked(first, last, zone, text)
