"""The feed benchmark: how fast does ``calshare serve --http`` answer calendar apps?

The 5,000-event benchmark calendar (generate.py) is imported and shared with 1,000
accepted grants (a third at each level). ``calshare serve --http`` runs as its own
process; a load client in this process (aiohttp, 20 connections) asks for random
grants' feeds:

- 200s: full feeds (the first request per level renders; later ones are cached);
- 304s: the same requests with If-None-Match;

and reports p50/p99 latency, requests per second and the daemon's peak memory
(VmHWM). Beside them, the naive path: parsing the same ICS and expanding the
feed's window for each request, as a server without an index would.

Issue 15 (feeds keep series) adds, measured in the same run: the details feed's bytes
against the source's (target at most 1.2x), the first render of each level after a
change (a new calendar version; target under 100 ms), both for this code and for
main before the change (``OLD_REVISION``, loaded with ``git show``), and the 200/304
p50 of main's daemon (``git archive`` of OLD_REVISION, on the same database).

Targets (from the issue): 200 in under 20 ms p50 and 50 ms p99, 304 under 2 ms p50.

    .venv/bin/python bench/feeds.py [--grants N] [--requests N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import icalendar
import recurring_ical_events
from generate import ZONE, generate
from mail import free_port

from calshare.calendars import add_calendar
from calshare.clock import SystemClock
from calshare.config import Settings
from calshare.importer import import_calendar
from calshare.levels import Level
from calshare.store import Store
from calshare.tokens import new_token, token_hash

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "feeds.json"
CALSHARE = ROOT / ".venv" / "bin" / "calshare"
CONNECTIONS = 20
TARGETS = {"full_p50": 0.020, "full_p99": 0.050, "not_modified_p50": 0.002}
OLD_REVISION = "1e7ad49"  # main before feeds kept series (issue 15), for the old numbers


def prepare(db: Path, grants: int) -> tuple[list[str], bytes]:
    """The calendar and ``grants`` accepted shares; returns their feed secrets."""
    settings, clock = Settings(), SystemClock()
    data = generate(n_events=5000)
    source = db.parent / "bench.ics"
    source.write_bytes(data)
    levels = list(Level)
    secrets = []
    with Store.open(db) as store:
        add_calendar(store, clock, "bench", "Bench <bench@example.org>", ZONE, "UTC")
        import_calendar(store, settings, clock, "bench", str(source))
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with store.write() as conn:
            (calendar_id,) = conn.execute("SELECT id FROM calendars").fetchone()
            for number in range(grants):
                secret = new_token()
                secrets.append(secret)
                conn.execute(
                    """INSERT INTO shares (calendar_id, invitee, invitee_name, level, status,
                           lang, created_at, invited_at, expires_at, answered_at, updated_at,
                           feed_hash)
                       VALUES (?, ?, '', ?, 'accepted', 'en', ?, ?, ?, ?, ?, ?)""",
                    [
                        calendar_id,
                        f"reader{number}@example.org",
                        levels[number % 3].value,
                        now,
                        now,
                        now,
                        now,
                        now,
                        token_hash(secret),
                    ],
                )
    return secrets, data


def naive(data: bytes, days_back: int, days_ahead: int) -> float:
    """Seconds to answer one feed from the ICS: parse, expand the window, write."""
    began = time.perf_counter()
    calendar = icalendar.Calendar.from_ical(data)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    window = (today - timedelta(days=days_back), today + timedelta(days=days_ahead + 1))
    out = icalendar.Calendar()
    for event in recurring_ical_events.of(calendar).between(*window):
        out.add_component(event)
    out.to_ical()
    return time.perf_counter() - began


async def load(
    base: str,
    secrets: list[str],
    requests: int,
    etags: dict[str, str] | None,
    connections: int = CONNECTIONS,
) -> tuple[list[float], float, dict[str, str], int]:
    """``requests`` GETs over CONNECTIONS connections; latencies, wall time, ETags, errors."""
    rng = random.Random(7)
    order = [rng.choice(secrets) for _ in range(requests)]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for secret in order:
        queue.put_nowait(secret)
    latencies: list[float] = []
    seen: dict[str, str] = {}
    errors = 0
    expected = 304 if etags is not None else 200

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while not queue.empty():
            secret = queue.get_nowait()
            # as a calendar app asks: gzip accepted; latency is until the last byte arrives
            headers = {"Accept-Encoding": "gzip"}
            if etags is not None:
                headers["If-None-Match"] = etags[secret]
            began = time.perf_counter()
            async with session.get(f"{base}/feeds/{secret}.ics", headers=headers) as response:
                await response.read()
                latencies.append(time.perf_counter() - began)
                if response.status != expected:
                    errors += 1
                seen[secret] = response.headers.get("ETag", "")

    connector = aiohttp.TCPConnector(limit=connections)
    # the bytes as sent (wrk does the same): unpacking them is the calendar app's work
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        wall = time.perf_counter() - began
    return latencies, wall, seen, errors


def _old_feed_ics() -> Any:
    """main's feed_ics (an instance per VEVENT, a year ahead), loaded from git for comparison."""
    import importlib.util

    try:
        source = subprocess.run(
            ["git", "show", f"{OLD_REVISION}:calshare/feeds.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "old_feeds.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_feeds", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_feeds"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.feed_ics


def renders(db: Path, source_bytes: int) -> dict[str, Any]:
    """Feed sizes and the first render of each level after a change, new and old code.

    A change is a new calendar version (as a re-import makes); each level is then
    rendered once, in order: the first level reads the series, the others reuse it.
    """
    from calshare import feeds as new_feeds
    from calshare.calendars import get_calendar

    settings, now = Settings(), datetime.now(UTC)
    result: dict[str, Any] = {"source_bytes": source_bytes}
    old = _old_feed_ics()
    with Store.open(db) as store:
        for label, feed_ics in (("new", new_feeds.feed_ics), ("old", old)):
            if feed_ics is None:
                continue
            with store.write() as conn:  # a change: the calendar's next version
                conn.execute("UPDATE calendars SET version = version + 1")
            calendar = get_calendar(store.db, "bench")
            for level in Level:
                began = time.perf_counter()
                body = feed_ics(store, settings, calendar, level, now)
                result[f"{label}_{level}_first_render_s"] = time.perf_counter() - began
                result[f"{label}_{level}_bytes"] = len(body)
            result[f"{label}_details_ratio"] = result[f"{label}_details_bytes"] / source_bytes
    return result


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def vm_hwm(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found[1]) * 1024 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark feeds served by calshare serve.")
    parser.add_argument("--grants", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    requests = 1000 if args.quick else args.requests
    settings = Settings()
    with tempfile.TemporaryDirectory() as work:
        db = Path(work) / "bench.db"
        secrets, data = prepare(db, args.grants)
        sizes = renders(db, len(data))
        served = serve(db, Path(work), secrets, requests, [str(CALSHARE)], {})
        old_tree = _old_tree(Path(work))
        old = None
        if old_tree is not None:  # main's code on the same database, in the same run
            python = [str(ROOT / ".venv" / "bin" / "python"), "-m", "calshare"]
            old = serve(db, Path(work), secrets, requests, python, {"PYTHONPATH": str(old_tree)})
    cold, full, full_wall, full_errors = served["cold"], *served["full"]
    cached, cached_wall, cached_errors = served["not_modified"]
    alone, alone_wall, alone_errors = served["alone"]
    peak = served["peak"]
    naive_s = min(
        naive(data, settings.http.feed_days_back, settings.http.feed_days_ahead) for _ in range(2)
    )
    result: dict[str, Any] = {
        "grants": args.grants,
        "requests": requests,
        "connections": CONNECTIONS,
        "cold_first_feed_s": cold,
        "full": _stats(full, full_wall, full_errors),
        "not_modified": _stats(cached, cached_wall, cached_errors),
        "not_modified_one_connection": _stats(alone, alone_wall, alone_errors),
        "daemon_peak_rss_bytes": peak,
        "naive_per_request_s": naive_s,
        "renders": sizes,
    }
    if old is not None:
        result["old"] = {
            "cold_first_feed_s": old["cold"],
            "full": _stats(*old["full"]),
            "not_modified": _stats(*old["not_modified"]),
            "daemon_peak_rss_bytes": old["peak"],
        }
    result["ratio_naive_to_p50"] = naive_s / result["full"]["p50_s"]
    print(
        f"feeds: {args.grants:,} grants, {requests:,} requests each way, {CONNECTIONS} connections"
    )
    print(f"  first feed after start (renders a level): {cold * 1000:.0f} ms")
    for name, key, target in (
        ("200", "full", "full_p50"),
        ("304", "not_modified", "not_modified_p50"),
    ):
        stats = result[key]
        verdict = "MET" if stats["p50_s"] < TARGETS[target] else "MISSED"
        print(
            f"  {name}: p50 {stats['p50_s'] * 1000:.1f} ms, p99 {stats['p99_s'] * 1000:.1f} ms, "
            f"{stats['per_second']:,.0f}/s, errors {stats['errors']}  "
            f"(p50 target < {TARGETS[target] * 1000:.0f} ms: {verdict})"
        )
    one = result["not_modified_one_connection"]
    print(
        f"  304 over one connection: p50 {one['p50_s'] * 1000:.2f} ms, "
        f"p99 {one['p99_s'] * 1000:.2f} ms, {one['per_second']:,.0f}/s"
    )
    p99_verdict = "MET" if result["full"]["p99_s"] < TARGETS["full_p99"] else "MISSED"
    print(f"  200 p99 target < 50 ms: {p99_verdict}")
    print(f"  daemon peak RSS {peak / 2**20:.0f} MiB")
    print(
        f"  details feed {sizes['new_details_bytes']:,} bytes = "
        f"{sizes['new_details_ratio']:.2f}x the source's {len(data):,} (target <= 1.2x)"
    )
    for level in Level:
        print(
            f"  first render at {level} after a change: "
            f"{sizes[f'new_{level}_first_render_s'] * 1000:.0f} ms"
            + (
                f" (main: {sizes[f'old_{level}_first_render_s'] * 1000:.0f} ms,"
                f" {sizes[f'old_{level}_bytes']:,} bytes)"
                if f"old_{level}_bytes" in sizes
                else ""
            )
        )
    if old is not None:
        before = result["old"]
        print(
            f"  main, same run: 200 p50 {before['full']['p50_s'] * 1000:.1f} ms, "
            f"304 p50 {before['not_modified']['p50_s'] * 1000:.1f} ms, "
            f"first feed after start {before['cold_first_feed_s'] * 1000:.0f} ms, "
            f"peak RSS {before['daemon_peak_rss_bytes'] / 2**20:.0f} MiB"
        )
    print(
        f"  naive (parse + expand + write per request): {naive_s * 1000:.0f} ms = "
        f"{result['ratio_naive_to_p50']:.0f}x the 200 p50"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


def _old_tree(work: Path) -> Path | None:
    """main's code (OLD_REVISION) unpacked under ``work``, or None outside a git checkout."""
    target = work / "old"
    target.mkdir()
    try:
        archive = subprocess.run(
            ["git", "archive", OLD_REVISION, "calshare", "templates"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return target


def serve(
    db: Path,
    work: Path,
    secrets: list[str],
    requests: int,
    command: list[str],
    extra_env: dict[str, str],
) -> dict[str, Any]:
    """Run ``command serve --http`` on ``db`` and load it: first feed, 200s, 304s, peak RSS."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSHARE_")}
    env["CALSHARE_DB"] = str(db)
    env.update(extra_env)
    log = work / f"serve-{port}.log"
    with log.open("wb") as err:
        daemon = subprocess.Popen(
            [*command, "serve", "--http", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=work,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while "serving HTTP" not in log.read_text():
            if time.monotonic() > deadline or daemon.poll() is not None:
                sys.exit(f"the daemon did not start:\n{log.read_text()}")
            time.sleep(0.05)
        first = time.perf_counter()
        asyncio.run(load(base, secrets[:1], 1, None))
        cold = time.perf_counter() - first
        for secret in secrets[:3]:  # one render per level (grants cycle through them)
            asyncio.run(load(base, [secret], 1, None))
        full, full_wall, etags, full_errors = asyncio.run(load(base, secrets, requests, None))
        cached, cached_wall, _, cached_errors = asyncio.run(load(base, secrets, requests, etags))
        alone, alone_wall, _, alone_errors = asyncio.run(
            load(base, secrets, requests // 4, etags, connections=1)
        )
        peak = vm_hwm(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
    return {
        "cold": cold,
        "full": (full, full_wall, full_errors),
        "not_modified": (cached, cached_wall, cached_errors),
        "alone": (alone, alone_wall, alone_errors),
        "peak": peak,
    }


def _stats(latencies: list[float], wall: float, errors: int) -> dict[str, Any]:
    return {
        "p50_s": statistics.median(latencies),
        "p99_s": percentile(latencies, 0.99),
        "per_second": len(latencies) / wall,
        "errors": errors,
    }


if __name__ == "__main__":
    raise SystemExit(main())
