"""The Share and People pages over real HTTP: the daemon, its SQLite file, its SMTP port.

An owner shares with several people at once, sees them invited, an invitee answers by
mail, the owner changes the level, removes, resends; every refusal is one line on the
page with nothing stored; nobody but the owner reaches either page.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from markupsafe import escape

from calshare import sessions
from calshare.clock import FixedClock
from calshare.console import words
from calshare.levels import Level
from calshare.links import ConsolePage, calendar_page_path
from calshare.sharing import Share, list_shares
from tests.support.console import ANN, ZOE, Console, console, running_console
from tests.support.inbox import queued
from tests.support.sharing import (
    EVERY_STATUS,
    accept,
    every_status,
    invitations,
    paths,
    share,
    token_of,
)
from tests.support.web import Got, http

__all__ = ["console"]

BOB = "bob@example.org"
KARI = "kari@example.org"
OUTSIDER = "olga@example.net"  # outside the internal domain: at most titles by default


def row(page: Got, address: str) -> str:
    """The People table's row of ``address``, as HTML."""
    found = re.search(
        rf"<tr class=\"status-[a-z]+\">(?:(?!</tr>).)*{re.escape(address)}.*?</tr>", page.text, re.S
    )
    assert found, page.text
    return found[0]


def done(got: Got) -> str:
    assert got.status == 303, (got.status, got.text)
    return parse_qs(urlsplit(got.headers["Location"]).query)["done"][0]


# --- Share


def test_the_share_form_offers_outlooks_levels(console: Console) -> None:
    share_path, _, _ = paths(console)
    page = console.client(ANN).get(share_path)
    assert page.status == 200
    assert page.headers["Cache-Control"] == "no-store"
    for level in Level:
        assert f">{escape(words.level(level, 'en'))}</option>" in page.text
    assert "Can view when I&#39;m busy" in page.text
    assert 'name="to"' in page.text and 'name="message"' in page.text


def test_two_addresses_at_once_are_both_invited(console: Console) -> None:
    share_path, people_path, _ = paths(console)
    client = console.client(ANN)
    got = share(client, share_path, f"Bob Builder <{BOB}>;\n{KARI}", message="For the launch")
    assert got.status == 200
    assert "Invited Bob Builder &lt;bob@example.org&gt;." in got.text
    assert f"Invited {KARI}." in got.text
    assert len(invitations(console, BOB)) == 1 and len(invitations(console, KARI)) == 1
    assert "For the launch" in invitations(console, KARI)[0].text
    people = client.get(people_path)
    assert people.status == 200
    for address in (BOB, KARI):
        assert ">Invited</td>" in row(people, address)
        assert "Can view titles and locations" in row(people, address)
    assert "Bob Builder" in row(people, BOB)


def test_some_addresses_refused_the_others_shared(console: Console) -> None:
    share_path, _, calendar_id = paths(console)
    client = console.client(ANN)
    got = share(client, share_path, f"{BOB}, bob@, {OUTSIDER}", level="details")
    assert got.status == 200
    assert f"Invited {BOB}." in got.text
    assert "Not shared: &#39;bob@&#39; is not an email address" in got.text
    assert f"{OUTSIDER}: this calendar can&#39;t be shared: {OUTSIDER} is outside" in got.text
    # as classic Outlook does: a copy by mail instead, where policy lets one go
    email = calendar_page_path(calendar_id, ConsolePage.EMAIL)
    assert f'href="{email}?to=olga%40example.net"' in got.text
    offered = client.get(f"{email}?to=olga%40example.net")  # the E-mail page, filled in
    assert offered.status == 200 and OUTSIDER in offered.text
    # the box keeps what was not shared, to correct
    assert f">bob@, {OUTSIDER}</textarea>" in got.text
    assert [share.invitee for share in _shares(console)] == [BOB]


def test_sharing_again_says_what_happened(console: Console) -> None:
    share_path, _, _ = paths(console)
    client = console.client(ANN)
    share(client, share_path, BOB)
    again = share(client, share_path, BOB)
    assert f"Invited {BOB} again; the earlier invitation no longer works." in again.text
    accept(console, BOB)
    same = share(client, share_path, BOB)
    assert f"{BOB}: already shared at that level; nothing sent." in same.text
    more = share(client, share_path, BOB, level="details")
    assert f"{BOB} can now see it as “can view all details”" in more.text


def _shares(console: Console) -> list[Share]:
    return list_shares(console.store, console.clock, "project", owner=ANN)


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({"to": ""}, "Type at least one address."),
        ({"to": " ;, \n"}, "Type at least one address."),
        ({"level": "owner"}, "Choose one of the permissions in the list."),
        ({"lang": "de"}, "Choose one of the languages in the list."),
        ({"message": "x" * 2001}, "The message is longer than 2,000 characters"),
        ({"to": ", ".join(f"p{i}@example.org" for i in range(51))}, "At most 50 addresses"),
        ({"to": "bob@"}, "Not shared: &#39;bob@&#39; is not an email address"),
        ({"to": ANN}, f"this calendar can&#39;t be shared: {ANN} owns it"),
        ({"to": "bob@exam\u200bple.org"}, "Not shared:"),
    ],
)
def test_bad_input_is_one_line_and_stores_nothing(
    console: Console, fields: dict[str, str], line: str
) -> None:
    share_path, _, _ = paths(console)
    client = console.client(ANN)
    client.get(share_path)
    before = console.state()
    got = client.post(share_path, {"to": BOB, "level": "titles", "lang": "en", **fields})
    assert got.status == 422, got.text
    assert line in got.text
    assert "Traceback" not in got.text
    assert console.state() == before


@pytest.mark.parametrize(
    ("env", "to", "line"),
    [
        (
            {"CALSHARE_POLICY_GROUPS": "all@example.org"},
            "All <all@example.org>",
            "this calendar can&#39;t be shared: all@example.org is a group address",
        ),
        (
            {"CALSHARE_POLICY_SHARING": "false"},
            BOB,
            "this calendar can&#39;t be shared: sharing is turned off",
        ),
    ],
)
def test_policy_refusals_that_refuse_a_copy_too(
    db_path: Path, clock: FixedClock, tmp_path: Path, env: dict[str, str], to: str, line: str
) -> None:
    with running_console(db_path, clock, tmp_path, **env) as console:
        refused_without_a_copy(console, to, line)


def refused_without_a_copy(console: Console, to: str, line: str) -> None:
    share_path, _, _ = paths(console)
    client = console.client(ANN)
    client.get(share_path)
    before = console.state()
    got = client.post(share_path, {"to": to, "level": "free-busy"})
    assert got.status == 422
    assert line in got.text
    assert "?to=" not in got.text  # a copy would be refused too: no link to offer one
    assert console.state() == before


def test_the_share_page_in_norwegian(console: Console) -> None:
    share_path, people_path, _ = paths(console)
    client = console.client(ANN)
    client.accept_language = "nb-NO,nb;q=0.9"
    page = client.get(share_path)
    assert '<html lang="nb">' in page.text
    assert "Kan se når jeg er opptatt" in page.text and ">Del</button>" in page.text
    got = client.post(share_path, {"to": f"{BOB}, bob@", "level": "titles", "lang": "nb"})
    assert f"Invitert {BOB}." in got.text and "Ikke delt:" in got.text
    assert "Tilgang:" in invitations(console, BOB)[0].text  # the invitation in Norwegian
    people = client.get(people_path)
    assert ">Invitert</td>" in row(people, BOB)
    assert "Kan se titler og steder" in row(people, BOB)


# --- People


def test_accept_change_remove(console: Console) -> None:
    """The issue's walk: invited, accepted by mail, level changed (told), removed (410)."""
    share_path, people_path, _ = paths(console)
    client = console.client(ANN)
    share(client, share_path, f"{BOB}, {KARI}")
    feed = accept(console, BOB)
    people = client.get(people_path)
    assert ">Accepted</td>" in row(people, BOB) and ">Invited</td>" in row(people, KARI)
    titles = http(feed)
    assert titles.status == 200 and b"SUMMARY:Stand-up" in titles.body

    got = client.post(people_path, {"action": "change", "invitee": BOB, "level": "free-busy"})
    assert done(got) == "level_changed"
    page = client.get(got.headers["Location"])
    assert "The permission was changed; they are told by mail." in page.text
    assert escape("Can view when I'm busy") in row(page, BOB)
    (notice,) = queued(console.db_path, "o.kind = 'level_changed'", ())
    assert BOB in notice.recipients and "can view when I'm busy" in notice.text
    busy = http(feed)
    assert busy.status == 200 and b"Stand-up" not in busy.body and b"BEGIN:VEVENT" in busy.body

    same = client.post(people_path, {"action": "change", "invitee": BOB, "level": "free-busy"})
    assert done(same) == "level_unchanged"
    assert len(queued(console.db_path, "o.kind = 'level_changed'", ())) == 1

    removed = client.post(people_path, {"action": "remove", "invitee": BOB})
    assert done(removed) == "removed"
    assert http(feed).status == 410
    page = client.get(people_path)
    assert ">Removed</td>" in row(page, BOB)
    assert 'value="remove"' not in row(page, BOB)


def test_resend_sends_a_new_invitation_and_the_old_one_dies(console: Console) -> None:
    share_path, people_path, _ = paths(console)
    client = console.client(ANN)
    share(client, share_path, KARI, message="See you there")
    old = token_of(invitations(console, KARI)[0])
    client.get(people_path)
    got = client.post(people_path, {"action": "resend", "invitee": KARI})
    assert done(got) == "resent"
    _first, second = invitations(console, KARI)
    new = token_of(second)
    assert new != old
    assert "See you there" in second.text  # the message goes with it again
    assert http(f"{console.base}/i/{old}").status == 410  # withdrawn or replaced
    assert http(f"{console.base}/i/{new}").status == 200


def test_changing_a_pending_invitation_sends_it_again(console: Console) -> None:
    share_path, people_path, _ = paths(console)
    client = console.client(ANN)
    share(client, share_path, KARI, level="titles")
    old = token_of(invitations(console, KARI)[0])
    client.get(people_path)
    got = client.post(people_path, {"action": "change", "invitee": KARI, "level": "free-busy"})
    assert done(got) == "reinvited"
    latest = invitations(console, KARI)[-1]
    assert "can view when I'm busy" in latest.text
    assert http(f"{console.base}/i/{old}").status == 410
    page = client.get(people_path)
    assert ">Invited</td>" in row(page, KARI) and "Can view when I&#39;m busy" in row(page, KARI)


def test_every_status_in_words_with_what_it_allows(console: Console) -> None:
    share_path, people_path, _ = paths(console)
    client = every_status(console, share_path, people_path)
    page = client.get(people_path)
    expect = {
        "acc@example.org": ("Accepted", {"change", "remove"}),
        "dec@example.org": ("Declined", {"resend"}),
        "exp@example.org": ("Expired", {"change", "remove", "resend"}),
        "und@example.org": ("Undeliverable", {"remove", "resend"}),
        "inv@example.org": ("Invited", {"change", "remove", "resend"}),
        "rem@example.org": ("Removed", set()),
    }
    assert set(expect) == set(EVERY_STATUS)
    for address, (status, actions) in expect.items():
        html = row(page, address)
        assert f">{status}</td>" in html, address
        assert set(re.findall(r'name="action" value="(\w+)"', html)) == actions, address
    assert "Expired 3 Apr 2027" in row(page, "exp@example.org")


@pytest.mark.parametrize(
    ("fields", "status", "line"),
    [
        ({"action": "explode", "invitee": BOB}, 400, "Choose Change, Remove or Resend"),
        ({"action": "remove", "invitee": "nobody@example.org"}, 404, "is not shared with nobody@"),
        (
            {"action": "change", "invitee": "nobody@example.org", "level": "titles"},
            404,
            "not shared",
        ),
        ({"action": "resend", "invitee": "nobody@example.org"}, 404, "not shared"),
        ({"action": "remove", "invitee": "not an address"}, 404, "not shared with not an address"),
        (
            {"action": "change", "invitee": BOB, "level": "admin"},
            422,
            "Choose one of the permissions",
        ),
        ({"action": "resend", "invitee": BOB}, 409, "there is no invitation to send again"),
        ({"action": "remove", "invitee": KARI}, 404, "not shared with kari@"),
        ({"action": "change", "invitee": KARI, "level": "titles"}, 409, "no level to change"),
    ],
)
def test_people_refusals_are_one_line_and_change_nothing(
    console: Console, fields: dict[str, str], status: int, line: str
) -> None:
    share_path, people_path, _ = paths(console)
    client = console.client(ANN)
    share(client, share_path, f"{BOB}, {KARI}")
    accept(console, BOB)
    client.get(people_path)
    client.post(people_path, {"action": "remove", "invitee": KARI})  # KARI: removed
    client.get(people_path)
    before = console.state()
    got = client.post(people_path, fields)
    assert got.status == status, got.text
    assert line in got.text and 'role="alert"' in got.text
    assert "Traceback" not in got.text
    assert console.state() == before


# --- who may


def _requests(share_path: str, people_path: str) -> list[tuple[str, dict[str, str] | None]]:
    return [
        (share_path, None),
        (people_path, None),
        (share_path, {"to": "mallory@example.org", "level": "details"}),
        (people_path, {"action": "remove", "invitee": BOB}),
        (people_path, {"action": "change", "invitee": BOB, "level": "free-busy"}),
        (people_path, {"action": "resend", "invitee": BOB}),
    ]


def _ready(console: Console) -> tuple[str, str]:
    share_path, people_path, _ = paths(console)
    share(console.client(ANN), share_path, BOB)
    return share_path, people_path


def test_another_owner_gets_404_and_changes_nothing(console: Console) -> None:
    share_path, people_path = _ready(console)
    zoes = console.calendar("zoes", owner=ZOE)
    zoe = console.client(ZOE)
    zoe.get(calendar_page_path(zoes.id, ConsolePage.SHARE))  # her own: her session's field
    before = console.state()
    for path, fields in _requests(share_path, people_path):
        got = zoe.get(path) if fields is None else zoe.post(path, fields)
        assert got.status == 404, (path, fields, got.status)
        assert BOB not in got.text
    assert console.state() == before


def test_no_session_and_an_ended_one_change_nothing(console: Console) -> None:
    share_path, people_path = _ready(console)
    ended = console.client(ANN)
    ended.get(people_path)
    with console.store.write() as db:
        sessions.end(db, ended.cookies[sessions.COOKIE], console.clock.now())
    before = console.state()
    for client in (console.client(None), ended):
        for path, fields in _requests(share_path, people_path):
            if fields is None:
                got = client.get(path)
                assert got.status == 303, path
                assert got.headers["Location"].startswith("/signin?next=")
            else:
                got = client.post(path, {**fields, "csrf": ended.csrf})
                assert got.status == 403, (path, fields)
    assert console.state() == before


def test_a_forged_or_missing_form_field_changes_nothing(console: Console) -> None:
    share_path, people_path = _ready(console)
    ann = console.client(ANN)
    other = console.client(ANN)  # Ann in another browser: its field is not this session's
    other.get(people_path)
    ann.get(people_path)
    before = console.state()
    for path, fields in _requests(share_path, people_path):
        if fields is None:
            continue
        for csrf in ("0" * 64, other.csrf, ""):
            got = ann.post(path, {**fields, "csrf": csrf})
            assert got.status == 403, (path, fields, csrf)
        body = "&".join(f"{k}={v}" for k, v in fields.items()).encode()
        missing = ann.request(path, body, content_type="application/x-www-form-urlencoded")
        assert missing.status == 403
    assert console.state() == before
