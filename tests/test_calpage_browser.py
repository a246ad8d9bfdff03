"""The published calendar in Chromium: accessible (axe-core), keyboard, phone width, framing.

Debian's chromium through Debian's chromedriver (Selenium, nothing downloaded), pages
fetched from the daemon over HTTP so the real headers apply: the CSP, and the
``frame-ancestors`` of the embed view, which Chromium enforces on a real parent page
served from another origin.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from calshare.clock import FixedClock
from tests.support.browser import PHONE, axe_violations, chrome, resize, serious
from tests.support.calpage import Cli, Published, publish, served, start_daemon, week_calendar

__all__ = ["served", "week_calendar"]  # fixtures

Serve = Callable[[str], Published]
VIEWS = {
    "month": "?view=month&date=2027-03-24",
    "week": "?view=week&date=2027-03-24",
    "agenda": "?view=agenda&date=2027-03-24",
    "embed": "?view=week&date=2027-03-24&embed=1",
}


def csp_errors(driver: Any) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


@pytest.mark.network
def test_every_view_has_no_serious_accessibility_violations(served: Serve) -> None:
    published = served("titles")
    with chrome() as driver:
        for name, query in [*VIEWS.items(), ("phone", VIEWS["month"])]:
            resize(driver, *(PHONE if name == "phone" else (1280, 1000)))
            driver.get(published.base + query)
            assert driver.find_element("tag name", "h1").text == "week"
            assert csp_errors(driver) == [], name  # the page breaks none of its own CSP
            violations = axe_violations(driver)
            assert serious(violations) == [], name


@pytest.mark.network
def test_axe_finds_what_it_is_there_to_find(tmp_path: Path) -> None:
    """The harness can fail: a page with an unlabelled image and low contrast."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><title>x</title></head><body><img src="x.png">'
        '<p style="color: #bbbbbb; background: #ffffff">faint</p></body></html>'
    )
    with chrome() as driver:
        driver.get(page.as_uri())
        found = {line.split(" ")[0] for line in serious(axe_violations(driver))}
    assert {"image-alt", "color-contrast", "html-has-lang"} <= found


@pytest.mark.network
def test_a_phone_gets_the_list_and_never_scrolls_sideways(served: Serve) -> None:
    published = served("titles")
    with chrome(*PHONE) as driver:
        for query in (VIEWS["month"], VIEWS["week"]):
            driver.get(published.base + query)
            assert driver.execute_script("return window.innerWidth") == PHONE[0]
            assert not driver.find_element("css selector", "table.grid").is_displayed()
            agenda = driver.find_element("css selector", "section.agenda")
            assert agenda.is_displayed() and "Night crossing" in agenda.text
            width = driver.execute_script("return document.documentElement.scrollWidth")
            assert width <= PHONE[0], (query, width)
        resize(driver, 1280, 1000)
        driver.get(published.base + VIEWS["month"])
        assert driver.find_element("css selector", "table.grid").is_displayed()
        assert not driver.find_element("css selector", "section.agenda").is_displayed()


@pytest.mark.network
def test_the_week_draws_every_event_and_overlaps_side_by_side(served: Serve) -> None:
    """As Chromium lays it out: each event visible, Tuesday's three overlapping ones
    beside each other in the Tuesday column, the night event in two columns."""
    published = served("titles")
    with chrome() as driver:
        driver.get(published.base + "?view=week&date=2027-03-23")
        boxes = driver.execute_script(
            "return [...document.querySelectorAll('.event')].map(e => {"
            "const r = e.getBoundingClientRect(), c = e.parentElement.getBoundingClientRect();"
            "return {text: e.textContent, x: r.left, w: r.width, y: r.top, h: r.height,"
            " cx: c.left, cw: c.width, shown: getComputedStyle(e).display !== 'none'};});"
        )
    assert len(boxes) == 12 and all(b["shown"] and b["w"] > 20 and b["h"] > 10 for b in boxes)
    overlaps = sorted((b for b in boxes if "Overlap" in b["text"]), key=lambda b: b["x"])
    assert [b["text"].split(" · ")[0][-9:] for b in overlaps] == [
        "Overlap A", "Overlap B", "Overlap C"
    ]  # fmt: skip
    for left, right in itertools.pairwise(overlaps):
        assert left["x"] + left["w"] <= right["x"] + 0.5  # side by side, never on top
    for box in overlaps:
        assert box["cx"] - 0.5 <= box["x"] and box["x"] + box["w"] <= box["cx"] + box["cw"] + 0.5
    a, b = overlaps[0], overlaps[1]
    assert b["y"] > a["y"] and abs((b["y"] - a["y"]) * 2 - (a["h"] / 1.5)) < 2  # 30 of 90 min


@pytest.mark.network
def test_the_keyboard_reaches_the_navigation_and_follows_it(served: Serve) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    published = served("titles")
    with chrome() as driver:
        driver.get(published.base + VIEWS["month"])
        reached = []
        for _ in range(20):  # past the subscribe buttons, the .ics link, the QR's download
            ActionChains(driver).send_keys(Keys.TAB).perform()
            reached.append(driver.switch_to.active_element.get_attribute("href") or "")
        # the page's own links (the subscribe buttons lead to Google's and Outlook's sites)
        ours = [href for href in reached if href.startswith(published.base)]
        queries = [href[href.index("?") :] for href in ours if "?" in href]
        assert queries[:6] == [
            "?view=month&date=2027-02-01",
            "?view=month&date=2027-03-24",
            "?view=month&date=2027-04-01",
            "?view=month&date=2027-03-24",
            "?view=week&date=2027-03-24",
            "?view=agenda&date=2027-03-24",
        ]
        # Enter on "next" (the third of them) opens April
        while not driver.switch_to.active_element.get_attribute("href").endswith("04-01"):
            ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(
                Keys.SHIFT
            ).perform()
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        assert driver.find_element("tag name", "h2").text == "April 2027"
        outline = driver.execute_script(
            "const a = document.querySelector('nav a'); a.focus();"
            "return getComputedStyle(a).outlineStyle;"
        )
        assert outline == "solid"  # focus is visible


class _Parent(BaseHTTPRequestHandler):
    """A page of another site that frames ``?src=``."""

    def do_GET(self) -> None:
        src = parse_qs(urlsplit(self.path).query)["src"][0]
        body = f'<!DOCTYPE html><html lang="en"><title>p</title><iframe src="{src}"></iframe>'
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads what the browser did, not the parent page's access log."""


@pytest.fixture
def parents() -> Iterator[tuple[str, str]]:
    """Two other sites (two origins: two ports), the first allowed to frame."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Parent) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield tuple(f"http://127.0.0.1:{s.server_address[1]}" for s in servers)  # type: ignore[misc]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.mark.network
def test_chromium_lets_only_the_configured_site_frame_the_embed_view(
    cli: Cli, week_calendar: None, db_path: Path, clock: FixedClock, parents: tuple[str, str]
) -> None:
    allowed, other = parents
    inbox = start_daemon(db_path, clock, allowed)
    try:
        page = inbox.web + publish(cli, "titles")
        with chrome() as driver:

            def framed(parent: str, query: str) -> str:
                driver.switch_to.default_content()
                driver.get(f"{parent}/?src={page}{query}")
                driver.switch_to.frame(driver.find_element("tag name", "iframe"))
                found = driver.find_elements("tag name", "h1")
                return str(found[0].text) if found else ""

            assert framed(allowed, "?embed=1&view=week&date=2027-03-24") == "week"
            assert framed(other, "?embed=1&view=week&date=2027-03-24") == ""
            assert framed(allowed, "?view=week&date=2027-03-24") == ""  # not the embed view
    finally:
        inbox.stop()
