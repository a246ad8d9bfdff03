"""My calendars, Add calendar and History in Chromium: axe-core on each page (and on the
Add form showing an error), and a calendar added by uploading a real export through
the browser's own file field, so the multipart body is the one a browser builds.
"""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.support.wait import WebDriverWait

from calshare import sessions
from calshare.calendars import get_calendar
from calshare.levels import Level
from calshare.links import ADD_CALENDAR_ROUTE, CALENDARS_ROUTE, ConsolePage, calendar_page_path
from calshare.sharing import share
from tests.support.browser import axe_violations, chrome, serious
from tests.support.console import ANN, Console, console
from tests.support.corpus import EXPORTS_DIR

__all__ = ["console"]

GOOGLE = EXPORTS_DIR / "google.ics"


def _signed_in(driver: Any, console: Console) -> None:
    """The browser holds Ann's session cookie, as the sign-in link would have set it."""
    driver.get(console.base + "/console/console.css")
    driver.add_cookie({"name": sessions.COOKIE, "value": console.session(ANN), "path": "/"})


def _accessible(driver: Any, what: str) -> None:
    assert serious(axe_violations(driver)) == [], what


@pytest.mark.network
def test_the_three_pages_have_no_serious_accessibility_violations(console: Console) -> None:
    console.calendar("project")
    project = get_calendar(console.store.db, "project", ANN)
    share(
        console.store, console.settings, console.clock, "project", "bob@example.org",
        Level.TITLES, owner=ANN,
    )  # fmt: skip
    with chrome() as driver:
        _signed_in(driver, console)
        for path in (
            CALENDARS_ROUTE,
            ADD_CALENDAR_ROUTE,
            calendar_page_path(project.id, ConsolePage.HISTORY),
        ):
            driver.get(console.base + path)
            assert driver.find_element("tag name", "h1").text, path
            _accessible(driver, path)
        # the Add form again, with its error line shown
        driver.get(console.base + ADD_CALENDAR_ROUTE)
        driver.find_element("id", "name").send_keys("a/b")
        driver.find_element("id", "kind-file").click()
        driver.find_element("id", "file").send_keys(str(GOOGLE))
        driver.find_element("css selector", "form[enctype] button[type=submit]").click()
        error = shown(driver, "p.error[role=alert]")
        assert "cannot be a calendar name" in error.text
        _accessible(driver, "add with an error")


@pytest.mark.network
def test_a_calendar_is_added_by_uploading_an_export_in_the_browser(console: Console) -> None:
    console.calendar("project")  # Ann owns one: she may add more
    with chrome() as driver:
        _signed_in(driver, console)
        driver.get(console.base + ADD_CALENDAR_ROUTE)
        driver.find_element("id", "name").send_keys("holidays")
        driver.find_element("id", "tz").send_keys("Europe/Oslo")
        driver.find_element("id", "kind-file").click()
        driver.find_element("id", "file").send_keys(str(GOOGLE))
        driver.find_element("css selector", "form[enctype] button[type=submit]").click()
        assert shown(driver, "p.done").text == "The calendar was added."
        assert driver.current_url.endswith(f"{CALENDARS_ROUTE}?done=added")
        names = [h2.text for h2 in driver.find_elements("css selector", "section.calendar h2")]
    assert names == ["holidays", "project"]
    holidays = get_calendar(console.store.db, "holidays", ANN)
    assert holidays.event_count == GOOGLE.read_bytes().count(b"BEGIN:VEVENT") > 0


def shown(driver: Any, css: str) -> Any:
    """The element once the page that answers the click has it (a click returns at once)."""
    WebDriverWait(driver, 20).until(lambda d: d.find_elements("css selector", css))
    return driver.find_element("css selector", css)
