"""The refresh benchmark (issue 13): a source with one event changed, against a full import.

Both are ``calshare.reindex.apply_source``, the daemon's refresh and ``calendar
import`` alike, timed side by side in this one process on the 5,000-event bench
calendar (bench/generate.py) with the benchmark's fixed clock and default settings:

- full import: the calendar applied to a freshly added calendar in a new SQLite
  file (read, parse, expand, write everything);
- one event changed: that calendar refreshed with one event's LOCATION changed,
  alternately on and off, so every run is a real one-event change (the bytes differ
  from the stored ones; the version moves);
- unchanged, re-ordered: the same events in another order (nothing to re-index,
  the version stays);
- same bytes: the shortcut when the bytes did not change at all.

Each timing is the best (and median) of several runs, time.perf_counter, a full
garbage collection between runs outside the timed part. Target: one event changed
costs at most 5 % of a full import. A missed target prints MISSED; exit status 0.

    .venv/bin/python bench/reindex.py [--events N] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from generate import generate, reference_now

from calshare.calendars import add_calendar
from calshare.clock import FixedClock
from calshare.config import Settings
from calshare.reindex import Applied, apply_source
from calshare.store import Store

TARGET_RATIO = 0.05
CALENDAR = "bench"


def _timed(operation: Callable[[], Applied]) -> tuple[float, Applied]:
    gc.collect()
    start = time.perf_counter()
    result = operation()
    return time.perf_counter() - start, result


def _summary(times: list[float]) -> dict[str, Any]:
    return {"best": min(times), "median": statistics.median(times), "runs": times}


def one_event_changed(data: bytes, number: int) -> bytes:
    """The calendar with event ``number``'s LOCATION set (a change every level can see)."""
    uid = f"UID:{number:05d}@bench.calshare\r\n".encode()
    assert uid in data
    return data.replace(uid, uid + b"LOCATION:Moved to room 2\r\n", 1)


def reordered(data: bytes) -> bytes:
    """The same VEVENTs, the last thousand moved to the front."""
    text = data.decode("utf-8")
    blocks = re.findall(r"BEGIN:VEVENT\r\n.*?END:VEVENT\r\n", text, re.DOTALL)
    head = text[: text.index(blocks[0])]
    tail = text[text.rindex(blocks[-1]) + len(blocks[-1]) :]
    return (head + "".join(blocks[-1000:] + blocks[:-1000]) + tail).encode("utf-8")


def measure(events: int, full_runs: int, refresh_runs: int, work: Path) -> dict[str, Any]:
    """Full imports and refreshes of the bench calendar; times in seconds."""
    clock = FixedClock(reference_now())
    settings = Settings()  # built-in defaults
    data = generate(events)
    changed = one_event_changed(data, events // 2)
    shuffled = reordered(data)
    assert len(shuffled) == len(data) and shuffled != data

    full: list[float] = []
    store: Store | None = None
    for run in range(full_runs):
        if store is not None:
            store.close()
        store = Store.open(work / f"full-{run}.db")
        add_calendar(store, clock, CALENDAR, "owner@example.org", None, "UTC")
        seconds, applied = _timed(
            lambda s=store: apply_source(s, settings, CALENDAR, data, "bench.ics", clock)
        )
        assert applied.full and applied.added == events
        full.append(seconds)
    assert store is not None

    one: list[float] = []
    current = data
    for _ in range(refresh_runs):
        current = changed if current is data else data
        seconds, applied = _timed(
            lambda c=current: apply_source(store, settings, CALENDAR, c, "bench.ics", clock)
        )
        assert not applied.full and applied.changed == 1 and applied.visible, applied
        one.append(seconds)
    last_one = applied

    quiet: list[float] = []
    for _ in range(refresh_runs):
        current = shuffled if current is not shuffled else data
        seconds, applied = _timed(
            lambda c=current: apply_source(store, settings, CALENDAR, c, "bench.ics", clock)
        )
        assert not applied.visible and applied.changed == 0, applied
        quiet.append(seconds)

    same: list[float] = []
    for _ in range(refresh_runs):
        seconds, applied = _timed(
            lambda: apply_source(store, settings, CALENDAR, current, "bench.ics", clock)
        )
        assert applied.same_bytes
        same.append(seconds)
    store.close()
    ratio = min(one) / min(full)
    return {
        "events": events,
        "bytes": len(data),
        "full_import": _summary(full),
        "one_event_changed": _summary(one),
        "reordered_unchanged": _summary(quiet),
        "same_bytes": _summary(same),
        "occurrences_rewritten": last_one.occurrences,
        "ratio_best": ratio,
        "ratio_median": statistics.median(one) / statistics.median(full),
        "target": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
    }


def report(result: dict[str, Any]) -> list[str]:
    """The table, as lines."""
    lines = [
        f"incremental refresh (issue 13): {result['events']:,} events, {result['bytes']:,} bytes",
        f"{'measurement':<32}{'best':>12}{'median':>12}{'runs':>6}",
    ]
    for key, label in (
        ("full_import", "full import (apply, new db)"),
        ("one_event_changed", "refresh, one event changed"),
        ("reordered_unchanged", "refresh, re-ordered, no change"),
        ("same_bytes", "refresh, same bytes"),
    ):
        item = result[key]
        lines.append(
            f"{label:<32}{item['best'] * 1000:>10.1f}ms{item['median'] * 1000:>10.1f}ms"
            f"{len(item['runs']):>6}"
        )
    lines.append(
        f"one event changed / full import: {result['ratio_best']:.2%} (best), "
        f"{result['ratio_median']:.2%} (median); {result['occurrences_rewritten']} occurrences"
        f" rewritten; target <= {result['target']:.0%}: {'MET' if result['met'] else 'MISSED'}"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark an incremental refresh.")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="calshare-reindex-") as tmp:
        result = measure(args.events, 1 if args.quick else 3, 4 if args.quick else 10, Path(tmp))
    print("\n".join(report(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
