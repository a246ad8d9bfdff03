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
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALSHARE_")}
        env["CALSHARE_DB"] = str(db)
        log = Path(work) / "serve.log"
        with log.open("wb") as err:
            daemon = subprocess.Popen(
                [str(CALSHARE), "serve", "--http", f"127.0.0.1:{port}"],
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
            cached, cached_wall, _, cached_errors = asyncio.run(
                load(base, secrets, requests, etags)
            )
            alone, alone_wall, _, alone_errors = asyncio.run(
                load(base, secrets, requests // 4, etags, connections=1)
            )
            peak = vm_hwm(daemon.pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
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
        f"  naive (parse + expand + write per request): {naive_s * 1000:.0f} ms = "
        f"{result['ratio_naive_to_p50']:.0f}x the 200 p50"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


def _stats(latencies: list[float], wall: float, errors: int) -> dict[str, Any]:
    return {
        "p50_s": statistics.median(latencies),
        "p99_s": percentile(latencies, 0.99),
        "per_second": len(latencies) / wall,
        "errors": errors,
    }


if __name__ == "__main__":
    raise SystemExit(main())
