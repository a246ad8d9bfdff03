"""The publish harness: a calendar to publish, the daemon serving /p/ links, WebDAV settings."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from calshare.clock import FixedClock
from calshare.config import load_settings
from tests.conftest import CliResult
from tests.support.inbox import Inbox, inbox_env
from tests.support.snapshot import AWKWARD, add

Cli = Callable[..., CliResult]
USER, PASSWORD = "ann", "correct horse"
WEBDAV_ENV = {"CALSHARE_WEBDAV_USERNAME": USER, "CALSHARE_WEBDAV_PASSWORD": PASSWORD}
DETAILS_ALLOWED = {"CALSHARE_POLICY_PUBLISH_MAX_LEVEL": "details"}


@pytest.fixture
def daemon(db_path: Path, clock: FixedClock) -> Iterator[Inbox]:
    # the daemon applies policy to every request too: let it serve what the tests publish
    settings = load_settings(None, env=inbox_env(**DETAILS_ALLOWED))
    inbox = Inbox(settings, db_path, clock, http=True).start()
    try:
        yield inbox
    finally:
        inbox.stop()


def local(base: str, link: str) -> str:
    """A link as printed (public base URL) pointed at the test daemon's own port."""
    return base + link[link.index("/p/") :]


@pytest.fixture
def calendar(cli: Cli, tmp_path: Path, clock: FixedClock) -> None:
    add(cli, "awkward", AWKWARD, tmp_path)
    clock.at = clock.at.replace(year=2027, month=3, day=20)  # the events are in March 2027


def command_named(message: str) -> list[str]:
    """The first `calshare …` command a message tells the owner to run, as arguments."""
    found = re.search(r"`calshare ([^`]+)`", message)
    assert found, message
    return found[1].split()
