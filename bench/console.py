"""The owner-console benchmark: is every page fast for a busy owner on a busy daemon?

One owner with 20 calendars (300 events each, generate.py) and 500 shares (25 per
calendar, made with ``sharing.share`` as the pages make them; half then accepted,
with feeds), ten of the calendars published. ``calshare serve --http`` runs as its own
process. While a load client (10 connections) keeps asking for the accepted grants'
feeds, one signed-in browser-like client asks for each console page in turn: My
calendars, Add calendar, and every page of one calendar (Share, People, Publish,
E-mail calendar, History), ``--requests`` times each. Reported per page: p50/p95 and
errors; the feed load's throughput beside it.

Target (issue 14): every console page under 50 ms p50.

    .venv/bin/python bench/console.py [--requests N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from generate import generate
from mail import free_port

from calshare import sessions
from calshare.calendars import add_calendar
from calshare.clock import SystemClock
from calshare.config import Settings
from calshare.importer import import_calendar
from calshare.levels import Level
from calshare.links import ADD_CALENDAR_ROUTE, CALENDARS_ROUTE, ConsolePage, calendar_page_path
from calshare.publishing import publish
from calshare.sharing import share
from calshare.store import Store
from calshare.tokens import new_token, token_hash

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "console.json"
CALSHARE = ROOT / ".venv" / "bin" / "calshare"
OWNER = "Ann Bench <ann@bench.example.org>"
CALENDARS = 20
SHARES_PER_CALENDAR = 25
FEED_CONNECTIONS = 10
TARGET_P50 = 0.050


def prepare(db: Path, work: Path) -> tuple[str, int, list[str]]:
    """The owner's calendars and shares; (session cookie, one calendar's id, feed secrets)."""
    settings, clock = Settings(), SystemClock()
    levels = list(Level)
    secrets: list[str] = []
    with Store.open(db) as store:
        first_id = 0
        for number in range(CALENDARS):
            name = f"team-{number:02d}"
            calendar = add_calendar(store, clock, name, OWNER, "Europe/Oslo", "UTC")
            first_id = first_id or calendar.id
            source = work / f"{name}.ics"
            source.write_bytes(generate(n_events=300, seed=number + 1))
            import_calendar(store, settings, clock, name, str(source))
            for person in range(SHARES_PER_CALENDAR):
                share(
                    store,
                    settings,
                    clock,
                    name,
                    f"reader{person}@example.org",
                    levels[person % 3],
                )
            if number % 2 == 0:
                publish(store, settings, clock, name, levels[number % 3])
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with store.write() as conn:
            rows = conn.execute("SELECT id FROM shares WHERE id % 2 = 0").fetchall()
            for (share_id,) in rows:  # half accepted, each with a feed
                secret = new_token()
                secrets.append(secret)
                conn.execute(
                    "UPDATE shares SET status = 'accepted', answered_at = ?, feed_hash = ?"
                    " WHERE id = ?",
                    [now, token_hash(secret), share_id],
                )
            cookie = sessions.start(conn, "ann@bench.example.org", clock.now())
    return cookie, first_id, secrets


def pages(calendar_id: int) -> list[str]:
    return [CALENDARS_ROUTE, ADD_CALENDAR_ROUTE] + [
        calendar_page_path(calendar_id, page) for page in ConsolePage
    ]


async def feed_load(base: str, secrets: list[str], stop: asyncio.Event) -> tuple[int, int]:
    """Feeds asked for until ``stop``: (requests answered, errors)."""
    answered = errors = 0

    async def worker(session: aiohttp.ClientSession, offset: int) -> None:
        nonlocal answered, errors
        index = offset
        while not stop.is_set():
            secret = secrets[index % len(secrets)]
            index += FEED_CONNECTIONS
            async with session.get(f"{base}/feeds/{secret}.ics") as response:
                await response.read()
                answered += 1
                errors += response.status != 200

    connector = aiohttp.TCPConnector(limit=FEED_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        await asyncio.gather(*(worker(session, n) for n in range(FEED_CONNECTIONS)))
    return answered, errors


async def measure(
    base: str, cookie: str, calendar_id: int, secrets: list[str], requests: int
) -> dict[str, Any]:
    stop = asyncio.Event()
    load = asyncio.create_task(feed_load(base, secrets, stop))
    await asyncio.sleep(0.5)  # the feeds are rendered and cached; the load is steady
    results: dict[str, Any] = {}
    jar = aiohttp.DummyCookieJar()
    headers = {"Cookie": f"{sessions.COOKIE}={cookie}", "Accept-Language": "en"}
    began = time.perf_counter()
    async with aiohttp.ClientSession(cookie_jar=jar) as client:
        for path in pages(calendar_id):
            latencies: list[float] = []
            errors = 0
            for _ in range(requests):
                start = time.perf_counter()
                async with client.get(base + path, headers=headers, allow_redirects=False) as got:
                    await got.read()
                    latencies.append(time.perf_counter() - start)
                    errors += got.status != 200
            latencies.sort()
            results[path.replace(str(calendar_id), "{id}")] = {
                "p50_s": statistics.median(latencies),
                "p95_s": latencies[int(len(latencies) * 0.95) - 1],
                "errors": errors,
            }
    wall = time.perf_counter() - began
    stop.set()
    answered, feed_errors = await load
    return {
        "pages": results,
        "feeds_during": {
            "answered": answered,
            "errors": feed_errors,
            "per_second": answered / wall,
        },
    }


def serve(db: Path, work: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALSHARE_")}
    env["CALSHARE_DB"] = str(db)
    env["CALSHARE_OUTBOX_MAILDIR"] = str(work / "outbox")
    log = work / "serve.log"
    with log.open("wb") as err:
        daemon = subprocess.Popen(
            [str(CALSHARE), "serve", "--http", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=work,
        )
    deadline = time.monotonic() + 30
    while "serving HTTP" not in log.read_text():
        if time.monotonic() > deadline or daemon.poll() is not None:
            sys.exit(f"the daemon did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return daemon, f"http://127.0.0.1:{port}", log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the owner console's pages.")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    requests = 50 if args.quick else args.requests
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        db = work / "bench.db"
        cookie, calendar_id, secrets = prepare(db, work)
        daemon, base, _log = serve(db, work)
        try:
            result = asyncio.run(measure(base, cookie, calendar_id, secrets, requests))
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
    result.update(
        {
            "calendars": CALENDARS,
            "shares": CALENDARS * SHARES_PER_CALENDAR,
            "requests_per_page": requests,
        }
    )
    print(
        f"console: {CALENDARS} calendars, {CALENDARS * SHARES_PER_CALENDAR} shares, "
        f"{requests} requests per page, {FEED_CONNECTIONS} connections loading feeds"
    )
    missed = 0
    for path, stats in result["pages"].items():
        verdict = "MET" if stats["p50_s"] < TARGET_P50 and not stats["errors"] else "MISSED"
        missed += verdict == "MISSED"
        print(
            f"  {path:28} p50 {stats['p50_s'] * 1000:6.1f} ms  p95 {stats['p95_s'] * 1000:6.1f} ms"
            f"  errors {stats['errors']}  (p50 target < {TARGET_P50 * 1000:.0f} ms: {verdict})"
        )
    feeds = result["feeds_during"]
    print(f"  feeds meanwhile: {feeds['per_second']:,.0f}/s, errors {feeds['errors']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
