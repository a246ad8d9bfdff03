"""Owners are tenants: two owners may each have a calendar called "project".

Ann's "project" holds a Launch, Zoe's an Offsite. Without ``--owner`` the operator's CLI
refuses a name two owners use (one line naming both, exit 2, nothing changed); with it,
and everywhere calshare goes by itself (feeds, published pages and links, refresh,
snapshots, shares), each owner's "project" is reached and never the other's. Ann's
calendar is made first, so a lookup by name alone would find hers: every check is made
on Zoe's too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from calshare.clock import FixedClock
from calshare.config import find_credential, load_settings
from calshare.store import Store
from calshare.subscriptions import get_source
from tests.conftest import CliResult
from tests.support.console import state
from tests.support.ics import calendar
from tests.support.inbox import DOMAIN, Inbox, deliver, inbox_env, invitation_of, queued, reply
from tests.support.source_server import SourceServer
from tests.support.web import http

Cli = Callable[..., CliResult]

ANN, ZOE = "ann@example.org", "zoe@example.org"
BOB = "bob@example.org"
LAUNCH = "UID:launch@ann\nSUMMARY:Launch\nDTSTART:20261201T100000Z\nDTEND:20261201T110000Z"
OFFSITE = "UID:offsite@zoe\nSUMMARY:Offsite\nDTSTART:20261202T100000Z\nDTEND:20261202T110000Z"
RETREAT = "UID:retreat@zoe\nSUMMARY:Retreat\nDTSTART:20261203T100000Z\nDTEND:20261203T110000Z"
SUMMARIES = {ANN: "Launch", ZOE: "Offsite"}
WINDOW = ("--from", "2026-11-30", "--to", "2026-12-31")


@dataclass
class Two:
    cli: Cli
    env: dict[str, str]
    db_path: Path
    server: SourceServer

    def run(self, *args: str) -> CliResult:
        return self.cli(*args, env=self.env)

    def ok(self, *args: str) -> CliResult:
        result = self.run(*args)
        assert result.code == 0, result.err
        return result

    def summaries(self, owner: str) -> list[str]:
        found = self.ok("events", "project", "--owner", owner, *WINDOW, "--json").json()
        return [item["summary"] for item in found]


@pytest.fixture
def two(cli: Cli, db_path: Path, tmp_path: Path) -> Iterator[Two]:
    """Ann's "project" from a file, Zoe's following a URL; each with its own event."""
    env = {
        "CALSHARE_OUTBOX_MAILDIR": str(tmp_path / "maildir"),
        "CALSHARE_POLICY_PUBLISH_MAX_LEVEL": "details",
    }
    server = SourceServer().start()
    try:
        server.serve(calendar(OFFSITE))
        ann_file = tmp_path / "ann.ics"
        ann_file.write_bytes(calendar(LAUNCH))
        made = Two(cli, env, db_path, server)
        made.ok("calendar", "add", "project", "--owner", ANN, "--tz", "UTC")
        made.ok("calendar", "import", "project", str(ann_file), "--owner", ANN)
        made.ok("calendar", "add", "project", "--owner", ZOE, "--source", server.url())
        yield made
    finally:
        server.stop()


# Every command that names a calendar, with what else it needs.
NAMED = [
    ("events", ["events", "project", *WINDOW]),
    ("share", ["share", "project", BOB, "--level", "titles"]),
    ("unshare", ["unshare", "project", BOB]),
    ("shares", ["shares", "project"]),
    ("snapshot", ["snapshot", "project", "--range", "next-7-days", "--to", BOB]),
    ("publish", ["publish", "project", "--level", "titles"]),
    ("push", ["push", "project"]),
    ("unpublish", ["unpublish", "project"]),
    ("import", ["calendar", "import", "project", "FILE"]),
    ("refresh", ["calendar", "refresh", "project"]),
]


@pytest.mark.parametrize("args", [args for _, args in NAMED], ids=[name for name, _ in NAMED])
def test_a_name_two_owners_use_needs_the_owner(two: Two, tmp_path: Path, args: list[str]) -> None:
    before = state(two.db_path)
    result = two.run(*[str(tmp_path / "x.ics") if arg == "FILE" else arg for arg in args])
    assert result.code == 2 and result.out == ""
    assert result.err.count("\n") == 1, result.err
    assert result.err == (
        f"calshare: error: 2 owners have a calendar named 'project' ({ANN}, {ZOE}): "
        "say whose (add --owner EMAIL)\n"
    )
    assert state(two.db_path) == before


def test_an_owner_without_that_name_is_told_so(two: Two) -> None:
    before = state(two.db_path)
    result = two.run("events", "project", "--owner", BOB, *WINDOW)
    assert (result.code, result.err) == (
        2,
        f"calshare: error: No calendar named 'project' for {BOB}; add it first "
        "(add it with: calshare calendar add project --owner EMAIL)\n",
    )
    assert two.run("events", "project", "--owner", "not an address", *WINDOW).code == 2
    assert state(two.db_path) == before


@pytest.mark.parametrize("owner", [ANN, ZOE])
def test_events_import_and_snapshots_reach_the_owners_calendar(
    two: Two, tmp_path: Path, owner: str
) -> None:
    other = ZOE if owner == ANN else ANN
    assert two.summaries(owner) == [SUMMARIES[owner]]
    # a preview of a snapshot is that owner's calendar
    preview = tmp_path / "copy.eml"
    two.ok("snapshot", "project", "--owner", owner, "--range", "2026-12-01..2026-12-05",
           "--out", str(preview))  # fmt: skip
    mail = preview.read_text()
    assert SUMMARIES[owner] in mail and SUMMARIES[other] not in mail
    # an import replaces that owner's events only
    new = tmp_path / "new.ics"
    new.write_bytes(calendar(RETREAT))
    two.ok("calendar", "import", "project", str(new), "--owner", owner)
    assert two.summaries(owner) == ["Retreat"]
    assert two.summaries(other) == [SUMMARIES[other]]


def test_refresh_reads_the_owners_source_only(two: Two) -> None:
    two.server.serve(calendar(OFFSITE, RETREAT))
    assert two.ok("calendar", "refresh", "project", "--owner", ZOE).out == (
        "project: changed: 2 events now\n"
    )
    assert two.summaries(ZOE) == ["Offsite", "Retreat"]
    assert two.summaries(ANN) == ["Launch"]
    assert two.run("calendar", "refresh", "project", "--owner", ANN).err.startswith(
        "calshare: error: 'project' follows no source (give it one with: "
    )
    listed = two.ok("calendar", "sources", "--owner", ZOE, "--json").json()
    assert [(row["calendar"], row["owner"]) for row in listed] == [("project", ZOE)]
    assert two.ok("calendar", "sources", "--owner", ANN, "--json").json() == []


def test_shares_belong_to_the_owners_calendar(two: Two) -> None:
    two.ok("share", "project", BOB, "--level", "titles", "--owner", ZOE)
    assert [row["email"] for row in two.ok("shares", "project", "--owner", ZOE, "--json").json()]\
        == [BOB]  # fmt: skip
    assert two.ok("shares", "project", "--owner", ANN, "--json").json() == []
    assert len(two.ok("shares", "--owner", ZOE, "--json").json()) == 1
    assert two.ok("shares", "--owner", ANN, "--json").json() == []
    assert two.run("unshare", "project", BOB, "--owner", ANN).code == 2  # not Ann's share
    two.ok("unshare", "project", BOB, "--owner", ZOE)
    (row,) = two.ok("shares", "project", "--owner", ZOE, "--json").json()
    assert row["status"] == "revoked"


@pytest.fixture
def daemon(two: Two, db_path: Path, clock: FixedClock) -> Iterator[Inbox]:
    settings = load_settings(None, env=inbox_env(CALSHARE_POLICY_PUBLISH_MAX_LEVEL="details"))
    inbox = Inbox(settings, db_path, clock, http=True)
    inbox.start()
    try:
        yield inbox
    finally:
        inbox.stop()


def _local(daemon: Inbox, url: str) -> str:
    """The daemon's own port for a link that names the public base URL."""
    return daemon.web + url[url.index("/", url.index("//") + 2) :]


@pytest.mark.parametrize("owner", [ZOE, ANN])
def test_published_links_and_pages_show_the_owners_calendar(
    two: Two, daemon: Inbox, owner: str
) -> None:
    other = ZOE if owner == ANN else ANN
    made = two.ok("publish", "project", "--owner", owner, "--level", "details", "--json").json()
    assert two.run("push", "project", "--owner", owner).code == 0
    ics = http(_local(daemon, made["ics"]))
    assert ics.status == 200
    assert SUMMARIES[owner] in ics.text and SUMMARIES[other] not in ics.text
    page = http(_local(daemon, made["html"]) + "?month=2026-12")
    assert page.status == 200
    assert SUMMARIES[owner] in page.text and SUMMARIES[other] not in page.text
    # the other owner's "project" is not published: unpublishing it is refused
    assert two.run("unpublish", "project", "--owner", other).code == 2
    two.ok("unpublish", "project", "--owner", owner)
    assert http(_local(daemon, made["ics"])).status == 410


@pytest.mark.parametrize("owner", [ZOE, ANN])
def test_a_feed_serves_the_owners_calendar(two: Two, daemon: Inbox, owner: str) -> None:
    other = ZOE if owner == ANN else ANN
    shared = two.ok("share", "project", BOB, "--level", "titles", "--owner", owner, "--json")
    invitation = invitation_of(two.db_path, shared.json()["message_id"], "project", BOB)
    recipient = f"accept+{invitation.token}@{DOMAIN}"
    answered = deliver(daemon.smtp, reply(to=recipient, sender=BOB), recipient, BOB)
    assert answered.code == 250, answered
    (welcome,) = queued(two.db_path, "o.share_id = ? AND o.kind = 'welcome'",
                        (invitation.share_id,))  # fmt: skip
    found = re.search(r"https?://\S+/feeds/[a-z2-7]{26}\.ics", welcome.text)
    assert found, welcome.text
    feed = http(_local(daemon, found[0]))
    assert feed.status == 200
    assert SUMMARIES[owner] in feed.text and SUMMARIES[other] not in feed.text


def test_credentials_kept_for_a_name_are_not_another_owners(two: Two, tmp_path: Path) -> None:
    """Zoe's "project" must never be read with the password the operator kept for Ann's
    "project": once two owners use a name, only ``"OWNER/NAME"`` or host credentials count."""
    config = tmp_path / "calshare.toml"
    config.write_text(
        '[sources.credentials."project"]\nusername = "ann"\npassword = "anns-password"\n'
        f'[sources.credentials."{ZOE}/project"]\nusername = "zoe"\npassword = "zoes-password"\n'
    )
    settings = load_settings(config, env={})
    with Store.open(two.db_path) as store:
        zoe = get_source(store.db, "project", ZOE)
        assert zoe.shared_name
        found = find_credential(
            settings, zoe.calendar, zoe.host, owner=zoe.owner, shared_name=zoe.shared_name
        )
        assert found is not None and found.username == "zoe"
        found = find_credential(
            settings, zoe.calendar, zoe.host, owner=BOB, shared_name=zoe.shared_name
        )
        assert found is None  # not Ann's, though it is kept for "project"
        found = find_credential(settings, zoe.calendar, zoe.host, owner=ANN)
        assert found is not None and found.username == "ann"  # the name alone: one owner's
        # a name only one owner uses is not shared: credentials for the name alone apply
        two.ok("calendar", "add", "solo", "--owner", ZOE, "--source", two.server.url())
        solo = get_source(store.db, "solo", ZOE)
        assert not solo.shared_name
