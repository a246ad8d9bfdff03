"""The store: one SQLite file, WAL, foreign keys, durable writes, forward migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from calshare.errors import StoreBusy, StoreError
from calshare.store import SCHEMA_VERSION, Store


def test_new_database_is_wal_with_foreign_keys_and_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "calshare.db"
    with Store.open(path) as store:
        pragma = store.db.execute
        assert pragma("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert pragma("PRAGMA foreign_keys").fetchone()[0] == 1
        assert pragma("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.schema_version == SCHEMA_VERSION
        assert {"owners", "calendars", "events", "occurrences"} <= set(store.db.table_names())
    assert path.exists()


def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "calshare.db"
    with Store.open(path) as store, store.write() as db:
        db.execute("INSERT INTO owners (email, created_at) VALUES ('a@example.org', 'now')")
    with Store.open(path) as store:
        assert store.db.execute("SELECT count(*) FROM owners").fetchone()[0] == 1
        assert store.schema_version == SCHEMA_VERSION


def test_write_rolls_back_everything_on_error(tmp_path: Path) -> None:
    with Store.open(tmp_path / "calshare.db") as store:
        with pytest.raises(RuntimeError), store.write() as db:
            db.execute("INSERT INTO owners (email, created_at) VALUES ('a@example.org', 'now')")
            raise RuntimeError("half-way")
        assert store.db.execute("SELECT count(*) FROM owners").fetchone()[0] == 0


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    with (
        Store.open(tmp_path / "calshare.db") as store,
        pytest.raises(sqlite3.IntegrityError),
        store.write() as db,
    ):
        orphan = "INSERT INTO calendars (name, owner_id, zone, created_at) VALUES (?, ?, ?, ?)"
        db.execute(orphan, ["x", 99, "UTC", "now"])


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "calshare.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable calshare database"):
        Store.open(path)
    assert path.read_bytes() == b"this is not sqlite" * 100


def test_a_database_from_a_newer_calshare_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calshare.db"
    with Store.open(path) as store:
        store.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer calshare"):
        Store.open(path)


def test_second_writer_waits_for_the_first(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: a writer that cannot get the lock in time gets StoreBusy, not half."""
    path = tmp_path / "calshare.db"
    with Store.open(path) as first, Store.open(path, busy_timeout_ms=100) as second:
        with first.write(), pytest.raises(StoreBusy, match="busy"), second.write() as db:
            db.execute("INSERT INTO owners (email, created_at) VALUES ('never@example.org', 'n')")
        with second.write() as db:  # the lock is free again
            db.execute("INSERT INTO owners (email, created_at) VALUES ('b@example.org', 'now')")
        assert first.db.execute("SELECT count(*) FROM owners").fetchone()[0] == 1


def test_opening_a_current_database_takes_no_write_lock(tmp_path: Path) -> None:
    """Readers (calendar list, feeds) must not wait for a writer in WAL mode."""
    path = tmp_path / "calshare.db"
    with (
        Store.open(path) as writer,
        writer.write(),
        Store.open(path, busy_timeout_ms=100) as reader,
    ):
        assert reader.db.execute("SELECT count(*) FROM calendars").fetchone()[0] == 0


def test_each_database_has_its_own_uid_key(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a.db") as one, Store.open(tmp_path / "b.db") as two:
        assert len(one.uid_key) == 32
        assert one.uid_key != two.uid_key
