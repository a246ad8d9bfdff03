"""One timestamp convention for the store: every ``*_at`` is UTC text, one formatter.

``clock.utc_text`` writes and ``clock.parse_utc`` reads every ``*_at`` column (and
``audit.at``): ``2026-11-27T09:00:00Z``. The schema of a new database (``Store.open``,
all migrations) is read back from SQLite and each such column must be declared
TEXT, each ``*_ts`` column INTEGER (epoch seconds, the occurrence index): a new
column that does not follow the convention fails here. What calshare writes into
them (a share, its invitation, a deferred mail, an unshare) is checked value by value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calshare.clock import FixedClock, parse_utc, utc_text
from calshare.store import Store
from mailer.outbox import claim, mark_deferred
from tests.conftest import CliResult

STORE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
ZONES = ["UTC", "Europe/Oslo", "America/St_Johns", "Asia/Kathmandu", "Pacific/Apia"]

moments = st.datetimes(
    min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


def _is_time(name: str) -> bool:
    return name == "at" or name.endswith("_at")


def columns(store: Store) -> list[tuple[str, str, str]]:
    """(table, column, declared type) of every column of every table."""
    tables = store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return [
        (table, column[1], column[2].upper())
        for (table,) in tables
        for column in store.db.execute(f"PRAGMA table_info({table})").fetchall()
    ]


def off_convention(store: Store) -> list[str]:
    found = []
    for table, name, declared in columns(store):
        if _is_time(name) and declared != "TEXT":
            found.append(f"{table}.{name} is {declared}: a *_at column is UTC text")
        if name.endswith("_ts") and declared != "INTEGER":
            found.append(f"{table}.{name} is {declared}: a *_ts column is epoch seconds")
    return found


def test_every_at_column_of_the_schema_is_utc_text(db_path: Path) -> None:
    with Store.open(db_path) as store:
        times = {f"{table}.{name}" for table, name, _ in columns(store) if _is_time(name)}
        assert {"outbox.next_attempt_at", "shares.expires_at", "audit.at"} <= times
        assert off_convention(store) == []


def test_a_column_off_the_convention_is_named(db_path: Path) -> None:
    """The check can fail: an epoch ``*_at`` (as the outbox's was) and a text ``*_ts``."""
    with Store.open(db_path) as store:
        with store.write() as db:
            db.execute("CREATE TABLE later (due_at INTEGER, start_ts TEXT)")
        assert off_convention(store) == [
            "later.due_at is INTEGER: a *_at column is UTC text",
            "later.start_ts is TEXT: a *_ts column is epoch seconds",
        ]


@given(moments, st.sampled_from(ZONES))
def test_utc_text_reads_back_as_the_same_second(moment: datetime, zone: str) -> None:
    local = moment.astimezone(ZoneInfo(zone))
    text = utc_text(local)
    assert STORE_TIME.fullmatch(text)
    assert parse_utc(text) == moment.replace(microsecond=0)
    assert parse_utc(text).tzinfo is UTC


@given(moments, moments)
def test_utc_text_sorts_as_time_does(first: datetime, second: datetime) -> None:
    """SQL compares these as text (``expires_at <= ?``, the outbox queue): same order."""
    a, b = first.replace(microsecond=0), second.replace(microsecond=0)
    assert (utc_text(a) < utc_text(b)) == (a < b)
    assert (utc_text(a) == utc_text(b)) == (a == b)


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        utc_text(datetime(2026, 11, 27, 9, 0))
    with pytest.raises(ValueError, match="zone"):
        parse_utc("2026-11-27T09:00:00")


def test_what_calshare_writes_into_the_at_columns_is_utc_text(
    cli: Callable[..., CliResult], db_path: Path, clock: FixedClock
) -> None:
    clock.advance(timedelta(microseconds=654321))  # the fraction is dropped, not rounded
    assert cli("calendar", "add", "project", "--owner", "Ann <ann@example.org>").code == 0
    shared = cli("share", "project", "bob@example.org", "--level", "titles")
    assert shared.code == 0, shared.err
    retry = clock.now() + timedelta(seconds=90)
    with Store.open(db_path) as store, store.write() as db:
        (mail,) = claim(db, clock.now(), 10)
        assert mail.created_at == clock.now().replace(microsecond=0)
        mark_deferred(db, mail.id, "451 4.3.0 try later", retry)
    clock.advance(timedelta(minutes=5))
    assert cli("unshare", "project", "bob@example.org").code == 0
    with Store.open(db_path) as store:
        written = [
            (f"{table}.{name}", value)
            for table, name, _ in columns(store)
            if _is_time(name)
            for (value,) in store.db.execute(f"SELECT {name} FROM {table}").fetchall()
            if value is not None
        ]
        (next_try,) = store.db.execute("SELECT next_attempt_at FROM outbox").fetchone()
    assert {column for column, _ in written} >= {
        "shares.revoked_at",
        "invitations.expires_at",
        "outbox.next_attempt_at",
        "audit.at",
    }
    assert [item for item in written if not STORE_TIME.fullmatch(str(item[1]))] == []
    assert (
        next_try == utc_text(retry) == (retry.replace(microsecond=0)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
