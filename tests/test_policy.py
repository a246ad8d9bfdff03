"""Sharing policy: every refusal reason through ``calshare share``, and check_share itself.

A refused share is one line on stderr, exit 2, in the frame
"This calendar can't be shared: <reason>", and it leaves the database exactly as
it was: no share, no invitation, no queued mail, no audit row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from calshare.addresses import Mailbox
from calshare.config import PolicySettings, load_settings
from calshare.errors import ShareRefused
from calshare.levels import Level
from calshare.policy import check_share, highest_level, is_group, is_internal
from tests.conftest import CliResult

Cli = Callable[..., CliResult]

FRAME = "calshare: error: This calendar can't be shared: "
OWNER = "ann@example.org"
SHARING_TABLES = ("shares", "invitations", "outbox", "audit")


def dump(db_path: Path) -> list[str]:
    """The whole database as SQL text: equal dumps mean nothing was stored."""
    conn = sqlite3.connect(db_path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def counts(db_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(db_path)
    try:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in SHARING_TABLES
        }
    finally:
        conn.close()


@pytest.fixture
def project(cli: Cli, db_path: Path) -> Path:
    """A calendar 'project' owned by Ann, and nothing shared yet."""
    added = cli("calendar", "add", "project", "--owner", f"Ann Owner <{OWNER}>")
    assert added.code == 0, added.err
    return db_path


def assert_refused(result: CliResult, *fragments: str) -> str:
    """Exit 2, nothing on stdout, one line on stderr in the exact frame; returns the reason."""
    assert result.code == 2, (result.out, result.err)
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert result.err.endswith("\n")
    assert lines[0].startswith(FRAME), lines[0]
    reason = lines[0][len(FRAME) :]
    assert reason.strip(), "the frame must be followed by a reason"
    for fragment in fragments:
        assert fragment in reason, (fragment, reason)
    return reason


GROUPS = "all@example.org,*-team@example.org"

# (id, environment, invitee as typed, level, fragments the reason must contain)
REFUSALS: list[tuple[str, dict[str, str], str, str, list[str]]] = [
    (
        "sharing-off",
        {"CALSHARE_POLICY_SHARING": "false"},
        "bob@example.org",
        "free-busy",
        ["sharing is turned off", "policy.sharing"],
    ),
    (
        "sharing-off-beats-a-bad-address",
        {"CALSHARE_POLICY_SHARING": "no"},
        "not an address",
        "details",
        ["sharing is turned off"],
    ),
    ("no-at", {}, "bob.example.org", "titles", ["'bob.example.org'", "not an email address"]),
    ("empty-local-part", {}, "@example.org", "titles", ["not an email address"]),
    ("empty-domain", {}, "bob@", "titles", ["not an email address", "domain is empty"]),
    ("single-label-domain", {}, "bob@localhost", "titles", ["not a full domain name"]),
    ("underscore-in-domain", {}, "bob@exa_mple.org", "titles", ["not a valid domain name"]),
    ("empty-label", {}, "bob@example..org", "titles", ["not a valid domain name"]),
    ("idn-symbol", {}, "bob@☃.example", "titles", ["not a valid domain name"]),
    ("idn-bad-punycode", {}, "bob@xn--a.org", "titles", ["not a valid domain name"]),
    ("idn-leading-hyphen", {}, "bob@-bücher.org", "titles", ["not a valid domain name"]),
    ("numeric-tld", {}, "bob@10.0.0.1", "titles", ["not a domain name"]),
    ("two-addresses", {}, "Bob <bob@example.org>, eve@example.org", "titles", ["not one"]),
    (
        "crlf-injection",
        {},
        "bob@example.org\r\nBcc: eve@evil.example",
        "titles",
        ["not an email address", "control characters"],
    ),
    ("bare-lf", {}, "bob@example.org\nx", "titles", ["control characters"]),
    ("zero-width-space", {}, "bob\u200b@example.org", "titles", ["control characters"]),
    (
        "group-exact",
        {"CALSHARE_POLICY_GROUPS": GROUPS},
        "all@example.org",
        "free-busy",
        ["all@example.org is a group address", "policy.groups"],
    ),
    (
        "group-exact-other-case",
        {"CALSHARE_POLICY_GROUPS": GROUPS},
        "All <ALL@Example.ORG>",
        "free-busy",
        ["all@example.org is a group address"],
    ),
    (
        "group-pattern",
        {"CALSHARE_POLICY_GROUPS": GROUPS},
        "design-team@example.org",
        "free-busy",
        ["design-team@example.org is a group address"],
    ),
    (
        "group-pattern-other-case",
        {"CALSHARE_POLICY_GROUPS": GROUPS},
        "Design-Team@EXAMPLE.org",
        "free-busy",
        ["design-team@example.org is a group address"],
    ),
    (
        "external-when-none",
        {"CALSHARE_POLICY_EXTERNAL_MAX_LEVEL": "none"},
        "Carol <carol@other.example>",
        "free-busy",
        ["carol@other.example", "outside example.org", "no external sharing"],
    ),
    (
        "external-when-none-names-every-internal-domain",
        {
            "CALSHARE_POLICY_EXTERNAL_MAX_LEVEL": "none",
            "CALSHARE_POLICY_INTERNAL_DOMAINS": "example.org,example.com",
        },
        "carol@other.example",
        "free-busy",
        ["carol@other.example", "example.org, example.com", "no external sharing"],
    ),
    (
        "external-above-titles",
        {},
        "carol@other.example",
        "details",
        [
            "carol@other.example",
            "outside example.org",
            "titles",
            "share at titles (--level titles)",
        ],
    ),
    (
        "external-above-free-busy",
        {"CALSHARE_POLICY_EXTERNAL_MAX_LEVEL": "free-busy"},
        "carol@other.example",
        "titles",
        ["carol@other.example", "share at free-busy (--level free-busy)"],
    ),
    (
        "subdomain-is-external",
        {},
        "bob@sales.example.org",
        "details",
        ["bob@sales.example.org", "outside example.org", "share at titles (--level titles)"],
    ),
    ("owner-themself", {}, OWNER, "details", [f"{OWNER} owns it"]),
    ("owner-other-case-with-name", {}, "Ann <ANN@Example.ORG>", "titles", [f"{OWNER} owns it"]),
    ("owner-mailto", {}, "mailto:ann@example.org", "titles", [f"{OWNER} owns it"]),
    (
        "non-ascii-local-part",
        {},
        "bjørn@example.org",
        "titles",
        ["bjørn@example.org", "outside ASCII", "SMTPUTF8"],
    ),
]


@pytest.mark.parametrize(
    ("env", "invitee", "level", "fragments"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUSALS],
)
def test_every_refusal_is_one_framed_line_and_stores_nothing(
    cli: Cli,
    project: Path,
    env: dict[str, str],
    invitee: str,
    level: str,
    fragments: list[str],
) -> None:
    before = dump(project)
    assert counts(project) == dict.fromkeys(SHARING_TABLES, 0)
    result = cli("share", "project", invitee, "--level", level, env=env)
    assert_refused(result, *fragments)
    assert dump(project) == before
    assert counts(project) == dict.fromkeys(SHARING_TABLES, 0)
    assert cli("shares", "--json").json() == []
    assert cli("outbox", "--json").json() == []


def test_a_refusal_leaves_earlier_shares_untouched(cli: Cli, project: Path) -> None:
    assert cli("share", "project", "bob@example.org", "--level", "details").code == 0
    before, stored = dump(project), counts(project)
    assert stored == {"shares": 1, "invitations": 1, "outbox": 1, "audit": 1}
    # Bob again, but at a level nobody may give, then with sharing off: both refused.
    assert_refused(
        cli(
            "share",
            "project",
            "bob@example.org",
            "--level",
            "details",
            env={"CALSHARE_POLICY_SHARING": "false"},
        ),
        "sharing is turned off",
    )
    assert_refused(cli("share", "project", "carol@other.example", "--level", "details"))
    assert dump(project) == before


def test_the_json_flag_does_not_change_a_refusal(cli: Cli, project: Path) -> None:
    result = cli("share", "project", "carol@other.example", "--level", "details", "--json")
    assert_refused(result, "share at titles (--level titles)")


# --- allowed cases, and the domain edges that decide internal versus external


@pytest.mark.parametrize(
    ("env", "invitee", "level", "stored_as"),
    [
        pytest.param({}, "bob@example.org", "details", "bob@example.org", id="internal-details"),
        pytest.param({}, "carol@other.example", "titles", "carol@other.example", id="ext-titles"),
        pytest.param(
            {}, "carol@other.example", "free-busy", "carol@other.example", id="ext-free-busy"
        ),
        pytest.param(
            {}, "Bob <Bob@EXAMPLE.ORG>", "details", "bob@example.org", id="uppercase-domain"
        ),
        pytest.param({}, "bob@example.org.", "details", "bob@example.org", id="trailing-dot"),
        pytest.param(
            {}, "bob@sales.example.org", "titles", "bob@sales.example.org", id="subdomain-titles"
        ),
        pytest.param(
            {"CALSHARE_POLICY_INTERNAL_DOMAINS": "example.org,bücher.example"},
            "bob@BÜCHER.example",
            "details",
            "bob@xn--bcher-kva.example",
            id="idn-internal-domain",
        ),
        pytest.param(
            {"CALSHARE_POLICY_INTERNAL_DOMAINS": "Example.ORG"},
            "bob@example.org",
            "details",
            "bob@example.org",
            id="uppercase-internal-setting",
        ),
        pytest.param(
            {"CALSHARE_POLICY_EXTERNAL_MAX_LEVEL": "details"},
            "carol@other.example",
            "details",
            "carol@other.example",
            id="external-details-when-allowed",
        ),
        pytest.param(
            {"CALSHARE_POLICY_EXTERNAL_MAX_LEVEL": "none"},
            "bob@example.org",
            "details",
            "bob@example.org",
            id="internal-when-external-is-none",
        ),
        pytest.param(
            {"CALSHARE_POLICY_GROUPS": GROUPS},
            "teamlead@example.org",
            "details",
            "teamlead@example.org",
            id="not-a-group-pattern-match",
        ),
    ],
)
def test_allowed_shares_are_stored_once(
    cli: Cli, project: Path, env: dict[str, str], invitee: str, level: str, stored_as: str
) -> None:
    result = cli("share", "project", invitee, "--level", level, "--json", env=env)
    assert result.code == 0, result.err
    assert result.err == ""
    outcome = result.json()
    assert (outcome["action"], outcome["email"], outcome["level"], outcome["status"]) == (
        "invited",
        stored_as,
        level,
        "invited",
    )
    assert counts(project) == {"shares": 1, "invitations": 1, "outbox": 1, "audit": 1}


def test_a_subdomain_of_an_internal_domain_counts_as_external(cli: Cli, project: Path) -> None:
    """The current design: exact domain match only, since a subdomain may be run by others.

    If that changes, change this test on purpose.
    """
    reason = assert_refused(
        cli("share", "project", "bob@sales.example.org", "--level", "details"),
        "outside example.org",
    )
    assert reason.endswith("share at titles (--level titles)")
    # and a parent domain of an internal domain is external too
    assert_refused(
        cli(
            "share",
            "project",
            "bob@example.org",
            "--level",
            "details",
            env={"CALSHARE_POLICY_INTERNAL_DOMAINS": "corp.example.org"},
        ),
        "outside corp.example.org",
    )


# --- check_share, the pure function


def policy(**changes: object) -> PolicySettings:
    base = {
        "sharing": True,
        "internal_domains": ("example.org", "xn--bcher-kva.example"),
        "external_max_level": Level.TITLES,
        "groups": ("all@example.org", "*-team@example.org"),
    }
    return PolicySettings(**(base | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("invitee", "level", "expected"),
    [
        ("bob@example.org", Level.DETAILS, Mailbox("bob@example.org")),
        ("Bob Builder <BOB@Example.org>", Level.DETAILS, Mailbox("bob@example.org", "Bob Builder")),
        ("bob@bücher.example", Level.DETAILS, Mailbox("bob@xn--bcher-kva.example")),
        ("carol@other.example", Level.TITLES, Mailbox("carol@other.example")),
        ("carol@other.example", Level.FREE_BUSY, Mailbox("carol@other.example")),
        ("mailto:bob@example.org", Level.FREE_BUSY, Mailbox("bob@example.org")),
    ],
)
def test_check_share_returns_the_normalised_invitee(
    invitee: str, level: Level, expected: Mailbox
) -> None:
    assert check_share(policy(), OWNER, invitee, level) == expected


@pytest.mark.parametrize(
    ("changes", "invitee", "level", "reason"),
    [
        (
            {"sharing": False},
            "bob@example.org",
            Level.FREE_BUSY,
            "sharing is turned off on this server (setting policy.sharing)",
        ),
        ({}, OWNER, Level.DETAILS, f"{OWNER} owns it"),
        (
            {},
            "all@example.org",
            Level.FREE_BUSY,
            "all@example.org is a group address, and groups cannot be invited "
            "(setting policy.groups)",
        ),
        (
            {},
            "qa-team@example.org",
            Level.FREE_BUSY,
            "qa-team@example.org is a group address, and groups cannot be invited "
            "(setting policy.groups)",
        ),
        (
            {"external_max_level": None},
            "carol@other.example",
            Level.FREE_BUSY,
            "carol@other.example is outside example.org, xn--bcher-kva.example "
            "and policy allows no external sharing",
        ),
        (
            {},
            "carol@other.example",
            Level.DETAILS,
            "carol@other.example is outside example.org, xn--bcher-kva.example, where the "
            "highest level allowed is titles; share at titles",
        ),
        (
            {"external_max_level": Level.FREE_BUSY},
            "carol@other.example",
            Level.TITLES,
            "carol@other.example is outside example.org, xn--bcher-kva.example, where the "
            "highest level allowed is free-busy; share at free-busy",
        ),
        (
            {"internal_domains": (), "external_max_level": None},
            "carol@other.example",
            Level.FREE_BUSY,
            "carol@other.example is outside any internal domain and policy allows no "
            "external sharing",
        ),
    ],
)
def test_check_share_refusals_name_the_reason(
    changes: dict[str, object], invitee: str, level: Level, reason: str
) -> None:
    with pytest.raises(ShareRefused) as caught:
        check_share(policy(**changes), OWNER, invitee, level)
    assert caught.value.reason == reason
    assert str(caught.value) == f"This calendar can't be shared: {reason}"
    assert isinstance(caught.value, PermissionError)


@pytest.mark.parametrize(
    "invitee", ["bob", "bob@", "bob@localhost", "bob@☃.example", "a\r\nb@example.org", ""]
)
def test_check_share_refuses_invalid_addresses_without_crashing(invitee: str) -> None:
    with pytest.raises(ShareRefused) as caught:
        check_share(policy(), OWNER, invitee, Level.FREE_BUSY)
    assert "not an email address" in caught.value.reason or "domain" in caught.value.reason


def test_the_policy_helpers() -> None:
    settings = policy()
    assert is_internal("bob@example.org", settings)
    assert is_internal("bob@xn--bcher-kva.example", settings)
    assert not is_internal("bob@sales.example.org", settings)
    assert not is_internal("bob@example.org.evil.example", settings)
    assert not is_internal("bob@notexample.org", settings)
    assert highest_level("bob@example.org", settings) is Level.DETAILS
    assert highest_level("carol@other.example", settings) is Level.TITLES
    assert highest_level("carol@other.example", policy(external_max_level=None)) is None
    assert is_group("all@example.org", settings)
    assert is_group("x-team@example.org", settings)
    assert not is_group("x-team@other.example", settings)
    assert not is_group("teams@example.org", settings)


def test_policy_settings_from_the_environment_are_normalised() -> None:
    loaded = load_settings(
        None,
        env={
            "CALSHARE_POLICY_INTERNAL_DOMAINS": "Example.ORG, bücher.example",
            "CALSHARE_POLICY_GROUPS": "ALL@Example.org, *-Team@EXAMPLE.org",
            "CALSHARE_POLICY_EXTERNAL_MAX_LEVEL": "None",
        },
    ).policy
    assert loaded.internal_domains == ("example.org", "xn--bcher-kva.example")
    assert loaded.groups == ("all@example.org", "*-team@example.org")
    assert loaded.external_max_level is None
    with pytest.raises(ShareRefused) as caught:
        check_share(loaded, OWNER, "Design-Team@example.org", Level.FREE_BUSY)
    assert caught.value.reason.startswith("design-team@example.org is a group address")
