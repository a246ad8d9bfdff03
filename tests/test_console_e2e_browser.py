"""The owner's whole day in a real browser, mail through a Maildir, answers over SMTP.

Debian's Chromium, driven by Selenium through Debian's chromedriver: Ann signs in with
the link taken from the daemon's Maildir, adds a calendar from a file, shares it with
Bob and sees "Invited"; Bob accepts by mail (SMTP, to the daemon's own listener) and
Ann sees "Accepted", changes his level (a notice goes out), removes him (his feed
answers 410), publishes and unpublishes (the links work, then answer 410), emails a
7-day copy to Carl (the mail lands in the Maildir with its .ics), reads the History,
and signs out. axe-core checks every page on the way, and the page's own CSP refuses
nothing. Each page is saved as a screenshot: into docs/ when CALSHARE_SCREENSHOTS=docs
(the README's and the user guide's pictures), else into the test's folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from calshare.clock import FixedClock
from calshare.config import load_settings
from calshare.links import ADD_CALENDAR_ROUTE, CALENDARS_ROUTE, SIGNIN_ROUTE
from calshare.store import Store
from tests.conftest import ROOT
from tests.support.browser import axe_violations, chrome, resize, serious
from tests.support.inbox import DOMAIN, Inbox, deliver, reply, wait_until
from tests.support.snapshot import AWKWARD
from tests.support.web import http

ANN = "ann@example.org"
BOB = "bob@example.org"
CARL = "carl@example.org"
BASE_URL = "http://cal.example.org"  # what the mails say; the test's daemon has its own port


@pytest.fixture
def daemon(db_path: Path, clock: FixedClock, tmp_path: Path) -> Iterator[tuple[Inbox, Path]]:
    """The daemon as ``make run`` starts it: no relay, outgoing mail in a Maildir."""
    maildir = tmp_path / "maildir"
    settings = load_settings(
        None,
        env={
            "CALSHARE_HTTP_BASE_URL": BASE_URL,
            "CALSHARE_OUTBOX_MAILDIR": str(maildir),
            "CALSHARE_OWNERS_ALLOW": ANN,
        },
    )
    Store.open(db_path).close()
    clock.at = clock.at.replace(year=2027, month=3, day=20)  # AWKWARD's events are in March 2027
    inbox = Inbox(settings, db_path, clock, http=True).start()
    try:
        yield inbox, maildir
    finally:
        inbox.stop()


def mails(maildir: Path) -> list[EmailMessage]:
    found = []
    for folder in ("new", "cur"):
        for path in sorted((maildir / folder).glob("*")) if (maildir / folder).is_dir() else []:
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def wait_for_mail(maildir: Path, to: str, subject_has: str, seen: int = 0) -> EmailMessage:
    """The ``seen``-th (0: first) mail to ``to`` whose subject has ``subject_has``."""

    def matching() -> list[EmailMessage]:
        return [
            m for m in mails(maildir) if to in str(m["To"]) and subject_has in str(m["Subject"])
        ]

    found = wait_until(lambda: len(matching()) > seen, f"a mail to {to} about {subject_has!r}")
    assert found
    return matching()[seen]


class Shots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def take(self, driver: Any, name: str) -> None:
        """Check the page (axe-core, CSP) and save it as console-NAME.png."""
        assert serious(axe_violations(driver)) == [], name
        refused = [e["message"] for e in driver.get_log("browser") if "Refused to" in e["message"]]
        assert refused == [], (name, refused)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        resize(driver, 1280, max(700, min(int(height), 2400)))  # the whole page, up to a point
        driver.save_screenshot(str(self.folder / f"console-{name}.png"))
        resize(driver, 1280, 1000)


def rebased(url: str, base: str) -> str:
    return base + url.removeprefix(BASE_URL)


def submit(driver: Any, button: Any) -> None:
    """Press a form's button and wait for the page that answers (a click returns at once,
    and the old page may hold what the test looks for next)."""
    old = driver.find_element("tag name", "html")
    button.click()

    def replaced(_: Any) -> bool:
        try:
            old.tag_name  # noqa: B018  # asks the browser whether the old page still stands
        except WebDriverException:  # stale, or "node does not belong to the document"
            return True
        return False

    WebDriverWait(driver, 30).until(replaced)


def wait_for(driver: Any, css: str) -> Any:
    WebDriverWait(driver, 20).until(lambda d: d.find_elements("css selector", css))
    return driver.find_element("css selector", css)


@pytest.mark.network
def test_an_owner_shares_publishes_and_emails_a_calendar_in_the_browser(
    daemon: tuple[Inbox, Path], db_path: Path, tmp_path: Path
) -> None:
    inbox, maildir = daemon
    base = inbox.web
    in_docs = os.environ.get("CALSHARE_SCREENSHOTS") == "docs"
    shots = Shots(ROOT / "docs" if in_docs else tmp_path / "shots")
    source = tmp_path / "project.ics"
    source.write_bytes(AWKWARD)
    with chrome() as driver:
        # sign in: the form, the link from the Maildir, the button on its page
        driver.get(base + SIGNIN_ROUTE)
        shots.take(driver, "signin")
        driver.find_element("id", "address").send_keys(ANN)
        submit(driver, driver.find_element("css selector", "main form button[type=submit]"))
        wait_for(driver, "p.done")
        signin = wait_for_mail(maildir, ANN, "")
        link = re.search(r"https?://\S+/signin/[A-Za-z2-7]+\S*", text_of(signin))
        assert link, text_of(signin)
        driver.get(rebased(link[0], base))
        submit(driver, driver.find_element("css selector", "main form button[type=submit]"))
        WebDriverWait(driver, 20).until(lambda d: d.current_url.endswith(CALENDARS_ROUTE))

        # add a calendar from a file
        driver.get(base + ADD_CALENDAR_ROUTE)
        driver.find_element("id", "name").send_keys("project")
        driver.find_element("id", "kind-file").click()
        driver.find_element("id", "file").send_keys(str(source))
        shots.take(driver, "add")
        submit(driver, driver.find_element("css selector", "main form button[type=submit]"))
        WebDriverWait(driver, 30).until(
            lambda d: d.current_url.split("?")[0].endswith(CALENDARS_ROUTE)
        )
        assert "project" in driver.find_element("tag name", "main").text
        shots.take(driver, "calendars")
        with Store.open(db_path) as store:
            (calendar_id,) = store.db.execute("SELECT id FROM calendars").fetchone()
        page = f"{base}/calendars/{calendar_id}"

        # share with Bob at titles: People says Invited
        driver.get(f"{page}/share")
        driver.find_element("id", "share-to").send_keys(f"Bob Builder <{BOB}>")
        Select(driver.find_element("id", "share-level")).select_by_value("titles")
        driver.find_element("id", "share-message").send_keys("For the launch")
        shots.take(driver, "share")
        submit(driver, driver.find_element("css selector", "main form button[type=submit]"))
        WebDriverWait(driver, 20).until(lambda d: BOB in d.find_element("tag name", "main").text)
        driver.get(f"{page}/people")
        assert "Invited" in wait_for(driver, "tr.status-invited").text

        # Bob accepts by mail, over SMTP: People says Accepted, his feed works
        invitation = wait_for_mail(maildir, BOB, "project")
        token = re.search(r"accept\+([a-z2-7]{26})@", text_of(invitation))
        assert token, text_of(invitation)
        recipient = f"accept+{token[1]}@{DOMAIN}"
        assert deliver(inbox.smtp, reply(to=recipient, sender=BOB), recipient, BOB).code == 250
        welcome = wait_for_mail(maildir, BOB, "project", seen=1)
        feed = re.search(r"https?://\S+/feeds/[a-z2-7]{26}\.ics", text_of(welcome))
        assert feed, text_of(welcome)
        feed_url = rebased(feed[0], base)
        assert http(feed_url).status == 200
        driver.get(f"{page}/people")
        row = wait_for(driver, "tr.status-accepted")
        assert "Accepted" in row.text
        shots.take(driver, "people")

        # change his level: a notice goes to Bob; then remove him: his feed answers 410
        Select(row.find_element("css selector", "select[name=level]")).select_by_value("details")
        submit(driver, row.find_element("css selector", "button[value=change]"))
        wait_for(driver, "p.done")
        wait_for_mail(maildir, BOB, "project", seen=2)
        with Store.open(db_path) as store:
            assert store.db.execute("SELECT level FROM shares").fetchall() == [("details",)]
        assert http(feed_url).status == 200
        row = wait_for(driver, "tr.status-accepted")
        submit(driver, row.find_element("css selector", "button[value=remove]"))
        wait_for(driver, "p.done")
        assert http(feed_url).status == 410

        # publish at free-busy: the links work; unpublish: they answer 410
        driver.get(f"{page}/publish")
        Select(driver.find_element("id", "level")).select_by_value("free-busy")
        submit(driver, driver.find_element("css selector", "button[value=publish]"))
        html_link = wait_for(driver, "#link-page").get_attribute("value")
        ics_link = driver.find_element("id", "link-ics").get_attribute("value")
        shots.take(driver, "publish")
        assert http(rebased(html_link, base)).status == 200
        ics = http(rebased(ics_link, base))
        assert ics.status == 200 and b"BEGIN:VCALENDAR" in ics.body
        driver.get(f"{page}/publish")
        submit(driver, driver.find_element("css selector", "button[value=unpublish]"))
        wait_for(driver, "p.done")
        assert http(rebased(html_link, base)).status == 410
        assert http(rebased(ics_link, base)).status == 410

        # e-mail a 7-day copy to Carl: preview, then send; it lands in the Maildir
        driver.get(f"{page}/email")
        driver.find_element("id", "to").send_keys(CARL)
        Select(driver.find_element("id", "range")).select_by_value("next-7-days")
        submit(driver, driver.find_element("css selector", "button[value=preview]"))
        wait_for(driver, "iframe")
        shots.take(driver, "email")
        submit(driver, driver.find_element("css selector", "button[value=send]"))
        wait_for(driver, "p.done")
        copy = wait_for_mail(maildir, CARL, "project")
        names = [part.get_filename() for part in copy.iter_attachments()]
        assert any(name and name.endswith(".ics") for name in names), names

        # what happened, in the History; then sign out, and the pages are closed
        driver.get(f"{page}/history")
        history = driver.find_element("tag name", "main").text
        for happened in ("nvited", "ccepted", "emoved", "ublished"):
            assert happened in history, (happened, history)
        shots.take(driver, "history")
        submit(driver, driver.find_element("css selector", "header form button[type=submit]"))
        WebDriverWait(driver, 20).until(lambda d: SIGNIN_ROUTE in d.current_url)
        driver.get(f"{page}/people")
        assert SIGNIN_ROUTE in driver.current_url
