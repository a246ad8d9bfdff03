"""Render the user guide's sample snapshot mails (daily and list) to PNGs in docs/.

    .venv/bin/python docs/screenshots.py

Uses the demo calendars on a fixed day, so the pictures only change when the
templates do. Needs Debian's chromium (``make system-packages``).
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
from tests import chromium, snapshot_mail  # noqa: E402

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


async def _shoot_published(db: Path, env: dict[str, str], clock: FixedClock, link: str) -> None:
    """The published page as the daemon serves it, fetched by Chromium over HTTP."""
    settings = load_settings(None, env=env)
    server = WebServer(settings, db, clock, on_mail_queued=lambda: None)
    await server.start("127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.port}{link[link.index('/p/') :]}"
        target = ROOT / "docs" / "published.png"
        await asyncio.to_thread(chromium.screenshot_url, url, target, 600, 1300)
        print(f"wrote {target.relative_to(ROOT)}")
    finally:
        await server.stop()


if __name__ == "__main__":
    run()
