"""The Publish and E-mail calendar pages in Chromium: axe-core finds no serious or
critical violation (Publish with its links shown, E-mail with a preview shown), the
Copy button copies a link, and the previewed mail renders in its sandboxed frame
without breaking the page's CSP and without running anything.
"""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.support.wait import WebDriverWait

from calshare import sessions
from calshare.links import ConsolePage, calendar_page_path
from tests.support.browser import axe_violations, chrome, serious
from tests.support.console import ANN, Console, console
from tests.support.snapshot import HOSTILE

__all__ = ["console"]

# the WebDAV field (with its list of allowed folders) is on the page axe checks
CONSOLE_ENV = {"CALSHARE_OWNERS_WEBDAV_FOLDERS": "https://dav.example.org/calshare/"}


def signed_in(driver: Any, console: Console) -> None:
    """The browser holds a live session cookie of Ann's, as signing in leaves it."""
    driver.get(console.base + "/console/console.css")
    driver.add_cookie({"name": sessions.COOKIE, "value": console.session(ANN), "path": "/"})


def csp_errors(driver: Any) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


@pytest.mark.network
def test_publish_page_with_its_links_is_accessible_and_copy_copies(console: Console) -> None:
    calendar = console.calendar("awkward")
    url = console.base + calendar_page_path(calendar.id, ConsolePage.PUBLISH)
    with chrome() as driver:
        driver.execute_cdp_cmd(
            "Browser.grantPermissions",
            {
                "origin": console.base,
                "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
            },
        )
        signed_in(driver, console)
        driver.get(url)
        assert driver.find_element("id", "webdav").get_attribute("list") == "webdav-folders"
        assert serious(axe_violations(driver)) == []
        driver.find_element("css selector", "button[value=publish]").click()
        field = shown(driver, "#link-ics")
        link = field.get_attribute("value")
        assert link.endswith(".ics")
        assert serious(axe_violations(driver)) == []
        button = driver.find_element("css selector", 'button[data-copy="link-ics"]')
        assert button.text == "Copy"
        button.click()
        driver.set_script_timeout(10)
        copied = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "navigator.clipboard.readText().then(done, e => done('error: ' + e));"
        )
        assert copied == link
        assert button.text == "Copied"
        assert csp_errors(driver) == []


@pytest.mark.network
def test_email_page_with_a_preview_is_accessible_and_the_mail_runs_nothing(
    console: Console,
) -> None:
    calendar = console.calendar("hostile", ics=HOSTILE.encode())
    url = console.base + calendar_page_path(calendar.id, ConsolePage.EMAIL)
    with chrome() as driver:
        signed_in(driver, console)
        driver.get(url)
        assert serious(axe_violations(driver)) == []
        driver.find_element("css selector", "#range option[value=dates]").click()
        driver.find_element("id", "first").send_keys("11272026")  # the date input's en-US order
        driver.find_element("id", "last").send_keys("11272026")
        driver.find_element("css selector", "#detail option[value=titles]").click()
        driver.find_element("id", "to").send_keys("bob@example.org")
        driver.find_element("css selector", "button[value=preview]").click()
        subject = shown(driver, "dd.subject").text
        assert "hostile" in subject
        assert serious(axe_violations(driver)) == []
        # the mail's HTML renders in the frame, its hostile title as text, no alert
        frame = driver.find_element("css selector", "iframe.mail-body")
        driver.switch_to.frame(frame)
        body = driver.find_element("tag name", "body").text
        assert "<script>alert('title')</script>" in body
        driver.switch_to.default_content()
        assert driver.execute_script("return document.querySelectorAll('img').length") == 0
        assert csp_errors(driver) == []
    assert console.state()["outbox"] == []  # a preview sends nothing


def shown(driver: Any, css: str) -> Any:
    """The element once the page that answers the click has it (a click returns at once)."""
    WebDriverWait(driver, 20).until(lambda d: d.find_elements("css selector", css))
    return driver.find_element("css selector", css)
