"""Render the user guide's sample snapshot mails and published calendar pages to PNGs in docs/.

    .venv/bin/python docs/screenshots.py

Uses the demo calendars on a fixed day, so the pictures only change when the
templates do. Needs Debian's chromium and chromium-driver (``make system-packages``);
the published pages are shot through Selenium, at a browser's width and a phone's.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from calshare.cli import main  # noqa: E402
from calshare.clock import FixedClock  # noqa: E402
from calshare.config import load_settings  # noqa: E402
from calshare.web import WebServer  # noqa: E402
from tests.support import browser, chromium, snapshot_mail  # noqa: E402

DAY = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # a Monday


def run() -> None:
    with tempfile.TemporaryDirectory() as work:
        env = {"CALSHARE_DB": f"{work}/calshare.db"}
        clock = FixedClock(DAY)

        def calshare(*args: str) -> None:
            err = io.StringIO()
            code = main(list(args), clock=clock, env=env, stdout=io.StringIO(), stderr=err)
            if code != 0:
                raise SystemExit(err.getvalue())

        calshare("demo")
        for layout, height in (("daily", 1500), ("list", 900)):
            eml = Path(work) / f"{layout}.eml"
            calshare("snapshot", "project", "--range", "next-7-days", "--layout", layout,
                     "--out", str(eml))  # fmt: skip
            mail = snapshot_mail.read(eml.read_bytes())
            target = ROOT / "docs" / f"snapshot-{layout}.png"
            chromium.screenshot(mail.html, target, width=600, height=height)
            print(f"wrote {target.relative_to(ROOT)}")
        env["CALSHARE_POLICY_PUBLISH_MAX_LEVEL"] = "titles"
        out = io.StringIO()
        code = main(["publish", "project", "--level", "titles", "--json"], clock=clock, env=env,
                    stdout=out, stderr=io.StringIO())  # fmt: skip
        if code != 0:
            raise SystemExit("publish failed")
        page = json.loads(out.getvalue())["html"]
        asyncio.run(_shoot_published(Path(work) / "calshare.db", env, clock, page))


# (file, query, width, height): None is as tall as the page
PUBLISHED_SHOTS = (
    ("published-month.png", "?view=month", 1280, None),
    ("published-week.png", "?view=week", 1280, None),
    ("published-phone.png", "?view=month", browser.PHONE[0], 1500),
)


async def _shoot_published(db: Path, env: dict[str, str], clock: FixedClock, link: str) -> None:
    """The published page as the daemon serves it, fetched by Chromium over HTTP."""
    settings = load_settings(None, env=env)
    server = WebServer(settings, db, clock, on_mail_queued=lambda: None)
    await server.start("127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.port}{link[link.index('/p/') :]}"
        await asyncio.to_thread(_shoot, url)
    finally:
        await server.stop()


def _shoot(url: str) -> None:
    with browser.chrome() as driver:
        for name, query, width, height in PUBLISHED_SHOTS:
            target = ROOT / "docs" / name
            browser.screenshot(driver, url + query, target, width, height)
            print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    run()
