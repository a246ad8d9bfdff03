"""The sign-in pages in Chromium: a person signs in with the link from the mail, and
axe-core finds no serious or critical accessibility violation on any of the pages
(the form, the page after asking, the link's landing page, a used link's page)."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.support.wait import WebDriverWait

from calshare import sessions
from calshare.links import CALENDARS_ROUTE, SIGNIN_ROUTE
from tests.support.browser import axe_violations, chrome, serious
from tests.support.console import ANN, Console, console, link_in, signin_mails

__all__ = ["console"]


def checked(driver: Any, name: str) -> None:
    """No serious violation, and nothing the page's own CSP refused (console.js, the CSS)."""
    assert serious(axe_violations(driver)) == [], name
    refused = [e["message"] for e in driver.get_log("browser") if "Refused to" in e["message"]]
    assert refused == [], name


@pytest.mark.network
@pytest.mark.parametrize("lang", ["en", "nb"])
def test_a_person_signs_in_with_the_mails_link_on_accessible_pages(
    console: Console, lang: str
) -> None:
    console.calendar("project", ANN)
    with chrome() as driver:
        if lang == "nb":
            driver.get(f"{console.base}/language?lang=nb&next={SIGNIN_ROUTE}")
        driver.get(console.base + SIGNIN_ROUTE)
        assert driver.find_element("tag name", "html").get_attribute("lang") == lang
        checked(driver, "form")
        driver.find_element("id", "address").send_keys(ANN)
        driver.find_element("css selector", "main form button[type=submit]").click()
        WebDriverWait(driver, 10).until(lambda d: d.find_elements("css selector", "p.done"))
        status = driver.find_element("css selector", "p.done[role=status]").text
        assert ANN in status
        checked(driver, "asked")
        (mail,) = signin_mails(console, ANN)
        link = console.base + link_in(mail)
        driver.get(link)
        checked(driver, "landing")
        assert not any(c["name"] == sessions.COOKIE for c in driver.get_cookies())
        driver.find_element("css selector", "main form button[type=submit]").click()
        WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith(CALENDARS_ROUTE))
        (cookie,) = [c for c in driver.get_cookies() if c["name"] == sessions.COOKIE]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert console.store.db.execute(
            "SELECT email FROM sessions WHERE ended_at IS NULL"
        ).fetchall() == [(ANN,)]
        driver.get(link)  # used: the page says so and offers a new link
        assert driver.find_element("css selector", f'main a[href="{SIGNIN_ROUTE}"]')
        checked(driver, "gone")
