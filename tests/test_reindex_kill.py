"""kill -9 during a refresh: the calendar is the old version or the new one, never a mix.

A child process (a real ``python``) applies a large change of the 5,000-event bench
calendar to a real SQLite file with ``calshare.reindex.apply_source``; the test
SIGKILLs it at moments spread over its write transaction (the child prints each
BEGIN and COMMIT SQLite runs, through sqlite3's statement trace, so the test knows
when the transaction is open), and before it. Afterwards the file passes
``PRAGMA integrity_check`` and its events, occurrences and calendar row are exactly
those before the apply or exactly those after a complete one (compared by digest).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.generate import generate, reference_now
from calshare.calendars import add_calendar
from calshare.clock import FixedClock
from calshare.config import load_settings
from calshare.reindex import apply_source
from calshare.store import Store

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import sys
from pathlib import Path
from calshare.clock import FixedClock
from calshare.config import load_settings
from calshare.reindex import apply_source
from calshare.store import Store
from bench.generate import reference_now

def trace(statement):
    head = statement.split(None, 1)[0].upper() if statement.strip() else ""
    if head in ("BEGIN", "COMMIT", "ROLLBACK"):
        print(head, flush=True)

store = Store.open(sys.argv[1])
store.db.conn.set_trace_callback(trace)
data = Path(sys.argv[2]).read_bytes()
applied = apply_source(
    store, load_settings(None, env={}), "bench", data, "new.ics", FixedClock(reference_now())
)
print("DONE", applied.full, applied.changed, flush=True)
"""


def digest(path: Path) -> str:
    """The calendar as stored: every row of events, occurrences and calendars."""
    conn = sqlite3.connect(path)
    try:
        parts = []
        for table in ("events", "occurrences", "calendars"):
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()
            parts.append(repr(sorted(rows, key=repr)))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()
    finally:
        conn.close()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


@dataclass
class Run:
    lines: list[str]
    begun_at: float | None
    committed_at: float | None
    code: int


def run_child(db: Path, new: Path, kill_after: float | None, *, from_begin: bool) -> Run:
    """Run the child; SIGKILL it ``kill_after`` s after its BEGIN (or its start)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    lines: list[str] = []
    begun = committed = None
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(new)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        if kill_after is not None and not from_begin:
            time.sleep(kill_after)
            child.send_signal(signal.SIGKILL)
        for line in child.stdout:
            lines.append(line.strip())
            if line.startswith("BEGIN") and begun is None:
                begun = time.monotonic()
                if kill_after is not None and from_begin:
                    time.sleep(kill_after)
                    child.send_signal(signal.SIGKILL)
            elif line.startswith("COMMIT"):
                committed = time.monotonic()
        stderr = child.stderr.read()
        code = child.wait(timeout=300)
    if kill_after is None:
        assert code == 0, stderr
    return Run(lines, begun, committed, code)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store holding the bench calendar, and a large change of it (2 in 5 events)."""
    tmp = tmp_path_factory.mktemp("kill")
    base = generate()
    new = base
    for number in range(1, 5001, 5):
        for other in (number, number + 1):
            uid = f"UID:{other:05d}@bench.calshare\r\n".encode()
            new = new.replace(uid, uid + b"LOCATION:Moved after the refresh\r\n")
    assert new != base
    (tmp / "new.ics").write_bytes(new)
    db = tmp / "base.db"
    clock = FixedClock(reference_now())
    with Store.open(db) as store:
        add_calendar(store, clock, "bench", "owner@example.org", None, "UTC")
        apply_source(store, load_settings(None, env={}), "bench", base, "bench.ics", clock)
        with store.db.ensure_autocommit_on():
            store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db, tmp / "new.ics"


def test_kill_9_leaves_the_old_or_the_new_calendar(
    bench: tuple[Path, Path], tmp_path: Path
) -> None:
    base_db, new = bench
    old = digest(base_db)
    # A complete run: the new calendar, and how long its write transaction is open.
    complete = tmp_path / "complete.db"
    shutil.copyfile(base_db, complete)
    run = run_child(complete, new, None, from_begin=True)
    assert run.lines[-1].startswith("DONE False"), run.lines  # the incremental path
    assert run.begun_at is not None and run.committed_at is not None
    new_digest = digest(complete)
    assert new_digest != old
    assert integrity(complete) == "ok"
    open_for = run.committed_at - run.begun_at

    outcomes = []
    # before the transaction (while reading), then spread over it, then around its commit
    plans = [(1.0, False)] + [
        (open_for * share, True) for share in (0.0, 0.25, 0.5, 0.75, 0.95, 1.5, 3.0)
    ]
    for number, (delay, from_begin) in enumerate(plans):
        db = tmp_path / f"killed-{number}.db"
        shutil.copyfile(base_db, db)
        killed = run_child(db, new, delay, from_begin=from_begin)
        assert killed.code == -signal.SIGKILL or killed.lines[-1].startswith("DONE"), killed
        assert integrity(db) == "ok", (delay, killed.lines)
        after = digest(db)
        assert after in (old, new_digest), (delay, killed.lines)
        mid = "BEGIN" in killed.lines and "COMMIT" not in killed.lines
        outcomes.append((delay, mid, after == new_digest))
        # Opened again by calshare, the store works and is one of the two calendars.
        with Store.open(db) as store:
            count = store.db.execute("SELECT event_count FROM calendars").fetchone()[0]
            assert count == 5000
    # The test must have killed the child inside its write transaction, else it proves little.
    assert sum(1 for _, mid, _ in outcomes if mid) >= 2, outcomes
