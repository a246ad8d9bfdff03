"""The console's calendar pages: how fast does ``calshare serve --http`` answer them?

An owner with 20 calendars (200 events each, from generate.py), 500 shares over them
(25 each; every tenth removed again), half of them published and a quarter following
a file: the worst My calendars the issue names. ``calshare serve --http`` runs as its
own process; one client in this process asks, one request at a time, for
My calendars, Add calendar and one calendar's History (the 200 newest of its audit
lines), and reports p50/p99 latency per page.

Target (issue 14): every console page under 50 ms p50.

    .venv/bin/python bench/console_pages.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from generate import generate
from mail import free_port

from calshare import sessions
from calshare.calendars import add_calendar, get_calendar
from calshare.clock import SystemClock
from calshare.config import load_settings
from calshare.importer import import_calendar
from calshare.levels import Level
from calshare.links import ADD_CALENDAR_ROUTE, CALENDARS_ROUTE, ConsolePage, calendar_page_path
from calshare.publishing import publish
from calshare.sharing import share, unshare
from calshare.store import Store
from calshare.subscriptions import FILE, set_source

ROOT = Path(__file__).resolve().parent.parent
CALSHARE = ROOT / ".venv" / "bin" / "calshare"
OWNER = "ann@example.org"
TARGET_P50 = 0.050


def build(db: Path, work: Path, calendars: int, shares: int) -> tuple[str, int]:
    """The owner's calendars, shares, publications and sources; her session's cookie."""
    settings = load_settings(None, env={"CALSHARE_OUTBOX_MAILDIR": str(work / "maildir")})
    clock = SystemClock()
    source = work / "cal.ics"
    source.write_bytes(generate(n_events=200))
    levels = list(Level)
    with Store.open(db) as store:
        for number in range(calendars):
            name = f"cal{number:02d}"
            add_calendar(store, clock, name, OWNER, None, "Europe/Oslo")
            import_calendar(store, settings, clock, name, str(source), owner=OWNER)
            if number % 2 == 0:
                publish(store, settings, clock, name, levels[number % 3], owner=OWNER)
            if number % 4 == 0:
                calendar = get_calendar(store.db, name, OWNER)
                set_source(store, calendar, FILE, str(source), 900, None)
        for number in range(shares):
            name = f"cal{number % calendars:02d}"
            invitee = f"person{number}@example.org"
            share(store, settings, clock, name, invitee, levels[number % 3], owner=OWNER)
            if number % 10 == 0:
                unshare(store, settings, clock, name, invitee, owner=OWNER)
        history_id = get_calendar(store.db, "cal00", OWNER).id
        with store.write() as conn:
            cookie = sessions.start(conn, OWNER, clock.now())
    return cookie, history_id


async def timed(base: str, cookie: str, path: str, requests: int) -> list[float]:
    latencies = []
    headers = {"Cookie": f"{sessions.COOKIE}={cookie}", "Accept-Language": "en"}
    async with aiohttp.ClientSession(headers=headers) as client:
        for _ in range(requests):
            started = time.perf_counter()
            async with client.get(base + path, allow_redirects=False) as response:
                await response.read()
                if response.status != 200:
                    sys.exit(f"{path}: {response.status}")
            latencies.append(time.perf_counter() - started)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--calendars", type=int, default=20)
    parser.add_argument("--shares", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        db = work / "calshare.db"
        started = time.perf_counter()
        cookie, history_id = build(db, work, args.calendars, args.shares)
        print(f"built {args.calendars} calendars, {args.shares} shares in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALSHARE_")}
        env.update(CALSHARE_DB=str(db), CALSHARE_OUTBOX_MAILDIR=str(work / "maildir"))
        log = work / "serve.log"
        with log.open("wb") as err:
            daemon = subprocess.Popen(
                [str(CALSHARE), "serve", "--http", f"127.0.0.1:{port}"],
                stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=work,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while "serving HTTP" not in log.read_text():
                if time.monotonic() > deadline or daemon.poll() is not None:
                    sys.exit(f"the daemon did not start:\n{log.read_text()}")
                time.sleep(0.05)
            base = f"http://127.0.0.1:{port}"
            pages = {
                "My calendars": CALENDARS_ROUTE,
                "Add calendar": ADD_CALENDAR_ROUTE,
                "History": calendar_page_path(history_id, ConsolePage.HISTORY),
            }
            for name, path in pages.items():
                asyncio.run(timed(base, cookie, path, 5))  # warm: templates compiled
                latencies = sorted(asyncio.run(timed(base, cookie, path, args.requests)))
                p50 = statistics.median(latencies)
                p99 = latencies[int(0.99 * (len(latencies) - 1))]
                verdict = "MET" if p50 < TARGET_P50 else "MISSED"
                print(f"{name:<14} p50 {p50 * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms  "
                      f"(target p50 < {TARGET_P50 * 1000:.0f} ms: {verdict})")  # fmt: skip
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
