"""Render HTML in headless Chromium (Debian's ``chromium``): screenshots and layout checks.

The page is loaded from a file with a small script appended that writes the
document's scroll width into its title; ``--dump-dom`` prints the DOM after
scripts ran, so the width is what Chromium actually laid out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

_PROBE = (
    "<script>document.title = 'W' + document.documentElement.scrollWidth + "
    "'/' + window.innerWidth;</script>"
)


def binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: `make system-packages` installs it (Debian)")
    return found


def _run(args: list[str]) -> str:
    result = subprocess.run(
        [binary(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def scroll_width(html: str, width: int, workdir: Path) -> tuple[int, int]:
    """(the page's scroll width, the window's inner width) at a window ``width`` wide."""
    page = workdir / f"probe-{width}.html"
    body_end = html.lower().rfind("</body>")
    page.write_text(html[:body_end] + _PROBE + html[body_end:], encoding="utf-8")
    dom = _run([f"--window-size={width},900", "--dump-dom", page.as_uri()])
    match = re.search(r"<title>W(\d+)/(\d+)</title>", dom)
    assert match, dom[:500]
    return int(match[1]), int(match[2])


def screenshot_url(url: str, target: Path, width: int = 600, height: int = 1400) -> bytes:
    """A page as Chromium shows it, fetched over HTTP like any browser would."""
    _run([f"--window-size={width},{height}", f"--screenshot={target}", url])
    return target.read_bytes()


def scroll_width_url(url: str, width: int) -> tuple[int, int]:
    """Like scroll_width, for a served page: its DOM after loading, measured by a probe.

    Our pages forbid scripts (CSP), so the probe cannot run inside them; instead the
    page's own HTML is fetched and measured from a file, which lays out the same.
    """
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        html = response.read().decode("utf-8")
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        return scroll_width(html, width, Path(work))


def screenshot(html: str, target: Path, width: int = 600, height: int = 1400) -> bytes:
    page = target.with_suffix(".html")
    page.write_text(html, encoding="utf-8")
    _run([f"--window-size={width},{height}", f"--screenshot={target}", page.as_uri()])
    page.unlink()
    return target.read_bytes()
