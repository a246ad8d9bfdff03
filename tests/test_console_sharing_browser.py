"""Share and People in Chromium: filled in and sent as an owner does, checked by axe-core.

Debian's chromium through Debian's chromedriver (nothing downloaded); the pages come
from the daemon over HTTP with their real headers (the console's CSP included).
"""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from calshare import sessions
from tests.support.browser import axe_violations, chrome, serious
from tests.support.console import Console, console
from tests.support.sharing import EVERY_STATUS, every_status, invitations, paths

__all__ = ["console"]


def sign_in(driver: Any, console: Console, cookie: str) -> None:
    """The session cookie in the browser, as the sign-in link's button sets it."""
    driver.get(console.base + "/console/console.css")
    driver.add_cookie({"name": sessions.COOKIE, "value": cookie, "path": "/"})


def csp_errors(driver: Any) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


def shown(driver: Any, selector: str) -> str:
    """The text of ``selector`` on the page a click led to: the click returns once the
    form is sent, not once its answer is shown."""
    wait = WebDriverWait(driver, 30)
    found = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)))
    return str(found.text)


@pytest.mark.network
def test_share_with_a_refusal_then_people_in_every_status(console: Console) -> None:
    share_path, people_path, _ = paths(console)
    client = every_status(console, share_path, people_path)
    with chrome() as driver:
        sign_in(driver, console, client.cookies[sessions.COOKIE])
        driver.get(console.base + share_path)
        assert csp_errors(driver) == []
        assert serious(axe_violations(driver)) == [], "share (empty)"

        # two addresses, one of them outside where titles is the most allowed
        driver.find_element(By.ID, "share-to").send_keys(
            "Bob Builder <bob@example.org>; olga@example.net"
        )
        Select(driver.find_element(By.ID, "share-level")).select_by_visible_text(
            "Can view all details"
        )
        driver.find_element(By.ID, "share-message").send_keys("For the launch")
        driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        results = shown(driver, ".results")
        assert "Invited Bob Builder <bob@example.org>." in results
        assert "this calendar can't be shared: olga@example.net is outside" in results
        link = driver.find_element(By.PARTIAL_LINK_TEXT, "E-mail a copy of the calendar")
        assert link.get_attribute("href").endswith("/email?to=olga%40example.net")
        assert len(invitations(console, "bob@example.org")) == 1
        assert serious(axe_violations(driver)) == [], "share (with a refusal)"

        driver.get(console.base + people_path)
        assert csp_errors(driver) == []
        statuses = {
            row.find_element(By.CSS_SELECTOR, "th[scope=row]").text: row.get_attribute("class")
            for row in driver.find_elements(By.CSS_SELECTOR, "table.people tbody tr")
        }
        for address, status in EVERY_STATUS.items():
            assert statuses[address] == f"status-{status}", address
        assert serious(axe_violations(driver)) == [], "people"

        # a row's own drop-down and button: Bob's invitation, sent again at a new level
        row = driver.find_element(By.XPATH, "//tr[th[text()='bob@example.org']]")
        Select(row.find_element(By.NAME, "level")).select_by_visible_text("Can view when I'm busy")
        row.find_element(By.XPATH, ".//button[text()='Change']").click()
        assert "sent again at the new permission" in shown(driver, ".done")
        assert len(invitations(console, "bob@example.org")) == 2
