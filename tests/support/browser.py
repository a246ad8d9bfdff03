"""Debian's Chromium driven by Selenium through Debian's chromedriver, and axe-core in it.

Nothing is downloaded: Selenium is given /usr/bin/chromedriver and /usr/bin/chromium,
and ``SE_OFFLINE`` keeps Selenium Manager from looking for a browser or a driver.
axe-core comes from tests/js (``make js-packages``, pinned by its package-lock.json)
and is injected through WebDriver, which the page's CSP (no script at all) does not
govern: the page itself still runs no script.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = (390, 844)  # an iPhone 12-15's CSS pixels


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return "chromium is not installed: `make system-packages` installs it (Debian)"
    if not CHROMEDRIVER.exists():
        return "chromedriver is not installed: `make system-packages` installs chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: `make install` installs the dev extras"
    return None


@contextmanager
def chrome(width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium at ``width`` x ``height`` CSS pixels (any width: emulated)."""
    missing = _missing()
    if missing:
        pytest.fail(missing)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={max(width, 500)},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports, read back
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        resize(driver, width, height)
        yield driver
    finally:
        driver.quit()


def resize(driver: Any, width: int, height: int) -> None:
    """The viewport as a device of that size (a window cannot be narrower than 500 px)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500},
    )


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the loaded page (WCAG 2.x A/AA rules and best practices)."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing ({AXE}): `make js-packages` installs it (npm)")
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    driver.set_script_timeout(60)
    found: list[dict[str, Any]] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations), e => done([{id: 'axe-error', impact: 'critical',"
        " help: String(e), nodes: []}]));"
    )
    return found


def serious(violations: list[dict[str, Any]]) -> list[str]:
    """The serious and critical ones, one line each with where."""
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(str(node.get("target")) for node in v.get("nodes", [])[:3])
        for v in violations
        if v.get("impact") in ("serious", "critical")
    ]


def screenshot(driver: Any, url: str, target: Path, width: int, height: int | None = None) -> None:
    """The page at ``width``, as tall as its content (or ``height``), to a PNG."""
    resize(driver, width, height or 900)
    driver.get(url)
    if height is None:
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        resize(driver, width, height)
    data = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})["data"]
    import base64

    target.write_bytes(base64.b64decode(data))
