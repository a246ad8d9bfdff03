"""The one clock, injected everywhere so tests can set the time; and how the store writes times.

Store convention: every ``*_at`` column (and ``audit.at``) is TEXT, a UTC instant to
the second as ``utc_text`` writes it (``2026-11-27T09:00:00Z``) and ``parse_utc``
reads it back. One fixed width and zone, so SQL compares and sorts them as text
(``expires_at <= ?``, the outbox's ``next_attempt_at <= ?``) and an operator reads
them as they are. Epoch seconds are kept only in ``*_ts`` columns and the occurrence
index's bounds (``indexed_from``/``indexed_until``): numbers there, for range
arithmetic. tests/test_timestamps.py checks the schema keeps to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

STORE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_text(moment: datetime) -> str:
    """``moment`` (aware) as the store keeps it: UTC, to the second (the fraction dropped)."""
    if moment.tzinfo is None:
        raise ValueError("utc_text needs an aware datetime")
    return moment.astimezone(UTC).strftime(STORE_FORMAT)


def parse_utc(text: str) -> datetime:
    """The aware UTC datetime of a time ``utc_text`` wrote (any ISO 8601 form with a zone)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} names no time zone")
    return moment.astimezone(UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that only moves when told to, for deterministic tests."""

    at: datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self.at = self.at.astimezone(UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta
