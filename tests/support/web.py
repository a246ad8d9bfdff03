"""The web harness: the daemon serving HTTP over a calendar of awkward events, and a client."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from calshare.calendars import add_calendar
from calshare.clock import FixedClock
from calshare.config import Settings, load_settings
from calshare.importer import import_calendar
from calshare.levels import Level
from calshare.sharing import share
from calshare.store import Store
from tests.support.inbox import (
    DOMAIN,
    Inbox,
    db_rows,
    deliver,
    inbox_env,
    invitation_of,
    queued,
    reply,
)
from tests.support.snapshot import AWKWARD

OWNER = "Ann Demo <ann@example.org>"
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass
class Got:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def http(url: str, method: str = "GET", data: bytes | None = None, **headers: str) -> Got:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Got(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Got(error.code, dict(error.headers), error.read())


@dataclass
class Web:
    store: Store
    settings: Settings
    clock: FixedClock
    inbox: Inbox
    db_path: Path
    tmp_path: Path

    @property
    def base(self) -> str:
        return self.inbox.web

    def invite(self, invitee: str, level: Level = Level.TITLES) -> Any:
        outcome = share(self.store, self.settings, self.clock, "project", invitee, level)
        assert outcome.message_id is not None
        address = re.search(r"[\w.+-]+@[\w.-]+", invitee)
        assert address is not None
        return invitation_of(self.db_path, outcome.message_id, "project", address[0])

    def accept_by_mail(self, invitee: str, level: Level = Level.TITLES) -> str:
        """Invite, answer by SMTP, and return the feed URL from the welcome mail."""
        invitation = self.invite(invitee, level)
        recipient = f"accept+{invitation.token}@{DOMAIN}"
        answered = deliver(self.inbox.smtp, reply(to=recipient, sender=invitee), recipient, invitee)
        assert answered.code == 250, answered
        # the share's latest welcome (a re-invited share had one before)
        welcome = queued(
            self.db_path, "o.share_id = ? AND o.kind = 'welcome'", (invitation.share_id,)
        )[-1]
        found = re.search(r"https?://\S+/feeds/[a-z2-7]{26}\.ics", welcome.text)
        assert found, welcome.text
        # the mail names the public base URL; the test's daemon listens on a port of its own
        return self.base + found[0][found[0].index("/feeds/") :]

    def status(self, invitation: Any) -> str:
        ((status,),) = db_rows(
            self.db_path, "SELECT status FROM shares WHERE id = ?", (invitation.share_id,)
        )
        return str(status)

    def reimport(self, text: bytes) -> None:
        source = self.tmp_path / "changed.ics"
        source.write_bytes(text)
        import_calendar(self.store, self.settings, self.clock, "project", str(source))


@pytest.fixture
def web(db_path: Path, clock: FixedClock, tmp_path: Path) -> Iterator[Web]:
    settings = load_settings(None, env=inbox_env())
    store = Store.open(db_path)
    add_calendar(store, clock, "project", OWNER, None, "UTC")
    source = tmp_path / "project.ics"
    source.write_bytes(AWKWARD)
    import_calendar(store, settings, clock, "project", str(source))
    clock.at = clock.at.replace(year=2027, month=3, day=20)  # the events are in March 2027
    inbox = Inbox(settings, db_path, clock, http=True).start()
    try:
        yield Web(store, settings, clock, inbox, db_path, tmp_path)
    finally:
        inbox.stop()
        store.close()
